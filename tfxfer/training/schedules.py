"""Learning-rate schedules of the two phases."""

import keras


def warmup_cosine(peak_learning_rate: float, total_steps: int, warmup_fraction: float = 0.0):
    """Linear warmup from 0 to `peak_learning_rate`, then cosine decay to 0.

    Args:
        peak_learning_rate: float. Learning rate at the end of warmup.
        total_steps: int. Steps of the whole phase (warmup included).
        warmup_fraction: float. Share of `total_steps` spent warming up.
    """
    if total_steps < 1:
        raise ValueError(f"A phase needs at least one step. Received: total_steps={total_steps}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1). Received: warmup_fraction={warmup_fraction}")
    warmup_steps = int(round(total_steps * warmup_fraction))
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(peak_learning_rate, decay_steps=total_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=peak_learning_rate,
        warmup_steps=warmup_steps,
    )
