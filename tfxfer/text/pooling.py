"""`TokenPooling`: one vector per text from a transformer's token sequence."""

import keras

from tfxfer.errors import ConfigError

POOLING_MODES = ("cls", "mean")


@keras.saving.register_keras_serializable(package="tfxfer")
class TokenPooling(keras.layers.Layer):
    """Pools `(N, T, D)` token features to `(N, D)`.

    Args:
        mode: str. `"cls"` takes the first token (BERT's `[CLS]`); `"mean"`
            averages the tokens that `padding_mask` marks as real.
    """

    def __init__(self, mode: str = "cls", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ConfigError(f"pooling must be one of {POOLING_MODES}. Received: pooling={mode!r}")
        self.mode = mode

    def call(self, sequence, padding_mask=None):
        if self.mode == "cls":
            return sequence[:, 0, :]
        if padding_mask is None:
            return keras.ops.mean(sequence, axis=1)
        weights = keras.ops.expand_dims(keras.ops.cast(padding_mask, sequence.dtype), -1)
        total = keras.ops.sum(sequence * weights, axis=1)
        # Clamped so an all-padding row gives zeros, not NaN.
        return total / keras.ops.maximum(keras.ops.sum(weights, axis=1), 1.0)

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
