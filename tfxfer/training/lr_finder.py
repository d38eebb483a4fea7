"""The learning-rate finder: fastai's `lr_find`, Smith's "LR range test" (arXiv:1506.01186).

A sweep trains one phase for a bounded number of steps from the model's current
weights while the learning rate grows exponentially from tiny to huge, records
the training loss of every step, and suggests the rate at which the smoothed
loss fell fastest. Then it puts everything back: every weight (BatchNorm
statistics and random-seed state too), every layer's `trainable` flag, and
`model.optimizer`, which it never touches (it trains with an optimizer of its
own and never compiles the model). So a sweep can run right before the phase it
sweeps, and that phase then trains as if there had been none, at the suggested
rate:

```python
sweep = lr_finder.sweep_phase(model, phase)
phase = dataclasses.replace(phase, learning_rate=sweep.suggestion)
```

The suggestion follows fastai: the loss is smoothed by an exponential moving
average (beta 0.98) with bias correction, and the suggested rate is where the
smoothed loss falls fastest per unit of log learning rate, looking neither at
the first tenth of the steps (too few losses in the average yet) nor past the
smoothed loss's minimum (where it rises, then diverges). The slope at a step is
taken over the 5% of the steps on either side of it, not from its neighbours
alone, so that batch-to-batch noise early in the sweep does not win.

What to expect of it: the average lags the raw loss by some tens of steps, so
the curve bottoms out at a higher rate than the raw loss does, as in fastai;
and where the loss falls evenly over a decade or two, the steepest point can
lie anywhere along that stretch, so two sweeps may suggest rates some way
apart. Either is on the way down, which is what the rule promises.
"""

import dataclasses
import math
import numbers
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError, is_real_number
from tfxfer.training import feature_cache, freezing, optimizers, planner, precision
from tfxfer.training.loop import TrainLoop
from tfxfer.training.phase import Phase

# fastai's sweep: 100 steps from 1e-7 to 10. A head under Adam often still improves at 1.0,
# so a range ending there may never show the rise that bounds the search.
MIN_LEARNING_RATE = 1e-7
MAX_LEARNING_RATE = 10.0
STEPS = 100
DIVERGENCE_FACTOR = 4.0
# fastai's smoothing of the recorded loss (`Recorder`'s AvgSmoothLoss).
SMOOTHING_BETA = 0.98
# The suggestion ignores the first tenth of the steps, at most this many (fastai: num_it // 10).
MAX_SKIPPED_START_STEPS = 10
# The slope at a step spans this share of the steps on either side (5 of fastai's 100). Early in
# the sweep the bias-corrected average holds few losses and moves by about 1/n of each batch's
# deviation per step; with noisy batches (16 examples) a one-step difference there often
# out-falls the real descent and suggests ~1e-6. Spanning 10 steps averages that noise out.
SLOPE_HALF_WINDOW = 0.05


@dataclasses.dataclass
class LearningRateSweep:
    """What a learning-rate sweep recorded, and the rate it suggests.

    Attributes:
        phase: int. The phase swept: 1 (frozen backbone) or 2 (its top unfrozen).
        learning_rates: list of float. The learning rate of each step run,
            growing by the same factor every step from `min_learning_rate`.
        losses: list of float. The training loss of each step (the mean over
            that step's batch, before the step's update).
        smoothed_losses: list of float. `losses` as an exponential moving
            average (beta 0.98) with bias correction, as fastai's recorder.
        suggestion: float. The learning rate where the smoothed loss falls
            fastest (most negative slope against the log learning rate), see
            `steepest_descent`.
        stopped_early: bool. The loss diverged (its smoothed value grew past
            `divergence_factor` times its minimum, or was not finite), so the
            sweep stopped there; it then ran fewer steps than asked, unless
            that was the last one.
        seconds: float. Wall time of the sweep, its steps and, on cached
            features it extracted itself, their extraction; not counted in the
            phase's own `seconds`.

    Example:

    >>> sweep = tfxfer.LearningRateSweep(phase=1, learning_rates=[1e-3, 1e-2, 1e-1], losses=[1.1, 0.9, float("nan")],
    ...                           smoothed_losses=[1.1, 1.0, float("nan")], suggestion=1e-2, stopped_early=True)
    >>> sweep.to_dict()["losses"]
    [1.1, 0.9, None]
    """

    phase: int
    learning_rates: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    suggestion: float
    stopped_early: bool
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """The sweep as JSON-ready data; a NaN or infinite loss becomes None (JSON has neither)."""
        return {
            "phase": self.phase,
            "learning_rates": [float(rate) for rate in self.learning_rates],
            "losses": [_finite_or_none(loss) for loss in self.losses],
            "smoothed_losses": [_finite_or_none(loss) for loss in self.smoothed_losses],
            "suggestion": float(self.suggestion),
            "stopped_early": bool(self.stopped_early),
            "seconds": float(self.seconds),
        }


