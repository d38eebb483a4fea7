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
import tensorflow as tf
from absl import logging

from tfxfer import distribute
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError, InvalidLabelsError, NonFiniteLossError
from tfxfer.models import layer_names
from tfxfer.training import backup as backup_lib
from tfxfer.training import callbacks as callbacks_lib
from tfxfer.training import (
    console,
    feature_cache,
    freezing,
    interpolation,
    lora,
    losses,
    lr_finder,
    optimizers,
    planner,
    precision,
)
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
    verbose: str | int = "auto",
    tensorboard_dir: str | os.PathLike | None = None,
    find_learning_rate: int | None = None,
    loss: keras.losses.Loss | None = None,
) -> FineTuneResult:
    """Trains a tfxfer model in two phases: frozen backbone, then its top unfrozen.

    Args:
        model: keras.Model. A model with a `backbone` and a `predictions` layer,
            e.g. from `tfxfer.build_image_classifier`.
        train_data: tf.data.Dataset. Batches of (inputs, labels), finite.
        validation_data: tf.data.Dataset. Batches of (inputs, labels), or None.
        config: FineTuneConfig. Epochs, learning rates, etc.; defaults if None.
        callbacks: list. Extra Keras callbacks, used in both phases (one
            callback alone counts as a list of it, as in `fit`). In
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
            disables backups. Another run's backup, whose weights do not fit
            `model`, is refused (`ConfigError`).
        verbose: "auto", 0, 1 or 2, as in `fit`: 0 silent, 1 a progress bar
            inside each epoch, 2 one line per epoch. "auto" (default) is 1 in
            an interactive terminal and 2 otherwise (logs, CI). Keras draws
            them on stdout; with 0, each epoch is logged through absl instead.
            Before each phase, a summary of what it trains (epochs, learning
            rate, trainable vs frozen parameters and layers) is logged through
            absl: `absl.logging.set_verbosity("info")` shows it.
        tensorboard_dir: str. TensorBoard event files go to
            `<tensorboard_dir>/phase1` and `.../phase2`: each epoch's loss,
            accuracy, validation metrics and learning rate. None writes none.
        find_learning_rate: 1 or 2. Right before that phase, the learning-rate
            finder (`tfxfer.training.lr_finder`) sweeps the rate from the
            current weights, restores them, and the phase trains at its
            suggestion instead of the config's rate. The sweep is in the
            result (`PhaseResult.learning_rate_sweep`). None (default) keeps
            the config's rates.
        loss: keras.losses.Loss. Your own training loss instead of the head's
            (cross-entropy with `config.label_smoothing`), e.g.
            `keras.losses.SparseCategoricalCrossentropy()` or a subclass. It
            gets the labels as the data holds them (class ids, or multi-hot
            rows for a multi-label head) and the head's probabilities (not
            logits); its `call` must return one loss per example, which
            class weights then weight.

    Returns:
        A `FineTuneResult`; the model is trained in place.

    Example:

    ```python
    data = tfxfer.load_image_folders("photos", image_size=(320, 320), validation_split=0.2)
    model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names))
    result = tfxfer.fine_tune(model, data.train, data.validation,
                              config=tfxfer.FineTuneConfig(epochs=5, fine_tune_epochs=5))
    print(result.metrics()["phase2"]["val_accuracy"])
    ```

    Raises:
        ConfigError: before any training, when the arguments or the data do
            not fit the model: datasets that are not `tf.data.Dataset`s, or
            empty; another image size or input structure, labels of another
            width or kind than the head's, a label past its classes (seen in
            the first batch, when `class_counts` is None), token ids past the
            vocabulary, a `config` that is not a `FineTuneConfig`, a config
            field of the wrong type or out of range (epochs, learning rates,
            label smoothing, warmup, clipping, patience, ...), a bad
            `fine_tune_at` / `class_weight` / `callbacks` / `cache_features`,
            a `lora_rank` the backbone cannot take (see `tfxfer.training.lora`),
            or a `loss` that does not fit the head (tried once on a few
            examples: it fails, or gives no finite loss per example).
            During training: a batch with a label past the head's classes.
        NonFiniteLossError: during training, a batch whose loss is NaN or
            infinite (NaN in the inputs, or a learning rate far too high).
            After either error during training, the model has the weights it
            started that phase with (phase 1's trained ones if phase 2 stopped).
    """
    if find_learning_rate not in (None, 1, 2):
        raise ConfigError(f"find_learning_rate must be 1 or 2 (the phase whose learning rate the finder picks), "
                          f"or None. Received: find_learning_rate={find_learning_rate!r}")
    verbose = console.resolve_verbose(verbose)
    config = planner.config_or_default(config)
    compute = precision.Compute.for_model(model, config.mixed_precision, config.jit_compile)
    phases = planner.plan_phases(model, train_data, validation_data, config,
                                 callbacks=callbacks, class_counts=class_counts, cache_features=cache_features,
                                 loss=loss)
    if find_learning_rate is not None and find_learning_rate > len(phases):
        raise ConfigError("find_learning_rate=2 needs a phase 2; set fine_tune_epochs > 0, or pass "
                          "find_learning_rate=1.")
    backup = backup_lib.RunBackup(backup_dir, is_chief=distribute.is_chief())
    # The policy is set on the built layers for the run only: the trained model is float32 again.
    with precision.mixed_precision(model, compute.policy):
        results = [run_phase(model, phase, backup, verbose=verbose, find_learning_rate=number == find_learning_rate,
                             tensorboard_dir=tensorboard_dir, compute=compute)
                   for number, phase in enumerate(phases, start=1)]
    backup.finish()
    return FineTuneResult(results[0], results[1] if len(results) > 1 else None)


