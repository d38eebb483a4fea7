"""`plan_phases`: `fine_tune`'s arguments checked once and turned into the `Phase`s to run.

Every check runs here, before any training: a bad `fine_tune_at`, layer decay,
class weight, callback or dataset fails now, not after phase 1 has trained.
"""

import dataclasses
import math

import keras
import tensorflow as tf
from absl import logging

from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError, is_real_number
from tfxfer.models import heads, layer_names
from tfxfer import tasks as tasks_lib
from tfxfer.training import (
    class_weights,
    console,
    feature_cache,
    freezing,
    input_checks,
    interpolation,
    layerwise_lr,
    lora,
    losses,
)
from tfxfer.training.phase import Phase


def plan_phases(
    model: keras.Model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    config: FineTuneConfig,
    *,
    callbacks: list[keras.callbacks.Callback] | None,
    class_counts: list[int] | None,
    cache_features: bool | None,
    loss: keras.losses.Loss | None = None,
) -> list[Phase]:
    """Phase 1, and phase 2 unless `config.fine_tune_epochs` is 0 (arguments as in `fine_tune`).

    Raises:
        ConfigError: see `fine_tune`.
    """
    backbone = backbone_of(model)
    lr_multipliers = None
    check_schedule_numbers(config)
    lora.check_rank(config.lora_rank)
    callbacks = _callbacks_tuple(callbacks)
    if config.fine_tune_epochs:
        # Phase 2's settings are resolved now, so that a bad one fails before phase 1 has trained.
        _check_fine_tune_at_type(config.fine_tune_at)
        freezing.first_trainable_index(backbone.layers, config.fine_tune_at)
        _check_warmup_fraction(config.warmup_fraction)
        layerwise_lr.check_decay(config.layer_decay, "layer_decay")  # named as the config's field
        _check_ema_momentum(config.fine_tune_ema_momentum)
        interpolation.check(config.fine_tune_interpolation)
        if config.lora_rank is not None:
            lora.target_layers(model, config.fine_tune_at, config.lora_rank)
        if config.layer_decay != 1.0:
            lr_multipliers = layerwise_lr.layer_learning_rate_multipliers(model, config.layer_decay)
    check_data(model, train_data, validation_data, class_counts, loss=loss)
    steps = steps_per_epoch(train_data)
    kind, loss, class_weight = _loss_and_weights(model, config, loss, class_counts, train_data)
    cache_features = _resolve_cache_features(model, cache_features, config)
    phase1 = Phase(
        name="phase 1", backup_slot="phase1", skip_when_done=True,
        train=train_data, validation=validation_data, steps=steps,
        epochs=config.epochs, learning_rate=config.learning_rate, warmup_fraction=0.0,
        weight_decay=config.weight_decay, global_clipnorm=config.global_clipnorm, lr_multipliers=None,
        fine_tune_at=None, lora_rank=None, cache_features=cache_features,
        augmented_feature_passes=config.augmented_feature_passes,
        kind=kind, loss=loss, class_weight=class_weight,
        early_stopping_patience=config.early_stopping_patience, ema_momentum=None, interpolation=1.0,
        callbacks=callbacks,
    )
    if not config.fine_tune_epochs:
        return [phase1]
    # Phase 2 trains on the same data with the same loss; the backbone's top
    # trains too, so the frozen-backbone feature cache no longer applies.
    phase2 = dataclasses.replace(
        phase1, name="phase 2", backup_slot="phase2", skip_when_done=False,
        epochs=config.fine_tune_epochs, learning_rate=config.fine_tune_learning_rate,
        warmup_fraction=config.warmup_fraction, lr_multipliers=lr_multipliers,
        fine_tune_at=config.fine_tune_at, lora_rank=config.lora_rank, cache_features=False,
        ema_momentum=config.fine_tune_ema_momentum, interpolation=config.fine_tune_interpolation,
    )
    return [phase1, phase2]


def _loss_and_weights(model, config, loss, class_counts, train_data) -> tuple:
    """`(head kind, training loss, class weights)`; a multi-task model has no one kind (None)."""
    tasks = tasks_lib.model_tasks(model)
    if tasks is None:
        kind = heads.head_kind(model)
        class_weight = class_weights.resolve(config.class_weight, kind, class_counts, train_data,
                                             heads.num_classes(model))
        return kind, loss or losses.loss_for(kind, config.label_smoothing), class_weight
    if config.class_weight is not None:
        raise ConfigError(
            "class_weight weighs the classes of one head; a multi-task model has a head per task. Leave "
            "class_weight=None and weigh whole tasks with tfxfer.Task(loss_weight=...). "
            f"Received: class_weight={config.class_weight!r}")
    if loss is not None and not hasattr(loss, "task_accuracies"):
        raise ConfigError(
            "A multi-task model trains on a loss over all its tasks: pass a tfxfer.training.losses.MultiTaskLoss "
            f"(or a subclass), or leave loss=None. Received: loss={type(loss).__name__}")
    return None, loss or losses.MultiTaskLoss(tasks, config.label_smoothing), None


