"""Fault tolerance for the two-phase engine: resume a killed run where it stopped.

`keras.callbacks.BackupAndRestore` backs up one `fit` call: weights, optimizer
state (so the learning-rate schedule goes on from the right step) and the epoch.
`fine_tune` makes two `fit` calls with a recompile (new optimizer, new trainable
set) between them, so one backup cannot describe the run. `RunBackup` keeps one
per phase, plus a marker that phase 1 is over:

```
backup_dir/
  phase1/                     BackupAndRestore of phase 1 (deleted with the run)
  phase1_final.weights.npz    the weights phase 1 ended with (after best-weight restore)
  phase1_done.json            marker, written last: phase 1's PhaseResult
  phase2/                     BackupAndRestore of phase 2
```

A restarted run with the same arguments: without the marker, phase 1 resumes
from its last backed-up epoch; with it, phase 1 is skipped (its result read back,
its final weights loaded) and phase 2 resumes from its own last backed-up epoch.
At most one epoch is lost. A finished run deletes `backup_dir`, so running the
same command again trains from scratch.

Not backed up: early stopping's patience counter and best weights (a resumed
phase starts counting again), and the position of random streams (shuffling,
augmentation, dropout), so a resumed run matches an uninterrupted one within
noise, exactly only when training is deterministic.
"""

import dataclasses
import json
import os
import shutil

import keras
import numpy as np
from absl import logging

PHASE1_DONE = "phase1_done.json"
PHASE1_WEIGHTS = "phase1_final.weights.npz"


class RunBackup:
    """Backup state of one `fine_tune` run in `backup_dir` (see the module docstring).

    Args:
        backup_dir: str. Folder for this run's backups only; created if needed.
            None backs up nothing (every method is then a no-op).
    """

    def __init__(self, backup_dir: str | os.PathLike | None):
        self.backup_dir = os.fspath(backup_dir) if backup_dir else None

    def callbacks(self, phase: str) -> list[keras.callbacks.Callback]:
        """The `BackupAndRestore` of `phase` ("phase1" or "phase2"), for its `fit`."""
        if not self.backup_dir:
            return []
        # Kept at the end of fit (delete_checkpoint=False): a kill between the end of
        # phase 2 and `finish` then resumes to "nothing left to train", not a rerun.
        return [keras.callbacks.BackupAndRestore(
            os.path.join(self.backup_dir, phase), double_checkpoint=True, delete_checkpoint=False)]

    def restore_phase1(self, model: keras.Model, result_type: type):
        """Loads phase 1's final weights into `model` and returns its result, or None if not done.

        Args:
            model: keras.Model. The model being trained, as phase 1 left it (frozen backbone).
            result_type: type. The dataclass phase 1's result was saved from.
        """
        if not self.backup_dir:
            return None
        marker = os.path.join(self.backup_dir, PHASE1_DONE)
        if not os.path.exists(marker):
            return None
        with np.load(os.path.join(self.backup_dir, PHASE1_WEIGHTS)) as saved:
            model.set_weights([saved[f"arr_{index}"] for index in range(len(saved.files))])
        with open(marker, encoding="utf-8") as f:
            result = result_type(**json.load(f))
        logging.info("Phase 1 already completed (%s): skipped, its final weights restored.", marker)
        return result

    def save_phase1(self, model: keras.Model, result) -> None:
        """Saves phase 1's final weights, then the marker with its `result` (a dataclass)."""
        if not self.backup_dir:
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = os.path.join(self.backup_dir, PHASE1_WEIGHTS)
        with open(weights + ".tmp", "wb") as f:
            np.savez(f, *model.get_weights())
        os.replace(weights + ".tmp", weights)
        marker = os.path.join(self.backup_dir, PHASE1_DONE)
        with open(marker + ".tmp", "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(result), f, default=float)
        os.replace(marker + ".tmp", marker)

    def finish(self) -> None:
        """Deletes the backups of a completed run."""
        if not self.backup_dir:
            return
        shutil.rmtree(self.backup_dir, ignore_errors=True)
