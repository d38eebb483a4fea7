"""Fault tolerance for the two-phase engine: resume a killed run where it stopped.

`keras.callbacks.BackupAndRestore` backs up one training run: weights, optimizer
state (so the learning-rate schedule goes on from the right step) and the epoch.
`fine_tune` trains twice with a recompile (new optimizer, new trainable
set) between them, so one backup cannot describe the run. `RunBackup` keeps one
per phase, plus a marker that phase 1 is over:

```
backup_dir/
  phase1/                     BackupAndRestore of phase 1 (deleted with the run), its settings and epoch logs
  phase1_final.weights.npz    the weights phase 1 ended with (after best-weight restore)
  phase1_done.json            marker, written last: phase 1's PhaseResult
  phase2/                     BackupAndRestore of phase 2
```

A restarted run with the same arguments: without the marker, phase 1 resumes
from its last backed-up epoch; with it, phase 1 is skipped (its result read back,
its final weights loaded) and phase 2 resumes from its own last backed-up epoch.
At most one epoch is lost. A finished run deletes `backup_dir`, so running the
same command again trains from scratch. A phase's backup that other settings
wrote (epochs, batches per epoch, which weights train) is refused, not resumed.

`backup_dir` may be local or any filesystem `tf.io.gfile` knows (`gs://...`).
In a multi-worker run only the chief writes it and every worker restores from
it, so it must be a path all workers reach (a bucket or a shared disk).

LoRA layers (`FineTuneConfig.lora_rank`) are backed up as they are: original
kernel and adapters, not the merged kernel Keras' own saving writes (see
`tfxfer.models.lora_layers.raw_variables`), so a resumed phase 2 goes on
training the same adapters on the same frozen kernels.

Not backed up: early stopping's patience counter and best weights (a resumed
phase starts counting again), and the position of random streams (shuffling,
the feature cache's reshuffle included, augmentation, dropout), so a resumed
run matches an uninterrupted one within noise, exactly only when training is
deterministic.
"""

import dataclasses
import io
import json
import math
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError, NotAFolderError
from tfxfer.models import lora_layers
from tfxfer.training.results import PhaseResult

PHASE1_DONE = "phase1_done.json"
PHASE1_WEIGHTS = "phase1_final.weights.npz"
PHASES = ("phase1", "phase2")
# In each phase's folder, beside Keras' backup: what the phase was planned with (`_Backup._settings`), and its
# epochs' logs.
PHASE_STATE = "tfxfer_phase_state.json"


