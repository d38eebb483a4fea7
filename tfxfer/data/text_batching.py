"""How labelled texts become tf.data batches: plain, or grouped by length.

A transformer's cost grows with the padded length of a batch. Grouping texts of
similar length (`bucketed_batches`) lets the tokenized batch be trimmed to its
longest text (`tfxfer.data.token_batches.preprocess_dataset`) instead of
padding every short sentence to `sequence_length`.

Loading groups texts by word count, since no tokenizer is known yet;
`TextDatasets.map_inputs` then regroups them by the model's own token counts
(`token_buckets`). Words are a loose proxy for word pieces: on rt-polarity with
MiniLM's tokenizer, word buckets pad batches to 1.50x the tokens the texts
hold, token buckets to 1.13x (`benchmarks/text_buckets.py`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

# Upper bounds (exclusive) of the length buckets, in whitespace-separated words
# (~1.3 word pieces each). Within a bucket the longest text is at most ~1.5x the
# shortest above 16 words; more buckets would leave more partial batches per epoch.
LENGTH_BUCKET_BOUNDARIES = (8, 16, 24, 32, 48, 64, 96, 128, 256)
# Bucketed batches of one length come out together; shuffling this many batches
# mixes lengths again, and spreads the partial batches flushed at the epoch's end.
BATCH_SHUFFLE_WINDOW = 64
# Width of the token-count buckets: the multiple trimmed batches are padded to
# (`token_batches.preprocess_dataset`), so a bucket's batches all trim to at
# most its upper bound, and pad at most width - 1 tokens per text.
TOKEN_BUCKET_WIDTH = 8


def length_buckets(texts, boundaries=LENGTH_BUCKET_BOUNDARIES) -> np.ndarray:
    """Bucket index of each text by its whitespace-separated word count.

    Bucket `i` holds counts in `[boundaries[i-1], boundaries[i])`, like
    `tf.data.Dataset.bucket_by_sequence_length`.
    """
    words = np.fromiter((len(text.split()) for text in texts), np.int64, count=len(texts))
    return np.searchsorted(np.asarray(boundaries), words, side="right").astype(np.int64)


def token_buckets(packed_lengths: np.ndarray, width: int = TOKEN_BUCKET_WIDTH) -> np.ndarray:
    """Bucket index of each text by its packed token count: `(length - 1) // width`,
    so bucket `i` holds lengths in `(i * width, (i + 1) * width]`."""
    return ((np.asarray(packed_lengths, np.int64) - 1) // width).clip(min=0)


@dataclasses.dataclass
class BucketedTexts:
    """What `bucketed_batches` was given, kept so the batches can be regrouped by other buckets."""

    texts: np.ndarray
    labels: np.ndarray
    batch_size: int
    seed: int

    def batches(self, buckets: np.ndarray | None = None) -> tf.data.Dataset:
        return bucketed_batches(self.texts, self.labels, self.batch_size, self.seed, buckets=buckets)


def bucketed_batches(texts: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                     *, buckets: np.ndarray | None = None) -> tf.data.Dataset:
    """Training batches of texts from one length bucket each, reshuffled every epoch.

    Examples are shuffled, grouped by bucket into batches (a bucket's last
    batch of the epoch may be partial), then batches are shuffled in a window.
    Buckets are known up front, so the batches per epoch are known exactly:
    the sum over buckets of ceil(size / batch_size).

    buckets: np.ndarray | None. int `(N,)` bucket of each text, e.g.
        `token_buckets`; None: `length_buckets` of the word counts.
    """
    buckets = length_buckets(texts) if buckets is None else np.asarray(buckets, np.int64)
    if len(buckets) != len(texts):
        raise ValueError(f"Need one bucket per text. Received: {len(buckets)} buckets for {len(texts)} texts")
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
