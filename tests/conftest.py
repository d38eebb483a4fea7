"""Shared pytest setup: quiet, deterministic, CPU-only, never touches the network."""

import collections
import os
import sys

# The recipes import each other as top-level modules (`import cli`), as `python recipes/x.py`
# lets them; tests of the recipes' helpers (rest_requests, metrics_file, training_flags) do too.
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(1234)
    yield
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