class RunBackup:
    """Backup state of one `fine_tune` run in `backup_dir` (see the module docstring).

    Args:
        backup_dir: str. Folder for this run's backups only (local or `gs://`);
            created if needed. None backs up nothing (every method is then a no-op).
        is_chief: bool. Whether this worker writes the backups; the others
            only restore from them.

    Raises:
        NotAFolderError: `backup_dir`, or a parent of it, is a file.
    """

    def __init__(self, backup_dir: str | os.PathLike | None, is_chief: bool = True):
        self.backup_dir = os.fspath(backup_dir) if backup_dir else None
        self.is_chief = is_chief
        # Checked now, before any training: Keras would first fail at the end of phase 1's first epoch, with an
        # OSError on `<backup_dir>/phase1` that does not say the argument was wrong.
        if self.backup_dir:
            _check_folder(self.backup_dir)

    def callbacks(self, phase: str) -> list[keras.callbacks.Callback]:
        """The `BackupAndRestore` of `phase` ("phase1" or "phase2")."""
        if phase not in PHASES:
            # `phase` names a sub-folder of backup_dir: any other string could point outside it.
            raise ValueError(f"phase must be one of {PHASES}. Received: phase={phase!r}")
        if not self.backup_dir:
            return []
        # Kept at the end of the phase (delete_checkpoint=False): a kill between the end
        # of phase 2 and `finish` then resumes to "nothing left to train", not a rerun.
        backup_type = _Backup if self.is_chief else _RestoreOnly
        return [backup_type(os.path.join(self.backup_dir, phase), double_checkpoint=True, delete_checkpoint=False)]

    def restore_phase1(self, model: keras.Model) -> PhaseResult | None:
        """Loads phase 1's final weights into `model` and returns its result, or None if not done.

        Args:
            model: keras.Model. The model being trained, as phase 1 left it (frozen backbone).
        """
        if not self.backup_dir:
            return None
        marker = os.path.join(self.backup_dir, PHASE1_DONE)
        if not tf.io.gfile.exists(marker):
            return None
        with tf.io.gfile.GFile(os.path.join(self.backup_dir, PHASE1_WEIGHTS), "rb") as f:
            # allow_pickle=False: weights are plain arrays, and a pickle in the file could run code.
            with np.load(io.BytesIO(f.read()), allow_pickle=False) as saved:
                weights = [saved[f"arr_{index}"] for index in range(len(saved.files))]
        try:
            model.set_weights(weights)
        except ValueError as error:  # only the fit: a pickled array was refused above, as it is
            raise _another_run(self.backup_dir) from error
        with tf.io.gfile.GFile(marker, "r") as f:
            result = PhaseResult(**json.loads(f.read()))
        logging.info("Phase 1 already completed (%s): skipped, its final weights restored.", marker)
        return result

    def save_phase1(self, model: keras.Model, result: PhaseResult) -> None:
        """Saves phase 1's final weights, then the marker with its `result`."""
        if not self.backup_dir or not self.is_chief:
            return
        tf.io.gfile.makedirs(self.backup_dir)
        weights = io.BytesIO()
        np.savez(weights, *model.get_weights())
        _write_atomically(os.path.join(self.backup_dir, PHASE1_WEIGHTS), weights.getvalue(), "wb")
        # The marker last: it promises that the weights above are complete.
        _write_atomically(os.path.join(self.backup_dir, PHASE1_DONE),
                          json.dumps(dataclasses.asdict(result), default=float), "w")

    def finish(self) -> None:
        """Deletes the backups of a completed run."""
        if not self.backup_dir or not self.is_chief:
            return
        if tf.io.gfile.exists(self.backup_dir):
            tf.io.gfile.rmtree(self.backup_dir)


class _Backup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that writes and reads LoRA layers' own variables, not Keras' merged kernel, refuses
    to resume a phase planned otherwise than the one it backed up (see `_settings`), and keeps the logs of the
    epochs it backed up, which a resumed phase's history starts with (`restored_logs`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # None once they cannot be whole: resumed from a backup that kept no logs (an earlier tfxfer wrote it).
        self._epoch_logs = []
        self.restored_logs = []  # The logs of the epochs the restored backup had run, one dict each.

    def on_epoch_end(self, epoch, logs=None):
        # Before the backup is written: the backup of an epoch holds its logs and those of the epochs before it.
        if self._epoch_logs is not None:
            self._epoch_logs.append({name: float(value) for name, value in (logs or {}).items()})
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        # Before the weights, so that a backup that has weights has the settings they were trained with.
        tf.io.gfile.makedirs(self.backup_dir)
        state = {**self._settings(), "history": self._epoch_logs}
        _write_atomically(self._state_path, json.dumps(state), "w")
        with lora_layers.raw_variables(self.model):
            super()._save_model()

    def _load_model(self):
        saved = None
        if tf.io.gfile.exists(self._weights_path) and tf.io.gfile.exists(self._state_path):
            with tf.io.gfile.GFile(self._state_path, "r") as f:
                saved = json.loads(f.read())
            # Before the weights load, so that a refused backup leaves the model as it was.
            if saved["weights"] != self._settings()["weights"]:
                raise _another_run(os.path.dirname(self.backup_dir))
            self._check_settings(saved)
        with lora_layers.raw_variables(self.model):
            try:
                super()._load_model()
            except ValueError as error:  # Keras lists every weight that did not fit, arrays and all
                raise _another_run(os.path.dirname(self.backup_dir)) from error
        restored = self.model._initial_epoch or 0
        history = (saved or {}).get("history") or []
        # As many as the epochs restored: after a corrupt backup Keras falls back to the one before it.
        self._epoch_logs = history[:restored] if len(history) >= restored else None
        self.restored_logs = list(self._epoch_logs or [])

    @property
    def _state_path(self) -> str:
        return os.path.join(self.backup_dir, PHASE_STATE)

    def _settings(self) -> dict:
        """What a resume must share with the phase that wrote the backup.

        The shapes of all the weights tell another model (another backbone, head or LoRA rank). Of the same model:
        with fewer epochs than the backup had run, the phase would train none and report no history; with other
        batches per epoch, its schedule would be another one; with other weights training (another
        `fine_tune_at`), Keras would drop the optimizer's state with a warning and start the schedule again.
        """
        return {"weights": _shapes(self.model.weights), "epochs": self.params.get("epochs"),
                "steps": self.params.get("steps"), "trainable_weights": _shapes(self.model.trainable_variables)}

    def _check_settings(self, saved: dict) -> None:
        """Raises a `ConfigError` if the epochs, steps or trainable weights differ between `saved` and this phase."""
        current = self._settings()
        words = {"epochs": "epochs", "steps": "batches per epoch", "trainable_weights": "trainable weights"}
        differ = [f"{word} {_shown(saved[name])} then, {_shown(current[name])} now"
                  for name, word in words.items() if saved[name] != current[name]]
        if differ:
            raise ConfigError(
                f"backup_dir holds a backup of {os.path.basename(self.backup_dir)} of a run with other settings: "
                f"{'; '.join(differ)}. A backup resumes only the run that wrote it, started again with the same "
                "arguments (config, data, batch size): pass those, or a new backup_dir, or delete this one to train "
                f"from scratch. Received: backup_dir={os.path.dirname(self.backup_dir)!r}")


