"""`TokenPooling`: one vector per text from a transformer's token sequence."""

import keras

from tfxfer.errors import ConfigError

POOLING_MODES = ("avg", "cls")
# "mean" was the text models' first name for "avg"; Keras (`pooling="avg"` in
# keras.applications) and the image classifier call it "avg".
_ALIASES = {"mean": "avg"}


@keras.saving.register_keras_serializable(package="tfxfer")
class TokenPooling(keras.layers.Layer):
    """Pools `(N, T, D)` token features to `(N, D)`.

    Args:
        mode: str. `"avg"` (default) averages the tokens that `padding_mask`
            marks as real (`"mean"` is accepted for it); `"cls"` takes the first
            token (BERT's `[CLS]`).
    """

    def __init__(self, mode: str = "avg", **kwargs):
        super().__init__(**kwargs)
        self.mode = canonical_pooling(mode)

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


def canonical_pooling(mode: str) -> str:
    """`mode` under its one name (`"mean"` becomes `"avg"`); raises for unknown modes."""
    mode = _ALIASES.get(mode, mode)
    if mode not in POOLING_MODES:
        raise ConfigError(f"pooling must be one of {POOLING_MODES}. Received: pooling={mode!r}")
    return mode
