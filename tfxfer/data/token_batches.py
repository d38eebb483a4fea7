"""Token batches for training: raw-text batches through a model's preprocessor in
tf.data, each batch trimmed to its longest text."""

import tensorflow as tf

from tfxfer.errors import ConfigError


def preprocess_dataset(
    dataset: tf.data.Dataset, preprocessor, *, trim_padding: bool = True, pad_to_multiple_of: int = 8,
) -> tf.data.Dataset:
    """Maps `(texts, labels)` batches to `(token inputs, labels)` in parallel.

    Args:
        dataset: tf.data.Dataset. Batches of `(strings (N,), labels)`.
        preprocessor: callable. Strings to model inputs, e.g. `model.preprocessor`.
        trim_padding: bool. When the inputs are a dict with a `padding_mask`
            (keras-hub packers), cut every sequence-shaped input to the batch's
            longest text, so short texts cost short sequences. Attention and
            pooling ignore padding, so predictions do not change. Plain tensor
            inputs (word-vector backbones, whose `Input` has a fixed length)
            are left as they are.
        pad_to_multiple_of: int. Round the trimmed length up to a multiple of
            this (never past the packed length): with XLA (Keras' default on
            a GPU) each new length compiles a new program, so this bounds
            their number; 1 trims exactly.
    """
    check_preprocessor(preprocessor)
    if isinstance(pad_to_multiple_of, bool) or not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1:
        raise ConfigError(
            f"pad_to_multiple_of must be a positive integer. Received: pad_to_multiple_of={pad_to_multiple_of!r}")

    def preprocess(texts, labels):
        inputs = preprocessor(texts)
        if trim_padding:
            inputs = trim_to_longest(inputs, pad_to_multiple_of)
        return inputs, labels

    return dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def check_preprocessor(preprocessor) -> None:
    """Raises a ConfigError for a preprocessor that cannot be called, before tf.data traces it (where a None fails
    as "'NoneType' object is not callable" from inside autograph)."""
    if not callable(preprocessor):
        raise ConfigError(
            "The preprocessor must be callable, strings to the model's inputs: pass the text model's own, as in "
            "data.map_inputs(model.preprocessor) (every model of tfxfer.build_text_classifier has one). "
            f"Received: preprocessor={preprocessor!r}")


def trim_to_longest(inputs, pad_to_multiple_of: int = 1):
    """Cuts packed token inputs to the last column any text of the batch uses.

    inputs: dict of tensors or tensor. Packed model inputs; only a dict with a
        `padding_mask` `(B, L)` is trimmed, in each entry shaped `(B, L, ...)`.
    pad_to_multiple_of: int. Round the kept length up to a multiple of this.
    """
    if not isinstance(inputs, dict) or "padding_mask" not in inputs:
        return inputs
    mask = inputs["padding_mask"]
    full_length = mask.shape[1]
    used = tf.reduce_any(tf.cast(mask, tf.bool), axis=0)
    # The last used column + 1, not the mask's sum: that also holds for masks that are not a prefix.
    length = tf.reduce_max(tf.where(used, tf.range(1, tf.shape(mask)[1] + 1), 0))
    length = tf.maximum(length, 1)  # An all-padding batch still needs one column.
    length = tf.minimum(-(-length // pad_to_multiple_of) * pad_to_multiple_of, tf.shape(mask)[1])
    return {key: value[:, :length] if value.shape.rank >= 2 and value.shape[1] == full_length else value
            for key, value in inputs.items()}
