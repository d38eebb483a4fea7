"""Shared pytest setup: quiet, deterministic, CPU-only, never touches the network."""

import collections
import json
import os
import select
import signal
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The recipes import each other as top-level modules (`import cli`), as `python recipes/x.py`
# lets them; tests of the recipes' helpers (rest_requests, metrics_file, training_flags) do too.
sys.path.append(os.path.join(REPO, "recipes"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded(request):
    """Seeds each test, and clears Keras' session after it, or only once after the whole
    file for a file that sets `CLEAR_SESSION_ONCE = True` (clearing costs ~0.3 s, most of
    a quick check's time)."""
    keras.utils.set_random_seed(1234)
    yield
    if not getattr(request.module, "CLEAR_SESSION_ONCE", False):
        keras.backend.clear_session()


@pytest.fixture(autouse=True, scope="module")
def _cleared_after_module(request):
    yield
    if getattr(request.module, "CLEAR_SESSION_ONCE", False):
        keras.backend.clear_session()


def pytest_collection_modifyitems(items):
    """Files with more tests marked slow go first, each file's own order kept.

    `--dist loadfile` hands whole files to the two workers in collection order
    (`--no-loadscope-reorder`; by default xdist would send the files with the most
    tests first, which leaves the few-but-long recipe files for the end and one
    worker idle while the other runs them).
    """
    slow = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


class ScriptServer:
    """Runs scripts as `subprocess.run([python, script, *args])` would, at a fraction of the start-up.

    Every run of a recipe in its own interpreter pays TensorFlow's start-up (about
    10 s on 2 busy cores), which is most of the time of a test of a mistake the
    recipe reports before any work. `_script_server.py` pays it once and forks a
    fresh process for each script. Tests of TensorFlow's start-up itself (its log
    noise, `--help`, what a recipe imports) and of environment variables read at
    start-up keep real subprocesses.
    """

    def __init__(self):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        self._server = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "_script_server.py")],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                        start_new_session=True)

    def run(self, script, *args, env=None, timeout=300) -> subprocess.CompletedProcess:
        """Runs `script` with `args` in REPO; returns its exit code, stdout and stderr.

        env: dict | None. Environment variables to add, for those read after
            start-up (such as TF_CONFIG): TensorFlow has been imported already.
        """
        with tempfile.TemporaryDirectory() as folder:
            request = {"script": str(script), "args": [str(arg) for arg in args], "cwd": REPO, "env": env or {},
                       "stdout": os.path.join(folder, "stdout"), "stderr": os.path.join(folder, "stderr")}
            self._server.stdin.write(json.dumps(request) + "\n")
            self._server.stdin.flush()
            if not select.select([self._server.stdout], [], [], timeout)[0]:
                self.close()
                raise subprocess.TimeoutExpired([script, *args], timeout)
            reply = self._server.stdout.readline()
            if not reply:
                raise RuntimeError(f"The script server ended with exit code {self._server.wait()}.")
            outputs = {name: _read_text(request[name]) for name in ("stdout", "stderr")}
        return subprocess.CompletedProcess([script, *args], json.loads(reply)["returncode"], **outputs)

    def run_recipe(self, name, *args, **kwargs) -> subprocess.CompletedProcess:
        """`run` of recipes/<name>."""
        return self.run(os.path.join(REPO, "recipes", name), *args, **kwargs)

    def usage_error(self, name, *args) -> str:
        """Runs recipes/<name>; asserts the user-error ending (exit code 2, no traceback). Returns stderr."""
        process = self.run_recipe(name, *args)
        assert process.returncode == 2, process.stderr[-4000:]
        assert "Traceback" not in process.stderr, process.stderr[-4000:]
        return process.stderr

    def close(self):
        """Ends the server and any script it is running (they share a process group)."""
        os.killpg(self._server.pid, signal.SIGKILL)
        self._server.wait()


def _read_text(path):
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


@pytest.fixture(scope="session")
def script_server():
    server = ScriptServer()
    yield server
    server.close()
