"""A run's folder: a new one per run unless the user names one, and the flagfile that reruns the run.

    run_dir = run_folder.choose(FLAGS.run_dir, FLAGS.model_name)   # runs/<model_name>/<time>/
    ...
    run_folder.write_flagfile(run_dir)                              # <run_dir>/flags.txt

`python recipes/<recipe>.py --flagfile=<run_dir>/flags.txt` reruns the run with
the same flags, into a new run folder: `--run_dir` is left out of the file, so
the rerun cannot overwrite the run it repeats.
"""

import os
import sys
import time

import metrics_file
import tensorflow as tf
from absl import app, flags

from tfxfer.export import versioning

RUNS_ROOT = "runs"
FLAGS_FILE = "flags.txt"
# Not written to flags.txt: a rerun gets a folder of its own, and reads no other flagfile.
_NOT_RERUN = ("run_dir", "flagfile")

FLAGS = flags.FLAGS


def choose(run_dir: str | None, name: str) -> str:
    """The run's folder: `run_dir`, or a new `runs/<name>/<YYYYmmdd-HHMMSS>` when None (`-2`, `-3`, ...
    when a run started in the same second). Not created here: the first file written creates it, so a
    run that fails before training leaves no folder.

    A folder that already holds a finished run (its metrics.json) is refused:
    a run never overwrites an earlier one. A folder without one (a run that was
    killed, resumed with --backup_dir) is used.

    Raises:
        app.UsageError: `run_dir` holds a finished run.
    """
    if run_dir is not None:
        check_unused(run_dir)
        return run_dir
    base = os.path.join(RUNS_ROOT, name, time.strftime("%Y%m%d-%H%M%S"))
    path, attempt = base, 1
    while tf.io.gfile.exists(path):
        attempt += 1
        path = f"{base}-{attempt}"
    return path


def check_unused(run_dir: str | None) -> None:
    """Raises `app.UsageError` if `run_dir` holds a finished run (see `choose`); recipes check it first."""
    if run_dir is not None and tf.io.gfile.exists(os.path.join(run_dir, metrics_file.METRICS_FILE)):
        raise app.UsageError(f"--run_dir holds an earlier run (its {metrics_file.METRICS_FILE}), which this run "
                             f"would overwrite; pass a new folder, or leave --run_dir unset for a new one under "
                             f"{RUNS_ROOT}/. Received: --run_dir={run_dir}")


def write_flagfile(run_dir: str, flag_values: flags.FlagValues = FLAGS, script: str | None = None, *,
                   path: str | None = None, changes: dict | None = None, what: str = "this run") -> str:
    """Writes the recipe's flags (its own and the ones it adopted), as resolved, to `<run_dir>/flags.txt`.

    Args:
        run_dir: str. The run's folder.
        flag_values: FlagValues. Parsed flags; absl's global `FLAGS` by default.
        script: str. The recipe whose key flags to write; the running script by default.
        path: str. Where to write instead of `<run_dir>/flags.txt`.
        changes: dict. `{flag name: value}` written instead of the flags' own values (None: a
            flag left out).
        what: str. What the file reruns, for its first line.
    """
    script = script or sys.argv[0]
    path = path or os.path.join(run_dir, FLAGS_FILE)
    changes = changes or {}
    lines = [
        f"# Reruns {what} into a new run folder: python {script} --flagfile={path}",
        f"# Relative paths below are relative to {os.getcwd()}",
    ]
    for flag in sorted(flag_values.get_key_flags_for_module(script), key=lambda flag: flag.name):
        value = changes.get(flag.name, flag.value)
        if flag.name not in _NOT_RERUN and value is not None:
            lines.append(_serialize(flag, value))
    versioning.make_folders(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _serialize(flag: flags.Flag, value) -> str:
    """`flag` as a flagfile line, with `value` instead of its own."""
    if value == flag.value:
        return flag.serialize()
    if isinstance(value, bool):
        return f"--{'' if value else 'no'}{flag.name}"
    return f"--{flag.name}={value}"