def check_schedule_numbers(config: FineTuneConfig) -> None:
    """Epochs, learning rates, weight decay, label smoothing, gradient clipping and early stopping's patience in
    their ranges; a bad one would fail mid-run or train nonsense."""
    for name, least in (("epochs", 1), ("fine_tune_epochs", 0)):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{name} must be an int >= {least}"
                              f"{' (0 skips phase 2)' if least == 0 else ''}. Received: {name}={value!r}")
    for name in ("learning_rate", "fine_tune_learning_rate"):
        value = getattr(config, name)
        if not is_real_number(value) or not 0 < value < math.inf:
            raise ConfigError(f"{name} must be a number > 0, e.g. {getattr(FineTuneConfig, name)}. "
                              f"Received: {name}={value!r}")
    decay = config.weight_decay
    # A negative decay grows the weights every step, and NaN turns them NaN: neither fails until much later.
    if not is_real_number(decay) or not 0 <= decay < math.inf:
        raise ConfigError(f"weight_decay must be a number >= 0 (0: none), e.g. {FineTuneConfig.weight_decay}. "
                          f"Received: weight_decay={decay!r}")
    smoothing = config.label_smoothing
    if not is_real_number(smoothing) or not 0 <= smoothing < 1:
        raise ConfigError("label_smoothing must be a number from 0 (none) up to, not including, 1, e.g. 0.1. "
                          f"Received: label_smoothing={smoothing!r}")
    clipnorm = config.global_clipnorm
    # Keras clips nothing at 0 or below, so such a value would turn clipping off without a word.
    if clipnorm is not None and (not is_real_number(clipnorm) or not 0 < clipnorm < math.inf):
        raise ConfigError("global_clipnorm must be a number > 0, the largest global norm of the gradients (e.g. 1.0), "
                          f"or None to clip nothing. Received: global_clipnorm={clipnorm!r}")
    patience = config.early_stopping_patience
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 0):
        raise ConfigError("early_stopping_patience must be an int >= 0, the epochs without a lower val_loss before a "
                          "phase stops (0 and 1 both stop at the first such epoch, as keras.callbacks.EarlyStopping "
                          f"does), e.g. 3, or None to never stop early. Received: early_stopping_patience={patience!r}")


def _check_fine_tune_at_type(fine_tune_at) -> None:
    # freezing's own TypeError, raised for any caller, would be a traceback in the recipes rather than a message.
    if isinstance(fine_tune_at, bool) or not isinstance(fine_tune_at, (int, float, str)):
        raise ConfigError("fine_tune_at must be where phase 2 starts unfreezing the backbone: a layer index (int), a "
                          "fraction of the layers from the top (float, e.g. 0.3) or a layer name (str). To train the "
                          f"head only, pass fine_tune_epochs=0. Received: fine_tune_at={fine_tune_at!r}")


def _check_warmup_fraction(fraction) -> None:
    if not is_real_number(fraction) or not 0 <= fraction < 1:
        raise ConfigError("warmup_fraction must be a number from 0 (no warmup) up to, not including, 1: the share "
                          f"of phase 2's steps spent warming up, e.g. {FineTuneConfig.warmup_fraction}. "
                          f"Received: warmup_fraction={fraction!r}")


def _callbacks_tuple(callbacks) -> tuple[keras.callbacks.Callback, ...]:
    """The user's callbacks as a tuple: a list or tuple of them, or one callback alone (as `fit` takes it)."""
    if callbacks is None:
        return ()
    if isinstance(callbacks, keras.callbacks.Callback):
        return (callbacks,)
    if not isinstance(callbacks, (list, tuple)):
        raise ConfigError("callbacks must be a list of keras.callbacks.Callback instances, e.g. "
                          f"[keras.callbacks.CSVLogger('epochs.csv')]. Received: callbacks of type "
                          f"{type(callbacks).__name__}")
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.Callback):
            what = "the class itself, not an instance: call it" if isinstance(callback, type) else "not a callback"
            raise ConfigError(f"Every item of callbacks must be a keras.callbacks.Callback instance; one is {what}. "
                              f"Received: callbacks item {callback!r}")
        if isinstance(callback, keras.callbacks.BackupAndRestore):
            # One backup for both phases: a run killed in phase 2 would restore phase 2's epoch into phase 1, train
            # no epoch of it, then start phase 2 again from its first epoch.
            raise ConfigError(
                "fine_tune backs up each phase on its own (two optimizers, two epoch counts): pass "
                "fine_tune(..., backup_dir=<folder>) instead of a keras.callbacks.BackupAndRestore in callbacks. "
                f"Received: callbacks item {type(callback).__name__}(backup_dir={callback.backup_dir!r})")
        if isinstance(callback, _SETS_LEARNING_RATE):
            # Each phase's optimizer follows a schedule, whose rate Keras cannot set: such a callback would fail
            # with a TypeError the first time it acts, after epochs of training, maybe in phase 2.
            raise ConfigError(
                "fine_tune schedules each phase's learning rate itself (cosine decay from "
                "FineTuneConfig.learning_rate; warmup, then cosine decay from fine_tune_learning_rate), so a "
                "callback cannot set it: leave it out, and set learning_rate and fine_tune_learning_rate in the "
                "config (fine_tune(..., find_learning_rate=1 or 2) picks one); early_stopping_patience stops a "
                f"phase whose val_loss stalls. Received: callbacks item {type(callback).__name__}")
    return tuple(callbacks)


