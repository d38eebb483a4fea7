"""A run's report: `metrics.json` in its run folder, on any filesystem TensorFlow supports."""

import json
import os
from collections.abc import Mapping, Sequence

import tensorflow as tf
from absl import logging

from tfxfer.export import versioning

METRICS_FILE = "metrics.json"


def write_metrics(run_dir: str, metrics: dict) -> str:
    """Writes `metrics` as `<run_dir>/metrics.json` (atomically) and returns the path.

    Args:
        run_dir: str. The run folder (created if missing): a local path or a URL
            such as `gs://bucket/runs/flowers`.
        metrics: dict. JSON-serialisable facts; other values are written as `str(value)`.
    """
    versioning.make_folders(run_dir)
    path = os.path.join(run_dir, METRICS_FILE)
    staging = path + ".tmp"
    with tf.io.gfile.GFile(staging, "w") as f:
        f.write(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    # Readers see the old file or the new one, never half of one (a rename is atomic on local disks).
    tf.io.gfile.rename(staging, path, overwrite=True)
    logging.info("Wrote %s", path)
    return path


def task_metrics(phase_metrics: Mapping[str, Mapping[str, float]], tasks: Sequence[str]) -> dict:
    """A multi-task run's accuracies regrouped by task: `{task: {phase: {"accuracy": ..., "val_accuracy": ...}}}`.

    Args:
        phase_metrics: dict `{phase: {key: value}}` holding, per the training logs' names,
            `<task>_accuracy` (train) and `val_<task>_accuracy` (validation) of each task;
            keys a phase lacks (e.g. no validation data) are left out of it.
        tasks: sequence of str. The run's tasks.

    Example:

    >>> task_metrics({"phase1": {"loss": 0.4, "species_accuracy": 0.9, "val_species_accuracy": 0.8}}, ["species"])
    {'species': {'phase1': {'accuracy': 0.9, 'val_accuracy': 0.8}}}
    """
    regrouped = {}
    for task in tasks:
        per_phase = {}
        for phase, values in phase_metrics.items():
            found = {name: float(values[key]) for name, key in (("accuracy", f"{task}_accuracy"),
                                                         ("val_accuracy", f"val_{task}_accuracy")) if key in values}
            if found:
                per_phase[phase] = found
        regrouped[task] = per_phase
    return regrouped