class _RestoreOnly(_Backup):
    """A non-chief worker's `BackupAndRestore`: restores the chief's backup, never writes it."""

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


def with_restored_epochs(backup_callbacks: list, history: dict[str, list]) -> dict[str, list]:
    """A phase's history with the epochs its restored backup had run before it, as one uninterrupted `fit`
    would have returned it.

    Args:
        backup_callbacks: list. The phase's callbacks from `RunBackup.callbacks` (empty without a backup).
        history: dict. `History.history` of the phase's `fit`, which holds only the epochs run since the restore.
    """
    restored = [logs for callback in backup_callbacks for logs in getattr(callback, "restored_logs", [])]
    if not restored:
        return history
    names = list(dict.fromkeys([name for logs in restored for name in logs] + list(history)))
    return {name: [logs.get(name, math.nan) for logs in restored] + list(history.get(name, [])) for name in names}


def _check_folder(backup_dir: str) -> None:
    """Raises a `NotAFolderError` if `backup_dir`, or the nearest of its parents that exists, is a file.

    As `tfxfer.export.versioning.check_folder_path` checks an export's folder (training sits below export), and
    as there only for local paths: elsewhere each step up would be a request.
    """
    if "://" in backup_dir:
        return
    existing = os.path.abspath(backup_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        where = "" if existing == os.path.abspath(backup_dir) else f" (its parent {existing!r} is a file)"
        raise NotAFolderError(
            f"backup_dir {backup_dir!r} is a file{where}; pass a folder: a run keeps a backup of each phase inside "
            f"it (it is created if missing). Received: backup_dir={backup_dir!r}")


def _another_run(backup_dir: str) -> ConfigError:
    """The error for a backup whose weights do not fit the model being trained."""
    return ConfigError(
        "backup_dir holds the backup of another run: its weights do not fit this model (another backbone, input "
        "size, number of classes or LoRA rank). A backup resumes only the run that wrote it, started again with the "
        "same arguments: pass a new backup_dir, or delete this one to train from scratch. "
        f"Received: backup_dir={backup_dir!r}")


def _shapes(variables) -> list[list[int]]:
    return [[int(size) for size in variable.shape] for variable in variables]


def _shown(value) -> str:
    """A setting as the error shows it: the trainable weights' shapes by their count and size."""
    if not isinstance(value, list):
        return str(value)
    return f"{len(value)} ({sum(int(np.prod(shape)) for shape in value)} parameters)"


def _write_atomically(path, content, mode):
    with tf.io.gfile.GFile(path + ".tmp", mode) as f:
        f.write(content)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