# Keras callbacks that assign `model.optimizer.learning_rate`, which a LearningRateSchedule refuses.
_SETS_LEARNING_RATE = (keras.callbacks.ReduceLROnPlateau, keras.callbacks.LearningRateScheduler)


def _check_ema_momentum(momentum) -> None:
    if momentum is None:
        return
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum < 1:
        raise ConfigError("fine_tune_ema_momentum must be None (off) or a float between 0 and 1, e.g. 0.9: "
                          f"the average then spans about 1 / (1 - momentum) steps. Received: "
                          f"fine_tune_ema_momentum={momentum!r}")


def _resolve_cache_features(model: keras.Model, cache_features: bool | None, config: FineTuneConfig) -> bool:
    """Whether phase 1 trains on cached features: yes unless the caller says no (None counts as yes).

    With an augmentation layer, the cached features are those of the clean
    images (the extractor runs in inference mode): phase 1 is then a linear
    probe, and augmentation starts in phase 2, the order linear probing then
    fine-tuning recommends (Kumar et al., 2022). Chosen by measurement on
    splits of the training data (`benchmarks/choose_defaults.py`,
    benchmarks/README.md): against phase 1 on augmented images every epoch, the final
    model was within the splits' noise, for a sixth of phase 1's time; two
    cached augmented passes did no better than the clean images.
    """
    passes = config.augmented_feature_passes
    if not isinstance(passes, int) or isinstance(passes, bool) or passes < 0:
        raise ConfigError("augmented_feature_passes must be an int >= 0 (0 caches the clean images' features). "
                          f"Received: augmented_feature_passes={passes!r}")
    if cache_features is not None and not isinstance(cache_features, bool):  # "no" would be taken for yes
        raise ConfigError("cache_features must be True, False (phase 1 runs the backbone on every batch) or None "
                          f"(the default: cache). Received: cache_features={cache_features!r}")
    augmented = feature_cache.has_augmentation(model)
    if cache_features is False:
        logging.info("Phase 1 runs the backbone on every batch (cache_features=False)%s.",
                     ", with augmentation" if augmented else "")
        return False
    if augmented:
        what = (f"{console.counted(passes, 'randomly augmented pass', 'randomly augmented passes')} over the images"
                if passes else "the un-augmented images")
        logging.info("Phase 1 trains the head on features of %s, computed once; augmentation runs in every "
                     "step of phase 2%s. Pass cache_features=False to augment every epoch of phase 1.", what,
                     "" if config.fine_tune_epochs else ", which is off (fine_tune_epochs=0)")
    return True


def config_or_default(config: FineTuneConfig | None) -> FineTuneConfig:
    """`config`, or the defaults for None; a ConfigError for anything else (a dict of its fields, say)."""
    if config is None:
        return FineTuneConfig()
    if not isinstance(config, FineTuneConfig):
        raise ConfigError("config must be a tfxfer.FineTuneConfig, e.g. tfxfer.FineTuneConfig(epochs=5); a dict of its "
                          "fields makes one as tfxfer.FineTuneConfig(**fields). "
                          f"Received: config of type {type(config).__name__}")
    return config


def check_data(model: keras.Model, train_data: tf.data.Dataset, validation_data: tf.data.Dataset | None,
               class_counts: list[int] | None, *, loss: keras.losses.Loss | None = None) -> None:
    """Raises a `ConfigError` if the datasets, `class_counts` or the user's own `loss` (None: the head's) do not fit
    `model`'s inputs and head."""
    if class_counts is not None and tasks_lib.model_tasks(model) is None:
        input_checks.check_class_counts(class_counts, heads.num_classes(model))
    for name, data in (("train_data", train_data), ("validation_data", validation_data)):
        if data is not None:
            # Given class_counts vouch for the labels: no first batch is read then. The loss is tried once.
            input_checks.check_dataset(model, data, name=name, peek=class_counts is None,
                                       loss=loss if name == "train_data" else None)


def backbone_of(model: keras.Model) -> keras.Model:
    """The layer `fine_tune` freezes, then fine-tunes."""
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
        logging.info("Counted %s per epoch in the training dataset.", console.counted(cardinality, "batch", "batches"))
    if cardinality == 0:
        raise ConfigError("The training dataset is empty; pass at least one batch. Received: 0 batches")
    return cardinality
