"""Two-phase transfer learning on any tfxfer model: `fine_tune`.

Phase 1 trains the head on a frozen backbone (on features the backbone computed
once, when caching); phase 2 unfreezes the top of the backbone and trains on at a
lower learning rate. `planner` checks the arguments once and describes each phase
as a `Phase`; `run_phase` trains it with `TrainLoop`, one loop for every
`tf.distribute` strategy, with Keras callbacks as under `fit`.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer import distribute
from tfxfer.defaults import FineTuneConfig
from tfxfer.models import layer_names
from tfxfer.training import backup as backup_lib
from tfxfer.training import callbacks as callbacks_lib
from tfxfer.training import feature_cache, freezing, layerwise_lr, losses, planner
from tfxfer.training.loop import TrainLoop
from tfxfer.training.phase import Phase
from tfxfer.training.results import FineTuneResult, PhaseResult


def fine_tune(
    model: keras.Model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None = None,
    *,
    config: FineTuneConfig | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    class_counts: list[int] | None = None,
    cache_features: bool | None = None,
    backup_dir: str | os.PathLike | None = None,
) -> FineTuneResult:
    """Trains a tfxfer model in two phases: frozen backbone, then its top unfrozen.

    Args:
        model: keras.Model. A model with a `backbone` and a `predictions` layer,
            e.g. from `tfxfer.build_image_classifier`.
        train_data: tf.data.Dataset. Batches of (inputs, labels), finite.
        validation_data: tf.data.Dataset. Batches of (inputs, labels), or None.
        config: FineTuneConfig. Epochs, learning rates, etc.; defaults if None.
        callbacks: list. Extra Keras callbacks, used in both phases. In
            multi-worker training they run on every worker; ones that write
            files should do so only where `tfxfer.is_chief()`.
        class_counts: list of int. Training examples per class, for
            `class_weight="balanced"`; counted from `train_data` if None.
            Also vouches for the labels: given, its length is checked against
            the head instead of reading the first batch of each dataset.
        cache_features: bool. Phase 1 trains the head on features the frozen
            backbone computed once (`tfxfer.training.feature_cache`) instead of
            running the backbone every epoch. None (default): cache unless the
            model has a random augmentation layer, which caching would skip.
        backup_dir: str. Fault tolerance: the training state is backed up here
            each epoch, and a run killed and started again with the same
            arguments resumes where it stopped (phase 1 or phase 2; see
            `tfxfer.training.backup`). Deleted when the run completes. None
            disables backups.

    Returns:
        A `FineTuneResult`; the model is trained in place.

    Raises:
        ConfigError: before any training, when the data does not fit the
            model: another image size or input structure, labels of another
            width or kind than the head's, a label past its classes (seen in
            the first batch, when `class_counts` is None), or a bad
            `fine_tune_at` / `class_weight`.
    """
    phases = planner.plan_phases(model, train_data, validation_data, config or FineTuneConfig(),
                                 callbacks=callbacks, class_counts=class_counts, cache_features=cache_features)
    backup = backup_lib.RunBackup(backup_dir, is_chief=distribute.is_chief())
    results = [run_phase(model, phase, backup) for phase in phases]
    backup.finish()
    return FineTuneResult(results[0], results[1] if len(results) > 1 else None)


def run_phase(model: keras.Model, phase: Phase, backup: backup_lib.RunBackup) -> PhaseResult:
    """Sets which layers train, then trains `phase`, or restores it if `backup` says it finished."""
    freezing.set_trainable(model.get_layer(layer_names.BACKBONE), phase.fine_tune_at)
    if phase.skip_when_done and (restored := backup.restore_phase1(model)) is not None:
        return restored
    result = _train(model, phase, backup.callbacks(phase.backup_slot))
    if phase.skip_when_done:
        backup.save_phase1(model, result)
    return result


def _train(model: keras.Model, phase: Phase, backup_callbacks: list) -> PhaseResult:
    """Trains `model` through `phase` and says what that did."""
    head, extract_seconds = None, 0.0
    if phase.cache_features:
        phase, head, extract_seconds = _on_cached_features(model, phase)
    loss = _compile(model, phase)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    logging.info("%s: %d epochs, %d trainable parameters.", phase.name, phase.epochs, trainable)
    phase_callbacks = _callbacks(phase, backup_callbacks)
    start = time.perf_counter()
    loop = TrainLoop(model, phase.kind, loss, phase.class_weight, head=head)
    history = loop.fit(phase.train, validation_data=phase.validation, epochs=phase.epochs, steps=phase.steps,
                       callbacks=phase_callbacks)
    final = _validation_metrics(loop, phase.validation)
    seconds = time.perf_counter() - start
    logging.info("%s done in %.1fs: %s", phase.name, seconds, final)
    # A resumed phase's history starts at the resumed epoch; epochs_run counts from 0.
    epochs_run = history.epoch[-1] + 1 if history.epoch else 0
    return PhaseResult(history.history, seconds + extract_seconds, epochs_run, final, trainable)


def _validation_metrics(loop: TrainLoop, validation: tf.data.Dataset | None) -> dict[str, float]:
    """`val_`-prefixed metrics of the weights the phase ended with (after any best-weight restore)."""
    if validation is None:
        return {}
    return {f"val_{name}": value for name, value in loop.evaluate(validation).items()}


def _on_cached_features(model: keras.Model, phase: Phase) -> tuple[Phase, keras.Model, float]:
    """`phase` on features the frozen backbone computed once, the head that takes them, and the extraction time."""
    cached = feature_cache.cache_phase(model, phase.train, phase.validation)
    # The cache keeps the largest batch's size, so its number of batches may differ.
    cached_phase = dataclasses.replace(phase, train=cached.train, validation=cached.validation,
                                       steps=planner.steps_per_epoch(cached.train))
    return cached_phase, cached.head, cached.seconds


def _compile(model: keras.Model, phase: Phase) -> keras.losses.Loss:
    """Compiles `model` with the phase's loss and a new optimizer; returns the loss."""
    # The optimizer is created anew each phase: its slots must match the new trainable set.
    # compile attaches it (BackupAndRestore saves model.optimizer) and leaves the model
    # ready for the user's own evaluate/predict.
    loss = losses.loss_for(phase.kind, phase.label_smoothing)
    with model.distribute_strategy.scope():
        model.compile(optimizer=_optimizer(phase), loss=loss, metrics=losses.metrics_for(phase.kind))
    return loss


def _optimizer(phase: Phase) -> keras.optimizers.Optimizer:
    settings = {"learning_rate": phase.schedule(), "weight_decay": phase.weight_decay,
                "global_clipnorm": phase.global_clipnorm}
    if phase.lr_multipliers:
        return layerwise_lr.LayerwiseAdamW(lr_multipliers=phase.lr_multipliers, **settings)
    return keras.optimizers.AdamW(**settings)


def _callbacks(phase: Phase, backup_callbacks: list) -> list[keras.callbacks.Callback]:
    return [
        *backup_callbacks,  # first: restores weights and epoch before the others start
        *callbacks_lib.early_stopping(phase.early_stopping_patience, phase.validation is not None),
        # Progress from the chief only; every worker runs the others, so that they
        # decide alike (early stopping) and restore alike (backups).
        *([callbacks_lib.EpochLogger(phase.name)] if distribute.is_chief() else []),
        *phase.callbacks,
    ]
