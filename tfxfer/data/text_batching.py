"""How labelled texts become tf.data batches: plain, or grouped by length.

A transformer's cost grows with the padded length of a batch. Grouping texts of
similar length (`bucketed_batches`) lets the tokenized batch be trimmed to its
longest text (`tfxfer.data.token_batches.preprocess_dataset`) instead of
padding every short sentence to `sequence_length`.
"""

import numpy as np
import tensorflow as tf

# Upper bounds (exclusive) of the length buckets, in whitespace-separated words
# (~1.3 word pieces each). Within a bucket the longest text is at most ~1.5x the
# shortest above 16 words; more buckets would leave more partial batches per epoch.
LENGTH_BUCKET_BOUNDARIES = (8, 16, 24, 32, 48, 64, 96, 128, 256)
# Bucketed batches of one length come out together; shuffling this many batches
# mixes lengths again, and spreads the partial batches flushed at the epoch's end.
BATCH_SHUFFLE_WINDOW = 64


def length_buckets(texts, boundaries=LENGTH_BUCKET_BOUNDARIES) -> np.ndarray:
    """Bucket index of each text by its whitespace-separated word count.

    Bucket `i` holds counts in `[boundaries[i-1], boundaries[i])`, like
    `tf.data.Dataset.bucket_by_sequence_length`.
    """
    words = np.fromiter((len(text.split()) for text in texts), np.int64, count=len(texts))
    return np.searchsorted(np.asarray(boundaries), words, side="right").astype(np.int64)


def bucketed_batches(texts: np.ndarray, labels: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Training batches of texts from one length bucket each, reshuffled every epoch.

    Examples are shuffled, grouped by bucket into batches (a bucket's last
    batch of the epoch may be partial), then batches are shuffled in a window.
    Buckets are computed here once, so the batches per epoch are known exactly:
    the sum over buckets of ceil(size / batch_size).
    """
    buckets = length_buckets(texts)
    num_batches = int(sum(-(-int(size) // batch_size) for size in np.bincount(buckets)))
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(texts), tf.string), tf.constant(labels), tf.constant(buckets)))
    dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.group_by_window(
        key_func=lambda text, label, bucket: bucket,
        reduce_func=lambda bucket, window: window.batch(batch_size),
        window_size=batch_size)
    dataset = dataset.map(lambda texts, labels, buckets: (texts, labels))
    dataset = dataset.shuffle(BATCH_SHUFFLE_WINDOW, seed=seed + 1, reshuffle_each_iteration=True)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


def plain_batches(texts, labels, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batches in order, or reshuffled every epoch (seeded) when `shuffle_seed` is given."""
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts), tf.string), tf.constant(labels)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(texts), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
