"""Run reports: `metrics.json` in the run folder."""

import json
import os

from absl import logging

METRICS_FILE = "metrics.json"


def write_metrics(run_dir: str, metrics: dict) -> str:
    """Writes `metrics` as `<run_dir>/metrics.json` (atomically) and returns the path."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, METRICS_FILE)
    staging = path + ".tmp"
    with open(staging, "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, sort_keys=True, default=str)
    os.replace(staging, path)
    logging.info("Wrote %s", path)
    return path