def run_phase(model: keras.Model, phase: Phase, backup: backup_lib.RunBackup, *, verbose: int = 0,
              find_learning_rate: bool = False, tensorboard_dir: str | os.PathLike | None = None,
              compute: precision.Compute | None = None,
              cached: feature_cache.CachedPhase | None = None) -> PhaseResult:
    """Sets which layers train (LoRA adapters instead, with `phase.lora_rank`), then trains `phase`, or restores
    it if `backup` says it finished.

    With `find_learning_rate`, the phase trains at the finder's suggestion (see `fine_tune`).
    `compute` says whether the steps are XLA-compiled and whether the optimizer
    scales the loss (None: float32 graph steps); the layers' dtype policies are
    the caller's (`precision.mixed_precision`). `cached`: the features of
    `phase`'s data, extracted earlier by `feature_cache.cache_phase` from the
    same frozen backbone (hyperparameter search extracts them once for all its
    trials); None extracts them here when the phase caches features.
    """
    compute = compute or precision.Compute()
    freezing.set_trainable(model.get_layer(layer_names.BACKBONE), phase.fine_tune_at)
    if phase.lora_rank is not None:
        adapted = lora.train_adapters(model, phase.fine_tune_at, phase.lora_rank)
        phase = dataclasses.replace(phase, lr_multipliers=lora.adapter_multipliers(adapted, phase.lr_multipliers))
    if phase.skip_when_done and (restored := backup.restore_phase1(model)) is not None:
        return restored
    sweep = None
    cached = cached if phase.cache_features else None
    if find_learning_rate:
        if phase.cache_features and cached is None:  # extracted once, for the sweep and the phase
            cached = feature_cache.cache_phase(model, phase.train, phase.validation,
                                                augmented_passes=phase.augmented_feature_passes)
        sweep = lr_finder.sweep_phase(model, phase, cached=cached, compute=compute)
        phase = dataclasses.replace(phase, learning_rate=sweep.suggestion)
    if tensorboard_dir is not None and distribute.is_chief():
        phase = dataclasses.replace(
            phase, callbacks=(*phase.callbacks, *callbacks_lib.tensorboard(os.fspath(tensorboard_dir),
                                                                           phase.backup_slot)))
    result = _train(model, phase, backup.callbacks(phase.backup_slot), verbose=verbose, cached=cached,
                    compute=compute)
    result.learning_rate_sweep = None if sweep is None else sweep.to_dict()
    if phase.skip_when_done:
        backup.save_phase1(model, result)
    return result


