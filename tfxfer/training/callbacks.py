"""Callbacks the engine adds to every phase."""

import os
import time

import keras
from absl import logging


class EpochLogger(keras.callbacks.Callback):
    """Logs each epoch's metrics through absl instead of Keras' progress bar."""

    def __init__(self, phase: str):
        super().__init__()
        self.phase = phase
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        metrics = " ".join(f"{name}={value:.4f}" for name, value in sorted((logs or {}).items()))
        logging.info(
            "%s epoch %d/%d (%.1fs): %s",
            self.phase, epoch + 1, self.params.get("epochs", 0), time.perf_counter() - self._epoch_start, metrics,
        )


def early_stopping(patience: int | None, has_validation: bool) -> list[keras.callbacks.Callback]:
    """Early stopping on `val_loss` with best-weight restore; none without validation data."""
    if patience is None or not has_validation:
        return []
    return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]


def tensorboard(log_dir: str | None, phase_slot: str) -> list[keras.callbacks.Callback]:
    """TensorBoard event files of one phase in `<log_dir>/<phase_slot>`: its epochs' metrics and learning rate.

    Each phase has its own folder, so TensorBoard shows the phases as runs side by side.
    """
    if log_dir is None:
        return []
    return [keras.callbacks.TensorBoard(log_dir=os.path.join(log_dir, phase_slot), write_graph=False,
                                        update_freq="epoch")]
