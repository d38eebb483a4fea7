"""The optimizer a phase trains with, made in one place for the engine and the learning-rate finder."""

import keras

from tfxfer.training import layerwise_lr
from tfxfer.training.phase import Phase


def for_phase(phase: Phase, learning_rate) -> keras.optimizers.Optimizer:
    """AdamW with the phase's weight decay and clipping, or `LayerwiseAdamW` when it has layer-wise rates.

    Args:
        phase: Phase. Its `weight_decay`, `global_clipnorm` and `lr_multipliers`.
        learning_rate: float or LearningRateSchedule. The phase's schedule, or
            the finder's sweep.
    """
    settings = {"learning_rate": learning_rate, "weight_decay": phase.weight_decay,
                "global_clipnorm": phase.global_clipnorm}
    if phase.lr_multipliers:
        return layerwise_lr.LayerwiseAdamW(lr_multipliers=phase.lr_multipliers, **settings)
    return keras.optimizers.AdamW(**settings)
