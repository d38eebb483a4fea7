"""A held-out part of a batched training set, chosen by each example's content.

Hyperparameter search must score its trials on data it does not train on, and
the data a user hands over is one batched `(inputs, labels)` dataset, usually
reshuffled every epoch. Positions therefore cannot say which examples are held
out: each example's *content* does. `split_by_content` hashes every example
(its inputs, without a text batch's padding, and its label) with a seeded key,
and holds out those whose hash falls below the fraction. So:
- the split is the same in every epoch and every pass, whatever the order,
  without reading the data into memory or knowing how it was loaded;
- exact duplicates land on the same side, so a duplicate cannot leak a
  held-out example into training;
- the held-out share is `fraction` on average, not exactly, and not stratified
  per class (a hash knows no classes); the loaders' `validation_split` is the
  stratified split (`tfxfer.data.splits`).
"""

import tensorflow as tf

from tfxfer.data import token_batches
from tfxfer.errors import ConfigError

# The hash's buckets: the held-out fraction is resolved to 1/10,000.
_BUCKETS = 10_000
# keras-hub's token inputs mark their real tokens with it; the rest of a row is padding.
_PADDING_MASK = "padding_mask"
# As `token_batches.preprocess_dataset` rounds trimmed lengths (bounds XLA's recompilations).
_PAD_TO_MULTIPLE_OF = 8


def split_by_content(dataset: tf.data.Dataset, fraction: float, seed: int = 0,
                     *, batch_size: int | None = None,
                     fraction_name: str = "fraction") -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """`(rest, held_out)`: the batches of `dataset` split by a seeded hash of each example.

    Args:
        dataset: tf.data.Dataset. Batches of `(inputs, labels)`; inputs a tensor
            or a dict of tensors (token inputs with a `padding_mask`, whose
            padding is ignored by the hash and padded again per batch).
        fraction: float. Expected share of held-out examples, between 0 and 1.
        seed: int. Another seed holds out other examples.
        batch_size: int. Examples per batch of both parts; the first batch's
            size by default.
        fraction_name: str. What the caller calls `fraction`, for the error message.

    Returns:
        Two batched datasets of the same structure; every example of `dataset`
        is in exactly one of them, in the order `dataset` gives it.

    Raises:
        ConfigError: `fraction` is not between 0 and 1, or `dataset` is empty.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"{fraction_name} must be a number between 0 and 1, the expected share of examples held "
                          f"out, e.g. 0.2. Received: {fraction_name}={fraction!r}")
    if batch_size is None:
        first = next(iter(dataset.take(1)), None)
        if first is None:
            raise ConfigError("Cannot hold out examples of an empty dataset; pass at least one batch.")
        batch_size = int(tf.shape(tf.nest.flatten(first[1])[0])[0])
    threshold = int(round(fraction * _BUCKETS))
    examples = dataset.unbatch()

    def held_out(inputs, label):
        return example_bucket(inputs, label, seed) < threshold

    def batch(part):
        # Token rows carry their old batch's padding: padded to the longest row of the new
        # batch, then trimmed to its longest text, as the loaders' token batches are.
        return (part.padded_batch(batch_size)
                .map(lambda inputs, labels: (token_batches.trim_to_longest(inputs, _PAD_TO_MULTIPLE_OF), labels))
                .prefetch(tf.data.AUTOTUNE))

    rest = examples.filter(lambda inputs, label: tf.logical_not(held_out(inputs, label)))
    return batch(rest), batch(examples.filter(held_out))


def example_bucket(inputs, label, seed: int) -> tf.Tensor:
    """The example's hash bucket in `[0, 10000)`: the same for the same content and seed."""
    parts = []
    mask = inputs.get(_PADDING_MASK) if isinstance(inputs, dict) else None
    for tensor in tf.nest.flatten(inputs):
        if mask is not None and tensor.shape.rank and tensor.shape[0] == mask.shape[0]:
            tensor = tf.boolean_mask(tensor, mask)  # the real tokens only, however the batch was padded
        parts.append(tf.io.serialize_tensor(tensor))
    parts.extend(tf.io.serialize_tensor(tensor) for tensor in tf.nest.flatten(label))  # a dict per task too
    key = tf.strings.reduce_join(tf.stack(parts))
    return tf.strings.to_hash_bucket_strong(key, _BUCKETS, key=[seed, 0x7F4A7C15])
