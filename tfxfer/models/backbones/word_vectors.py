"""Word-vector encoders: pretrained GloVe/word2vec vectors in an `Embedding`, then
a BiLSTM or a masked mean, with a vocabulary built from your training texts."""

import os
from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError, MissingFileError
from tfxfer.models import layer_names
from tfxfer.models.backbones.text_backbone import TextBackbone
from tfxfer.models.token_pooling import TokenPooling

ENCODERS = ("bilstm", "mean")


def read_word_vectors(path: str | os.PathLike, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Reads the vectors of `vocabulary` from a GloVe or word2vec text-format file.

    Lines are `word v1 v2 ... vD`; a word2vec header line (`count dim`) is
    skipped. The file is streamed, so only the vocabulary's vectors are kept.
    A word missing from the file is looked up lower-cased before giving up.

    Args:
        path: str. The vectors file (UTF-8; undecodable bytes are replaced).
        vocabulary: list of str. Words to look up; index `i` is row `i`.

    Returns:
        `(vectors, found)`: float32 `(len(vocabulary), D)` (rows of missing words
        are 0) and a bool `(len(vocabulary),)` mask of the words found.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise MissingFileError(
            "word_vectors must be a GloVe/word2vec text-format file "
            f"('word v1 ... vD' per line). Received: word_vectors={path!r}"
        )
    index = {word: i for i, word in enumerate(vocabulary)}
    lower_index = {}
    for i, word in enumerate(vocabulary):
        lower_index.setdefault(word.lower(), i)
    vectors, found, dim = None, np.zeros(len(vocabulary), bool), None
    # Through tf.io.gfile, so a vectors file on any filesystem TensorFlow reads works (gs://...).
    with tf.io.gfile.GFile(path, "rb") as f:
        for line_number, raw_line in enumerate(f, start=1):
            line = raw_line.decode("utf-8", errors="replace")
            parts = line.rstrip().split(" ")
            if line_number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: "<count> <dim>"
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
                vectors = np.zeros((len(vocabulary), dim), np.float32)
            elif len(parts) - 1 != dim:
                raise ConfigError(
                    f"Every vector in {path} must have {dim} values (as on its first line). "
                    f"Received: {len(parts) - 1} values on line {line_number}"
                )
            word = parts[0]
            i = index.get(word)
            if i is None:
                # A case-folded match fills a gap but never overrides an exact one.
                i = lower_index.get(word.lower())
                if i is None or found[i]:
                    continue
            try:
                vectors[i] = np.asarray(parts[1:], np.float32)
            except ValueError as error:
                raise ConfigError(
                    f"Every vector in {path} must be numbers ('word v1 ... vD' per line). "
                    f"Received: {' '.join(parts[1:4])!r}... on line {line_number}"
                ) from error
            found[i] = True
    if dim is None:
        raise ConfigError(f"No word vectors in {path}; expected lines 'word v1 ... vD'. Received: an empty file")
    return vectors, found


def build_vocabulary(
    texts: Iterable[str] | tf.data.Dataset, *, max_tokens: int | None = 20000, sequence_length: int | None = None,
) -> keras.layers.TextVectorization:
    """A `TextVectorization` (lower-cased, punctuation stripped) adapted to `texts`.

    Args:
        texts: list of str or tf.data.Dataset of strings. The training texts.
        max_tokens: int. Vocabulary size cap, padding and `[UNK]` included.
        sequence_length: int. Pad or truncate outputs to this many tokens; None
            pads each batch to its longest text.
    """
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens, output_sequence_length=sequence_length, name="vectorizer")
    if not isinstance(texts, tf.data.Dataset):
        texts = tf.data.Dataset.from_tensor_slices(list(texts)).batch(1024)
    vectorizer.adapt(texts)
    return vectorizer