@keras.saving.register_keras_serializable(package="tfxfer")
class ExponentialSweepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate growing exponentially from `min_learning_rate` to `max_learning_rate`.

    Step `k` (from 0) trains at `min_learning_rate * (max_learning_rate /
    min_learning_rate) ** (k / (steps - 1))`: the first step at the minimum,
    step `steps - 1` at the maximum, and any later step at the maximum too.

    Args:
        min_learning_rate: float. The first step's rate, > 0.
        max_learning_rate: float. The last step's rate, > `min_learning_rate`.
        steps: int. Steps from the first rate to the last, >= 2.

    Example:

    >>> schedule = ExponentialSweepSchedule(1e-6, 1e-2, steps=5)
    >>> [f"{schedule.learning_rate_at(step):.0e}" for step in range(6)]
    ['1e-06', '1e-05', '1e-04', '1e-03', '1e-02', '1e-02']
    >>> f"{float(schedule(2)):.0e}"  # what the optimizer sees at step 2
    '1e-04'
    """

    def __init__(self, min_learning_rate: float, max_learning_rate: float, steps: int):
        _check_sweep_arguments(min_learning_rate, max_learning_rate, steps, divergence_factor=math.inf)
        self.min_learning_rate = float(min_learning_rate)
        self.max_learning_rate = float(max_learning_rate)
        self.steps = int(steps)

    def __call__(self, step):
        fraction = tf.minimum(tf.cast(step, tf.float32) / float(self.steps - 1), 1.0)
        # exp(log ...) in float32: the ratio can be 1e7 or more, its power stays accurate.
        log_ratio = math.log(self.max_learning_rate / self.min_learning_rate)
        return self.min_learning_rate * tf.exp(fraction * log_ratio)

    def learning_rate_at(self, step: int) -> float:
        """The rate of step `step`, computed in double precision (what the sweep reports)."""
        fraction = min(step / (self.steps - 1), 1.0)
        return self.min_learning_rate * (self.max_learning_rate / self.min_learning_rate) ** fraction

    def get_config(self) -> dict:
        return {"min_learning_rate": self.min_learning_rate, "max_learning_rate": self.max_learning_rate,
                "steps": self.steps}


def find_learning_rate(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    phase: int = 1,
    config: FineTuneConfig | None = None,
    class_counts: list[int] | None = None,
    cache_features: bool | None = None,
    min_learning_rate: float = MIN_LEARNING_RATE,
    max_learning_rate: float = MAX_LEARNING_RATE,
    steps: int = STEPS,
    divergence_factor: float = DIVERGENCE_FACTOR,
) -> LearningRateSweep:
    """Sweeps the learning rate of one phase of `fine_tune` and suggests one.

    The phase is planned as `fine_tune` would plan it (same loss, class
    weights, weight decay, clipping, trainable layers, feature cache), then
    swept by `sweep_phase`, which restores the model's weights, trainable
    flags and optimizer afterwards. Phase 1 sweeps the head on the frozen
    backbone. Phase 2 sweeps with the top of the backbone unfrozen, from the
    current weights: normally the user has trained phase 1 already (e.g.
    `fine_tune` with `fine_tune_epochs=0`), since a phase-2 sweep on an
    untrained head measures mostly the head.

    Args:
        model: keras.Model. A tfxfer model (a `backbone` and a `predictions`
            layer), e.g. from `tfxfer.build_image_classifier`.
        train_data: tf.data.Dataset. Batches of (inputs, labels), finite; it is
            repeated as often as the sweep's steps need.
        phase: int. 1 or 2: the phase of `fine_tune` to sweep.
        config: FineTuneConfig. The run's settings (weight decay, clipping,
            label smoothing, class weights, `fine_tune_at`, `layer_decay`,
            `mixed_precision`, `jit_compile`); defaults if None. Its learning
            rates are ignored: they are swept.
        class_counts: list of int. As in `fine_tune`.
        cache_features: bool. As in `fine_tune`: phase 1 on features the
            frozen backbone computed once (None: unless the model augments).
        min_learning_rate, max_learning_rate, steps, divergence_factor: as
            in `sweep_phase`.

    Returns:
        A `LearningRateSweep`; `suggestion` is the rate to train the phase at.

    Raises:
        ConfigError: `phase` is not 1 or 2; phase 2 while
            `config.fine_tune_epochs` is 0; a bad sweep argument; or data
            that does not fit the model (as in `fine_tune`).

    Example:
    ```python
    sweep = tfxfer.find_learning_rate(model, train_data)
    tfxfer.fine_tune(model, train_data, validation_data,
                     config=FineTuneConfig(learning_rate=sweep.suggestion))
    ```
    """
    if isinstance(phase, bool) or phase not in (1, 2):
        raise ConfigError(
            "phase is the fine_tune phase to sweep: 1 (head on the frozen backbone) or 2 (top of "
            f"the backbone unfrozen). Received: phase={phase!r}")
    config = planner.config_or_default(config)
    if phase == 2 and not config.fine_tune_epochs:
        raise ConfigError(
            "phase=2 sweeps fine_tune's phase 2, but config.fine_tune_epochs is 0, so the config "
            "has no phase 2. Pass a config with fine_tune_epochs > 0 (its fine_tune_at decides "
            f"which layers train), or phase=1. Received: fine_tune_epochs={config.fine_tune_epochs}")
    # Checked before planning, which may read the data: a typo fails at once.
    _check_sweep_arguments(min_learning_rate, max_learning_rate, steps, divergence_factor)
    compute = precision.Compute.for_model(model, config.mixed_precision, config.jit_compile)
    phases = planner.plan_phases(model, train_data, None, config, callbacks=None,
                                 class_counts=class_counts, cache_features=cache_features)
    # In the precision the phase would train in: the rate that suits float32 steps may not suit float16's.
    with precision.mixed_precision(model, compute.policy):
        return sweep_phase(model, phases[phase - 1], min_learning_rate=min_learning_rate,
                           max_learning_rate=max_learning_rate, steps=steps, divergence_factor=divergence_factor,
                           compute=compute)


def sweep_phase(
    model: keras.Model,
    phase: Phase,
    *,
    min_learning_rate: float = MIN_LEARNING_RATE,
    max_learning_rate: float = MAX_LEARNING_RATE,
    steps: int = STEPS,
    divergence_factor: float = DIVERGENCE_FACTOR,
    cached: feature_cache.CachedPhase | None = None,
    compute: precision.Compute | None = None,
) -> LearningRateSweep:
    """Runs the learning-rate range test on a planned phase, then restores the model.

    Sets the phase's trainable layers and trains `steps` batches of
    `phase.train` (repeated as needed; on cached features when
    `phase.cache_features`) with a new optimizer of the phase's kind (AdamW, or
    `LayerwiseAdamW` with `phase.lr_multipliers`; the phase's weight decay and
    clipping) whose learning rate grows exponentially from
    `min_learning_rate` to `max_learning_rate`. Stops early when the smoothed
    loss diverges. Afterwards every variable of the model (weights, BatchNorm
    statistics, random-seed state), every layer's and variable's `trainable`
    flag are as before, and `model.optimizer` was
    never used: the phase can then train as if no sweep had run.

    Args:
        model: keras.Model. The tfxfer model the phase was planned for.
        phase: Phase. From `tfxfer.training.planner.plan_phases`.
        min_learning_rate: float. The first step's rate, > 0.
        max_learning_rate: float. The last step's rate, > `min_learning_rate`.
        steps: int. Steps of the sweep, >= 2 (fastai: 100).
        divergence_factor: float > 1. The sweep stops once the smoothed loss
            exceeds this many times its minimum so far (or is NaN or infinite);
            `math.inf` stops only on NaN or infinity.
        cached: feature_cache.CachedPhase. When `phase.cache_features`: the
            features `feature_cache.cache_phase` already extracted for this
            phase (a caller that trains the phase next can extract once for
            both); None extracts them here.
        compute: precision.Compute. How the phase will train: under float16
            the sweep's optimizer scales the loss, and with `jit_compile` its
            steps are XLA-compiled. The layers' dtype policies are the
            caller's (`precision.mixed_precision`). None: float32 graph steps.

    Returns:
        A `LearningRateSweep` with `phase` 1 or 2 (from `phase.fine_tune_at`).

    Raises:
        ConfigError: a bad sweep argument, or no `backbone` layer.
        TypeError: `phase` is not a `Phase`.

    Example:
    ```python
    phases = planner.plan_phases(model, train_data, None, FineTuneConfig(), callbacks=None,
                                 class_counts=None, cache_features=None)
    sweep = sweep_phase(model, phases[0], steps=100)
    phase1 = dataclasses.replace(phases[0], learning_rate=sweep.suggestion)
    ```
    """
    if not isinstance(phase, Phase):
        raise TypeError("sweep_phase takes a Phase from tfxfer.training.planner.plan_phases; for a "
                        "model and a dataset call find_learning_rate. Received: "
                        f"phase of type {type(phase).__name__}")
    _check_sweep_arguments(min_learning_rate, max_learning_rate, steps, divergence_factor)
    compute = compute or precision.Compute()
    start = time.perf_counter()
    phase_number = 1 if phase.fine_tune_at is None else 2
    backbone = planner.backbone_of(model)
    state = _ModelState(model)
    try:
        freezing.set_trainable(backbone, phase.fine_tune_at)
        schedule = ExponentialSweepSchedule(min_learning_rate, max_learning_rate, steps)
        recorder = _Recorder(divergence_factor)
        head, train = None, phase.train
        if phase.cache_features:
            # The backbone runs once over the data, as in the phase itself (engine._on_cached_features).
            cached = cached or feature_cache.cache_phase(model, phase.train, None,
                                                         augmented_passes=phase.augmented_feature_passes)
            head, train = cached.head, cached.train
        with model.distribute_strategy.scope():
            optimizer = optimizers.for_phase(phase, schedule, loss_scaling=compute.loss_scaling)
        loop = TrainLoop(model, phase.kind, phase.loss, phase.class_weight, head=head, optimizer=optimizer,
                         jit_compile=compute.jit_compile)
        # Repeated: a sweep needs its steps whatever the size of the data.
        for step, batch in enumerate(loop.distribute(train.repeat().take(steps))):
            sums = loop.train_step(batch)
            if recorder.add(schedule.learning_rate_at(step), sums["loss"] / max(sums["examples"], 1.0)):
                break
    finally:
        state.restore()
    suggestion = steepest_descent(recorder.learning_rates, recorder.smoothed_losses,
                                  skip_start=min(MAX_SKIPPED_START_STEPS, steps // 10),
                                  half_window=max(1, round(SLOPE_HALF_WINDOW * steps)))
    sweep = LearningRateSweep(phase_number, recorder.learning_rates, recorder.losses, recorder.smoothed_losses,
                              suggestion, recorder.diverged, time.perf_counter() - start)
    logging.info(
        "Learning-rate sweep of %s in %.1fs: %d of %d steps from %.3g to %.3g%s; suggested learning rate %.3g "
        "(steepest descent of the smoothed loss).", phase.name, sweep.seconds, len(sweep.losses), steps,
        min_learning_rate, sweep.learning_rates[-1] if sweep.learning_rates else min_learning_rate,
        ", stopped where the loss diverged" if sweep.stopped_early else "", suggestion)
    return sweep


def steepest_descent(learning_rates: list[float], smoothed_losses: list[float], *, skip_start: int = 0,
                     half_window: int = 1) -> float:
    """The learning rate where the smoothed loss falls fastest, per unit of log learning rate.

    Looks at the steps from `skip_start` up to the smoothed loss's minimum (the
    divergent tail beyond it rises, and anything after a NaN or infinity is
    ignored), takes the slope d(smoothed loss)/d(log learning rate) at each as
    the secant from `half_window` steps before it to `half_window` steps after
    (1: central differences), and returns the rate of the most negative one.
    When the loss never falls there (the range started too high, or the data
    teaches nothing), it warns and returns fastai's other rule: a tenth of the
    rate at the minimum, but not less than the first rate.

    Args:
        learning_rates: list of float. Increasing, > 0.
        smoothed_losses: list of float. One per learning rate.
        skip_start: int. Leading steps to ignore (their average holds few losses).
        half_window: int >= 1. Steps on either side of a point that its slope spans.

    Returns:
        float. The suggested learning rate.

    Raises:
        ValueError: the lists differ in length or are empty.

    Example:

    >>> rates = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    >>> steepest_descent(rates, [2.0, 1.8, 1.0, 0.9, 3.0])  # the loss falls fastest around 1e-3
    0.001
    """
    if len(learning_rates) != len(smoothed_losses) or not learning_rates:
        raise ValueError("steepest_descent needs one smoothed loss per learning rate, at least one. Received: "
                         f"{len(learning_rates)} learning rates, {len(smoothed_losses)} losses")
    losses_ = np.asarray(smoothed_losses, np.float64)
    rates = np.asarray(learning_rates, np.float64)
    finite = np.isfinite(losses_)
    usable = len(losses_) if finite.all() else int(np.argmin(finite))  # up to the first NaN/inf
    if usable == 0:
        logging.warning("The learning-rate sweep's first loss was not finite; suggesting its first rate, %.3g. "
                        "Lower min_learning_rate, or check the data and the model.", rates[0])
        return float(rates[0])
    losses_, rates = losses_[:usable], rates[:usable]
    lowest = int(np.argmin(losses_))
    if lowest > skip_start:
        slopes = _slopes(losses_, np.log(rates), half_width=max(1, int(half_window)))
        steepest = skip_start + int(np.argmin(slopes[skip_start:lowest + 1]))
        if slopes[steepest] < 0:
            return float(rates[steepest])
    fallback = max(float(rates[lowest]) / 10, float(rates[0]))
    logging.warning(
        "The smoothed loss of the learning-rate sweep did not fall between step %d and its minimum (step %d, "
        "learning rate %.3g), so it has no steepest descent; suggesting a tenth of that rate, %.3g. The sweep "
        "may have started too high: lower min_learning_rate.", skip_start, lowest, rates[lowest], fallback)
    return fallback


def _slopes(values: np.ndarray, positions: np.ndarray, half_width: int) -> np.ndarray:
    """Slope at each point: the secant from `half_width` points before it to as many after (fewer at the ends)."""
    indices = np.arange(len(values))
    before = np.maximum(indices - half_width, 0)
    after = np.minimum(indices + half_width, len(values) - 1)
    run = positions[after] - positions[before]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(run > 0, (values[after] - values[before]) / np.where(run > 0, run, 1.0), np.inf)


class _Recorder:
    """Records each step's learning rate and loss, smooths the loss, and says when it diverged."""

    def __init__(self, divergence_factor: float):
        self._divergence_factor = divergence_factor
        self._average = 0.0
        self._best = math.inf
        self.learning_rates, self.losses, self.smoothed_losses = [], [], []
        self.diverged = False

    def add(self, learning_rate: float, loss: float) -> bool:
        """Records one step; True once the smoothed loss diverged (the sweep stops)."""
        self.learning_rates.append(learning_rate)
        self.losses.append(loss)
        self._average = SMOOTHING_BETA * self._average + (1 - SMOOTHING_BETA) * loss
        # Bias correction: the average starts at 0, so early values would be too low.
        smoothed = self._average / (1 - SMOOTHING_BETA ** len(self.losses))
        self.smoothed_losses.append(smoothed)
        if math.isfinite(smoothed):
            self._best = min(self._best, smoothed)
        self.diverged = not math.isfinite(smoothed) or smoothed > self._divergence_factor * self._best
        return self.diverged