def _train(model: keras.Model, phase: Phase, backup_callbacks: list, *, verbose: int,
           cached: feature_cache.CachedPhase | None = None,
           compute: precision.Compute) -> PhaseResult:
    """Trains `model` through `phase` (on `cached` features, if given) and says what that did."""
    logging.info("%s Steps: %s.", console.phase_summary(model, phase), compute.describe())
    head, extract_seconds = None, 0.0
    if phase.cache_features:
        phase, head, extract_seconds = _on_cached_features(model, phase, cached)
    loss = _compile(model, phase, loss_scaling=compute.loss_scaling)
    trainable = console.parameter_count(model.trainable_weights)
    # Progress from the chief only; every worker runs the other callbacks, so that they
    # decide alike (early stopping) and restore alike (backups).
    verbose = verbose if distribute.is_chief() else 0
    phase_callbacks = _callbacks(phase, backup_callbacks, log_epochs=verbose == 0 and distribute.is_chief())
    start = time.perf_counter()
    loop = TrainLoop(model, phase.kind, loss, phase.class_weight, head=head, jit_compile=compute.jit_compile)
    # Before fit, whose backup callbacks may restore a later epoch: the weights the phase started from.
    phase_start = interpolation.PhaseStart(model)
    try:
        history = loop.fit(phase.train, validation_data=phase.validation, epochs=phase.epochs, steps=phase.steps,
                           callbacks=phase_callbacks, verbose=verbose)
    except (InvalidLabelsError, NonFiniteLossError):  # not a backup of another run, refused before any step
        # A batch with labels past the head or a NaN loss: its step (a NaN one makes every weight NaN) and the
        # phase's steps before it are undone, so the model is the one the phase started from (after phase 1,
        # phase 1's trained model), not a broken one.
        phase_start.restore()
        logging.warning("%s stopped at a bad batch: the model's weights are back where the phase started.",
                        phase.name)
        raise
    if phase.interpolation != 1.0:
        phase_start.blend(phase.interpolation)
    final = _validation_metrics(loop, phase.validation)
    seconds = time.perf_counter() - start + extract_seconds
    # The time the result records; a cached phase's extraction is most of it, so it is named.
    extraction = f" ({extract_seconds:.1f}s of it computing the cached features)" if phase.cache_features else ""
    logging.info("%s done in %.1fs%s%s", phase.name, seconds, extraction,
                 "".join(f", {name} {value:.4f}" for name, value in final.items()))
    # A resumed phase's fit returns the epochs since the restore; the backup kept the logs of those before.
    # epochs_run counts from 0 (a phase resumed after its last epoch has run them all).
    epochs_run = history.epoch[-1] + 1 if history.epoch else model._initial_epoch or 0
    return PhaseResult(backup_lib.with_restored_epochs(backup_callbacks, history.history), seconds, epochs_run,
                       final, trainable, learning_rate=phase.learning_rate)


def _validation_metrics(loop: TrainLoop, validation: tf.data.Dataset | None) -> dict[str, float]:
    """`val_`-prefixed metrics of the weights the phase ended with (after any best-weight restore)."""
    if validation is None:
        return {}
    return {f"val_{name}": value for name, value in loop.evaluate(validation).items()}


def _on_cached_features(model: keras.Model, phase: Phase,
                        cached: feature_cache.CachedPhase | None) -> tuple[Phase, keras.Model, float]:
    """`phase` on features the frozen backbone computed once, the head that takes them, and the extraction time."""
    cached = cached or feature_cache.cache_phase(model, phase.train, phase.validation,
                                                 augmented_passes=phase.augmented_feature_passes)
    # The cache keeps the largest batch's size, so its number of batches may differ.
    cached_phase = dataclasses.replace(phase, train=cached.train, validation=cached.validation,
                                       steps=planner.steps_per_epoch(cached.train))
    return cached_phase, cached.head, cached.seconds


def _compile(model: keras.Model, phase: Phase, *, loss_scaling: bool = False) -> keras.losses.Loss:
    """Compiles `model` with the phase's loss and a new optimizer (loss-scaled for float16); returns the loss."""
    # The optimizer is created anew each phase: its slots must match the new trainable set.
    # compile attaches it (BackupAndRestore saves model.optimizer) and leaves the model
    # ready for the user's own evaluate/predict.
    with model.distribute_strategy.scope():
        optimizer = optimizers.for_phase(phase, phase.schedule(), loss_scaling=loss_scaling)
        if hasattr(phase.loss, "compile_arguments"):  # a multi-task model: Keras' own loss per output
            model.compile(optimizer=optimizer, **phase.loss.compile_arguments())
        else:
            model.compile(optimizer=optimizer, loss=phase.loss, metrics=losses.metrics_for(phase.kind))
    return phase.loss


def _callbacks(phase: Phase, backup_callbacks: list, *, log_epochs: bool) -> list[keras.callbacks.Callback]:
    return [
        *backup_callbacks,  # first: restores weights and epoch before the others start
        # After the backups, which then save the last weights with the average in its optimizer slot;
        # before early stopping, which then keeps the best epoch's average.
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if phase.ema_momentum is not None else []),
        *callbacks_lib.early_stopping(phase.early_stopping_patience, phase.validation is not None),
        # Without Keras' progress output, each epoch still gets a line in the log.
        *([callbacks_lib.EpochLogger(phase.name)] if log_epochs else []),
        *phase.callbacks,
    ]
