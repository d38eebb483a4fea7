"""`TextBackbone`: a text encoder paired with the preprocessor that feeds it."""

import dataclasses
from collections.abc import Callable

import keras


@dataclasses.dataclass
class TextBackbone:
    """A text encoder and the string-to-token-ids step in front of it.

    The two are kept apart on purpose: for training, `preprocessor` runs in the
    tf.data pipeline (parallel, off the accelerator); for serving, the export
    puts it in front of the model so the SavedModel takes raw strings.

    Attributes:
        encoder: keras.Model. Token inputs (what `preprocessor` returns) to
            features: a sequence `(N, T, D)` or a vector `(N, D)`.
        preprocessor: callable. A batch of strings `(N,)` -> the encoder's inputs
            (a tensor or a dict of tensors). Must be traceable by `tf.function`
            with TensorFlow and tensorflow_text ops only, so the export serves it.
        name: str. Display name, used for the classifier's name.
    """

    encoder: keras.Model
    preprocessor: Callable
    name: str
