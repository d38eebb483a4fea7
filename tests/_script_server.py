"""Runs Python scripts as `python <script> <args>` would, without TensorFlow's start-up for each.

Started once by `conftest.ScriptServer`, it imports TensorFlow, Keras,
keras-hub and tfxfer (about 10 s on 2 busy cores), then reads one JSON request per line on
stdin: {"script", "args", "cwd", "env", "stdout", "stderr"}. For each it forks; the
fork sends its file descriptors 1 and 2 to the two files and runs the script
as `__main__`, as the interpreter would. The server replies with one JSON line,
{"returncode"}, once the fork has ended.

The server itself runs no TensorFlow op, so TensorFlow has no thread pool or
device context yet when it forks: each fork sets them up as a new interpreter would.
"""

import atexit
import json
import os
import runpy
import sys
import traceback

import keras  # noqa: F401  (imported for the forks: the start-up every run would pay)
import keras_hub  # noqa: F401  (the text recipe's transformers)
import tensorflow  # noqa: F401

import tfxfer  # noqa: F401


def _exit_code(exit: SystemExit) -> int:
    """The process exit code Python gives a SystemExit that reaches the top."""
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    sys.stderr.write(f"{exit.code}\n")  # as the interpreter does for sys.exit("message")
    return 1


def _run_in_fork(request: dict) -> None:
    """Runs the requested script with its output in the requested files; never returns."""
    code = 1
    try:
        stdin = os.open(os.devnull, os.O_RDONLY)
        stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(source, target)
            os.close(source)
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        script = request["script"]
        sys.argv = [script, *request["args"]]
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))  # as `python script.py` does
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as exit:
            code = _exit_code(exit)
        except BaseException:  # noqa: BLE001  (what the interpreter does with an uncaught exception)
            traceback.print_exc()
    finally:
        atexit._run_exitfuncs()  # as the interpreter does on its way out (temporary folders, ...)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_in_fork(request)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
