"""The optimizer a phase trains with, made in one place for the engine and the learning-rate finder."""

import keras

from tfxfer.training import layerwise_lr
from tfxfer.training.phase import Phase


def for_phase(phase: Phase, learning_rate, *, loss_scaling: bool = False) -> keras.optimizers.Optimizer:
    """AdamW with the phase's weight decay, clipping and weight average, or `LayerwiseAdamW` when it
    has layer-wise rates.

    Args:
        phase: Phase. Its `weight_decay`, `global_clipnorm` and `lr_multipliers`.
        learning_rate: float or LearningRateSchedule. The phase's schedule, or
            the finder's sweep.
        loss_scaling: bool. Wrap it in a dynamic `keras.optimizers.LossScaleOptimizer`,
            for float16 compute (`precision.needs_loss_scaling`); `TrainLoop`
            scales the loss with its `scale_loss`.

    Example:

    ```python
    optimizer = optimizers.for_phase(phase, phase.schedule(), loss_scaling=True)
    optimizer.inner_optimizer  # the AdamW
    ```
    """
    settings = {"learning_rate": learning_rate, "weight_decay": phase.weight_decay,
                "global_clipnorm": phase.global_clipnorm}
    if phase.ema_momentum is not None:
        settings.update(use_ema=True, ema_momentum=phase.ema_momentum)
    if phase.lr_multipliers:
        optimizer = layerwise_lr.LayerwiseAdamW(lr_multipliers=phase.lr_multipliers, **settings)
    else:
        optimizer = keras.optimizers.AdamW(**settings)
    # The clipping stays on the inner optimizer: it then sees the unscaled gradients.
    return keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer
