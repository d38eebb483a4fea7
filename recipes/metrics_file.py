"""A run's report: `metrics.json` in its run folder, on any filesystem TensorFlow supports."""

import json
import os

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