def load_word_vector_backbone(
    word_vectors: str | os.PathLike,
    texts: Iterable[str] | tf.data.Dataset,
    *,
    sequence_length: int = 128,
    encoder: str = "bilstm",
    units: int = 64,
    max_tokens: int | None = 20000,
    seed: int | None = None,
) -> TextBackbone:
    """A `backbone` of pretrained word vectors plus an encoder, and its vectorizer.

    The `backbone` model is `token_ids -> embedding -> encoder`; phase 1 of
    `fine_tune` freezes all of it, phase 2 unfreezes from `fine_tune_at`
    (`fine_tune_at=0` or `0.5` also trains the word vectors).

    Args:
        word_vectors: str. GloVe or word2vec text-format file.
        texts: list of str or tf.data.Dataset of strings. Training texts; the
            vocabulary is built from them.
        sequence_length: int. Tokens per text (padded or truncated).
        encoder: str. `"bilstm"` (bidirectional LSTM) or `"mean"` (masked mean
            of the word vectors).
        units: int. LSTM units per direction.
        max_tokens: int. Vocabulary size cap.
        seed: int. Seed of the vectors given to words the file lacks.

    Returns:
        A `TextBackbone` for `build_text_classifier`.

    Example:

    ```python
    data = tfxfer.load_text_data("reviews.csv", validation_split=0.2)
    backbone = tfxfer.load_word_vector_backbone("glove.6B.100d.txt", data.texts("train"), seed=0)
    model = tfxfer.build_text_classifier(backbone, len(data.class_names))
    tokenized = data.map_inputs(model.preprocessor)
    ```
    """
    if encoder not in ENCODERS:
        raise ConfigError(f"encoder must be one of {ENCODERS}. Received: encoder={encoder!r}")
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1:
        raise ConfigError(f"sequence_length must be a positive integer. Received: sequence_length={sequence_length!r}")
    vectorizer = build_vocabulary(texts, max_tokens=max_tokens, sequence_length=sequence_length)
    vocabulary = vectorizer.get_vocabulary()
    vectors, found = read_word_vectors(word_vectors, vocabulary)
    matrix = _fill_missing(vectors, found, seed)
    logging.info("Word vectors: %d of %d vocabulary words found in %s (dimension %d).",
                 int(found[2:].sum()), len(vocabulary) - 2, os.fspath(word_vectors), matrix.shape[1])
    token_ids = keras.Input((sequence_length,), dtype="int64", name="token_ids")
    # The LSTM reads padding from Keras' mask; the mean pools with an explicit mask instead.
    embedding = keras.layers.Embedding(len(vocabulary), matrix.shape[1], mask_zero=encoder == "bilstm",
                                       name="embedding")
    x = embedding(token_ids)
    # Assigned, not a Constant initializer: that would copy the table into the model's config.
    embedding.embeddings.assign(matrix)
    if encoder == "bilstm":
        x = keras.layers.Bidirectional(keras.layers.LSTM(units), name="encoder")(x)
    else:
        # TokenPooling, not GlobalAveragePooling1D: an empty text (all padding)
        # must pool to zeros, not divide by a zero count into NaN.
        x = TokenPooling("avg", name="encoder")(x, padding_mask=keras.ops.not_equal(token_ids, 0))
    model = keras.Model(token_ids, x, name=layer_names.BACKBONE)
    return TextBackbone(encoder=model, preprocessor=vectorizer, name=f"word_vectors_{encoder}")


def _fill_missing(vectors: np.ndarray, found: np.ndarray, seed: int | None) -> np.ndarray:
    # Row 0 is padding (masked, stays 0). Missing words get random vectors on the
    # scale of the found ones, so they neither vanish nor dominate.
    found = found.copy()
    found[0] = False
    scale = float(vectors[found].std()) if found.any() else 0.1
    if not found[1:].any():
        logging.warning("None of the vocabulary is in the word-vector file; every vector is random.")
    rng = np.random.default_rng(seed)
    missing = ~found
    missing[0] = False
    matrix = vectors.copy()
    matrix[missing] = rng.normal(0.0, scale, (int(missing.sum()), vectors.shape[1]))
    matrix[0] = 0.0
    return matrix