class _ModelState:
    """Everything a sweep changes in a model, saved so that `restore` puts it back."""

    def __init__(self, model: keras.Model):
        self._model = model
        # `variables`, not `weights`: it includes the random-seed state of dropout and augmentation.
        self._variables = list(model.variables)
        self._values = [variable.numpy() for variable in self._variables]
        self._variable_trainable = [variable.trainable for variable in self._variables]
        # Parents before children: setting a layer's `trainable` sets its sub-layers' too.
        self._layers = model._flatten_layers(include_self=True, recursive=True)
        self._layer_trainable = [layer.trainable for layer in self._layers]

    def restore(self) -> None:
        for layer, trainable in zip(self._layers, self._layer_trainable, strict=True):
            layer.trainable = trainable
        for variable, trainable, value in zip(self._variables, self._variable_trainable, self._values, strict=True):
            variable.trainable = trainable
            variable.assign(value)


def _check_sweep_arguments(min_learning_rate, max_learning_rate, steps, divergence_factor) -> None:
    for name, value in (("min_learning_rate", min_learning_rate), ("max_learning_rate", max_learning_rate)):
        if not is_real_number(value) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} must be a finite number > 0 (the sweep's learning rates grow "
                              f"exponentially, e.g. from 1e-7 to 10). Received: {name}={value!r}")
    if min_learning_rate >= max_learning_rate:
        raise ConfigError(
            "The sweep's learning rate grows from min_learning_rate to max_learning_rate, so "
            "min_learning_rate must be below max_learning_rate (e.g. 1e-7 and 10). Received: "
            f"min_learning_rate={min_learning_rate!r}, max_learning_rate={max_learning_rate!r}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 2:
        raise ConfigError("steps must be an int >= 2: the sweep's first step trains at min_learning_rate, its "
                          f"last at max_learning_rate (fastai runs 100). Received: steps={steps!r}")
    if not is_real_number(divergence_factor) or math.isnan(divergence_factor) or divergence_factor <= 1:
        raise ConfigError(
            "divergence_factor must be a number > 1: the sweep stops once the smoothed loss exceeds "
            "divergence_factor times its minimum (fastai: 4.0; math.inf stops only on NaN or infinity). "
            f"Received: divergence_factor={divergence_factor!r}")


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
