"""Two-phase transfer learning on any tfxfer model: `fine_tune`.

Phase 1 trains the head on a frozen backbone (on features the backbone computed
once, when caching); phase 2 unfreezes the top of the backbone and trains on at a
lower learning rate. Both phases run `TrainLoop`, one loop for every
`tf.distribute` strategy, with Keras callbacks as under `fit`.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer import distribute, freezing, heads, layer_names
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError
from tfxfer.training import backup as backup_lib
from tfxfer.training import callbacks as callbacks_lib
from tfxfer.training import feature_cache, input_checks, layerwise_lr, losses, schedules
from tfxfer.training.loop import TrainLoop


@dataclasses.dataclass
class PhaseResult:
    """What one phase did.

    Attributes:
        history: dict. Per-epoch metrics, as in `keras.callbacks.History.history`.
        seconds: float. Wall time of the phase.
        epochs_run: int. Epochs actually run (early stopping may cut them).
        final_metrics: dict. Validation metrics of the weights the phase ended
            with (after best-weight restore), `val_`-prefixed.
        trainable_parameters: int. Trainable parameter count during the phase.
    """

    history: dict[str, list[float]]
    seconds: float
    epochs_run: int
    final_metrics: dict[str, float]
    trainable_parameters: int

    def summary(self) -> dict:
        return {**self.final_metrics, "seconds": round(self.seconds, 2),
                "epochs_run": self.epochs_run, "trainable_parameters": self.trainable_parameters}


@dataclasses.dataclass
class FineTuneResult:
    phase1: PhaseResult
    phase2: PhaseResult | None

    def metrics(self) -> dict:
        """`{"phase1": {...}, "phase2": {...}}` with `val_accuracy`, `val_loss`, `seconds`, ..."""
        result = {"phase1": self.phase1.summary()}
        if self.phase2 is not None:
            result["phase2"] = self.phase2.summary()
        return result


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
    config = config or FineTuneConfig()
    backbone = _backbone(model)
    lr_multipliers = None
    if config.fine_tune_epochs:
        # A bad fine_tune_at or layer_decay fails now, not after phase 1 has trained.
        freezing.first_trainable_index(backbone.layers, config.fine_tune_at)
        if config.layer_decay != 1.0:
            lr_multipliers = layerwise_lr.layer_learning_rate_multipliers(model, config.layer_decay)
    kind = heads.head_kind(model)
    if class_counts is not None:
        input_checks.check_class_counts(class_counts, heads.num_classes(model))
    for name, data in (("train_data", train_data), ("validation_data", validation_data)):
        if data is not None:
            input_checks.check_dataset(model, data, name=name, peek=class_counts is None)
    steps = steps_per_epoch(train_data)
    class_weight = _class_weight(config.class_weight, kind, class_counts, train_data, heads.num_classes(model))
    run = dict(train_data=train_data, validation_data=validation_data, kind=kind, config=config,
               callbacks=list(callbacks or []), class_weight=class_weight, steps=steps)

    backup = backup_lib.RunBackup(backup_dir, is_chief=distribute.is_chief())
    if cache_features is None:
        cache_features = not feature_cache.has_augmentation(model)

    freezing.freeze_backbone(backbone)
    phase1 = backup.restore_phase1(model, PhaseResult)
    if phase1 is None:
        phase1 = _run_phase1(model, cache_features, backup.callbacks("phase1"), **run)
        backup.save_phase1(model, phase1)
    if not config.fine_tune_epochs:
        backup.finish()
        return FineTuneResult(phase1, None)

    freezing.unfreeze_top(backbone, config.fine_tune_at)
    schedule = schedules.warmup_cosine(
        config.fine_tune_learning_rate, config.fine_tune_epochs * steps, config.warmup_fraction)
    phase2 = _run_phase(model, "phase 2", epochs=config.fine_tune_epochs, schedule=schedule,
                        backup_callbacks=backup.callbacks("phase2"), lr_multipliers=lr_multipliers, **run)
    backup.finish()
    return FineTuneResult(phase1, phase2)


def _run_phase1(model, cache_features, backup_callbacks, *, train_data, validation_data, steps, config,
                **run) -> PhaseResult:
    extract_seconds, head = 0.0, None
    if cache_features:
        cached = feature_cache.cache_phase(model, train_data, validation_data)
        head, train_data, validation_data = cached.head, cached.train, cached.validation
        extract_seconds, steps = cached.seconds, steps_per_epoch(cached.train)
    result = _run_phase(model, "phase 1", epochs=config.epochs,
                        schedule=schedules.warmup_cosine(config.learning_rate, config.epochs * steps),
                        train_data=train_data, validation_data=validation_data, steps=steps, config=config,
                        backup_callbacks=backup_callbacks, head=head, **run)
    result.seconds += extract_seconds
    return result


def _run_phase(model, phase, *, epochs, schedule, train_data, validation_data, kind, config, callbacks,
               class_weight, steps, backup_callbacks=(), head=None, lr_multipliers=None) -> PhaseResult:
    # The optimizer is created anew each phase: its slots must match the new trainable set.
    # compile attaches it (BackupAndRestore saves model.optimizer) and leaves the model
    # ready for the user's own evaluate/predict.
    loss = losses.loss_for(kind, config.label_smoothing)
    with model.distribute_strategy.scope():
        settings = dict(learning_rate=schedule, weight_decay=config.weight_decay,
                        global_clipnorm=config.global_clipnorm)
        optimizer = (layerwise_lr.LayerwiseAdamW(lr_multipliers=lr_multipliers, **settings) if lr_multipliers
                     else keras.optimizers.AdamW(**settings))
        model.compile(optimizer=optimizer, loss=loss, metrics=losses.metrics_for(kind))
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    logging.info("%s: %d epochs, %d trainable parameters.", phase, epochs, trainable)
    phase_callbacks = [
        *backup_callbacks,  # first: restores weights and epoch before the others start
        *callbacks_lib.early_stopping(config.early_stopping_patience, validation_data is not None),
        # Progress from the chief only; every worker runs the others, so that they
        # decide alike (early stopping) and restore alike (backups).
        *([callbacks_lib.EpochLogger(phase)] if distribute.is_chief() else []),
        *callbacks,
    ]
    start = time.perf_counter()
    loop = TrainLoop(model, kind, loss, class_weight, head=head)
    history = loop.fit(train_data, validation_data=validation_data, epochs=epochs, steps=steps,
                       callbacks=phase_callbacks)
    final = {}
    if validation_data is not None:
        final = {f"val_{name}": value for name, value in loop.evaluate(validation_data).items()}
    seconds = time.perf_counter() - start
    logging.info("%s done in %.1fs: %s", phase, seconds, final)
    # A resumed phase's history starts at the resumed epoch; epochs_run counts from 0.
    epochs_run = history.epoch[-1] + 1 if history.epoch else 0
    return PhaseResult(history.history, seconds, epochs_run, final, trainable)


def _backbone(model: keras.Model) -> keras.Model:
    try:
        return model.get_layer(layer_names.BACKBONE)
    except ValueError as error:
        raise ConfigError(
            f"fine_tune needs a model with a layer named {layer_names.BACKBONE!r} (the part "
            "to freeze, then fine-tune); build it with tfxfer.build_image_classifier. "
            f"Received: model={model.name!r}"
        ) from error


def steps_per_epoch(dataset: tf.data.Dataset) -> int:
    """Batches per epoch, which the learning-rate schedules need up front."""
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ConfigError(
            "The training dataset is infinite (.repeat() without a count); fine_tune "
            "runs whole epochs. Remove the .repeat() or give it a count."
        )
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        # Filtering or reading files hides the size; one pass counts it.
        cardinality = int(dataset.reduce(0, lambda count, _: count + 1))
        logging.info("Counted %d batches per epoch in the training dataset.", cardinality)
    if cardinality == 0:
        raise ConfigError("The training dataset is empty; pass at least one batch. Received: 0 batches")
    return cardinality


def _class_weight(setting, kind, class_counts, train_data, num_classes):
    if setting is None or isinstance(setting, dict):
        return setting
    if setting != "balanced":
        raise ConfigError(
            f"class_weight must be None, 'balanced' or a dict. Received: class_weight={setting!r}"
        )
    if kind is heads.HeadKind.MULTILABEL:
        raise ConfigError(
            "class_weight='balanced' needs one label per example; it does not apply to multi-label heads.")
    if class_counts is None:
        class_counts = count_labels(train_data, num_classes)
    if len(class_counts) != num_classes:
        raise ConfigError(
            f"class_counts needs one count per class of the model ({num_classes}). "
            f"Received: class_counts={list(class_counts)}"
        )
    return balanced_class_weight(class_counts)


def balanced_class_weight(class_counts: list[int]) -> dict[int, float]:
    """Weights inversely proportional to class frequency (scikit-learn's "balanced")."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if (counts <= 0).any():
        raise ConfigError(
            f"Every class needs at least one training example. Received: class_counts={list(class_counts)}")
    weights = counts.sum() / (len(counts) * counts)
    return {index: float(weight) for index, weight in enumerate(weights)}


def count_labels(dataset: tf.data.Dataset, num_classes: int) -> list[int]:
    """Examples per class in a dataset of (inputs, integer labels) batches.

    Sized by `num_classes`, not by the labels seen: a class absent from the data
    counts 0 instead of vanishing from the end of the list.
    """
    counts = np.zeros(num_classes, dtype=np.int64)
    for _, labels in dataset:
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        if labels.size and not 0 <= labels.min() <= labels.max() < num_classes:
            raise ConfigError(
                f"Labels must be class indices in [0, {num_classes}). "
                f"Received: labels={sorted(set(labels.tolist()))}"
            )
        counts += np.bincount(labels, minlength=num_classes)
    return counts.tolist()
