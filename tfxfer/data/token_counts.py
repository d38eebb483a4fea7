"""How many texts a text model's preprocessor cuts: the model never reads their end.

`TextDatasets.map_inputs` reports it (`changed["truncated_tokens"]`), so a user
whose documents are longer than `sequence_length` is told how many, and how to
read more of them. It lives with the data, not the models: it reads only the
preprocessor it is handed (a Keras layer or a keras-hub preprocessor), so the
data layer needs no tfxfer model code.
"""

import keras
import numpy as np
import tensorflow as tf
from absl import logging


def count_truncated_tokens(texts: np.ndarray, preprocessor) -> int | None:
    """How many `texts` have more tokens than `preprocessor` keeps; None when that cannot be told.

    Knows keras-hub text classifier preprocessors (a `tokenizer`, then packing
    to `sequence_length` with special tokens) and `keras.layers.TextVectorization`.
    Logs a warning when texts are cut, since the model never sees their end.

    texts: np.ndarray. The raw strings.
    preprocessor: callable. What `map_inputs` maps over the texts.
    """
    counter = _token_counter(preprocessor)
    if counter is None:
        logging.info("Cannot count the texts %s truncates: not a keras-hub preprocessor or TextVectorization.",
                     type(preprocessor).__name__)
        return None
    count_tokens, limit = counter
    if limit is None:  # TextVectorization without output_sequence_length pads, never truncates.
        return 0
    lengths = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)).batch(1024)
    lengths = lengths.map(count_tokens, num_parallel_calls=tf.data.AUTOTUNE)
    truncated = sum(int(np.sum(batch > limit)) for batch in lengths.as_numpy_iterator())
    if truncated:
        logging.warning("%d of %d texts (%.1f%%) have more than %d tokens: the model reads only their first %d. "
                        "Raise sequence_length (--sequence_length) to read more of them.",
                        truncated, len(texts), 100 * truncated / len(texts), limit, limit)
    else:
        logging.info("No text has more than the %d tokens the model reads.", limit)
    return truncated


def _token_counter(preprocessor):
    """A function from a batch of strings to their token counts, and how many tokens
    the preprocessor keeps (None: all); None for preprocessors of another kind."""
    if isinstance(preprocessor, keras.layers.TextVectorization):
        config = preprocessor.get_config()
        # The same standardize/split without a length, so counts are not cut; words need no vocabulary to count.
        counter = keras.layers.TextVectorization(
            standardize=config["standardize"], split=config["split"], ngrams=config["ngrams"],
            vocabulary=["_"], ragged=True)
        return (lambda texts: counter(texts).row_lengths()), config["output_sequence_length"]
    tokenizer, length = getattr(preprocessor, "tokenizer", None), getattr(preprocessor, "sequence_length", None)
    if tokenizer is None or length is None:
        return None
    packed = preprocessor(tf.constant([""]))
    if not isinstance(packed, dict) or "padding_mask" not in packed:
        return None
    # What packing adds to every text ([CLS] and [SEP] for BERT) is all an empty text holds.
    special = int(np.sum(packed["padding_mask"]))
    return (lambda texts: tokenizer(texts).row_lengths()), length - special
