"""Tokens per text under a text model's preprocessor, counted once before training.

`TextDatasets.map_inputs` uses the counts twice: to report how many texts the
preprocessor cuts (`changed["truncated_tokens"]`: the model never reads their
end, and the user is told how to read more), and to batch training texts of
similar token count together, so trimmed batches carry little padding. It
lives with the data, not the models: it reads only the preprocessor it is
handed (a Keras layer or a keras-hub preprocessor), so the data layer needs no
tfxfer model code.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from absl import logging


@dataclasses.dataclass
class TokenCounts:
    """Tokens per text, before the preprocessor cuts them to what the model reads.

    Attributes:
        lengths: np.ndarray. int64 `(N,)`: each text's tokens, not counting
            the special tokens packing adds.
        limit: int | None. How many of them the model reads (None: all).
        special: int. Tokens packing adds to every text ([CLS] and [SEP] for BERT).
    """

    lengths: np.ndarray
    limit: int | None
    special: int = 0

    def packed(self) -> np.ndarray:
        """Each text's length as packed for the model: special tokens included, cut at the limit."""
        lengths = self.lengths if self.limit is None else np.minimum(self.lengths, self.limit)
        return lengths + self.special


def count_tokens(texts: np.ndarray, preprocessor) -> TokenCounts | None:
    """Tokens of each of `texts` under `preprocessor`; None when they cannot be told.

    Knows keras-hub text classifier preprocessors (a `tokenizer`, then packing
    to `sequence_length` with special tokens) and `keras.layers.TextVectorization`.

    texts: np.ndarray. The raw strings.
    preprocessor: callable. What `map_inputs` maps over the texts.
    """
    counter = _token_counter(preprocessor)
    if counter is None:
        logging.info("Cannot count the tokens of texts for %s: not a keras-hub preprocessor or TextVectorization.",
                     type(preprocessor).__name__)
        return None
    count, limit, special = counter
    lengths = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)).batch(1024)
    lengths = lengths.map(count, num_parallel_calls=tf.data.AUTOTUNE)
    return TokenCounts(np.concatenate([np.zeros(0, np.int64), *lengths.as_numpy_iterator()]).astype(np.int64),
                       limit, special)


def report_truncated(counted: TokenCounts) -> int:
    """How many texts have more tokens than the model reads; logged, with the fix when any do,
    since the model never sees their end."""
    if counted.limit is None:  # TextVectorization without output_sequence_length pads, never truncates.
        return 0
    total, limit = len(counted.lengths), counted.limit
    truncated = int(np.sum(counted.lengths > limit))
    if truncated:
        logging.warning("%d of %d texts (%.1f%%) have more than %d tokens: the model reads only their first %d. "
                        "Raise sequence_length (--sequence_length) to read more of them.",
                        truncated, total, 100 * truncated / total, limit, limit)
    else:
        logging.info("No text has more than the %d tokens the model reads.", limit)
    return truncated


def _token_counter(preprocessor):
    """A function from a batch of strings to their token counts, how many tokens the
    preprocessor keeps (None: all) and how many special tokens packing adds; None
    for preprocessors of another kind."""
    if isinstance(preprocessor, keras.layers.TextVectorization):
        config = preprocessor.get_config()
        # The same standardize/split without a length, so counts are not cut; words need no vocabulary to count.
        counter = keras.layers.TextVectorization(
            standardize=config["standardize"], split=config["split"], ngrams=config["ngrams"],
            vocabulary=["_"], ragged=True)
        return (lambda texts: counter(texts).row_lengths()), config["output_sequence_length"], 0
    tokenizer, length = getattr(preprocessor, "tokenizer", None), getattr(preprocessor, "sequence_length", None)
    if tokenizer is None or length is None:
        return None
    packed = preprocessor(tf.constant([""]))
    if not isinstance(packed, dict) or "padding_mask" not in packed:
        return None
    # What packing adds to every text ([CLS] and [SEP] for BERT) is all an empty text holds.
    special = int(np.sum(packed["padding_mask"]))
    return (lambda texts: tokenizer(texts).row_lengths()), length - special, special
