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

    Example:

    ```python
    vectorizer = keras.layers.TextVectorization(max_tokens=20000, output_sequence_length=128)
    vectorizer.adapt(data.texts("train"))  # data from tfxfer.load_text_data
    token_ids = keras.Input((128,), dtype="int64", name="token_ids")
    features = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20000, 64)(token_ids))
    encoder = keras.Model(token_ids, features, name="backbone")
    model = tfxfer.build_text_classifier(tfxfer.TextBackbone(encoder, vectorizer, "my_encoder"), num_classes=2)
    ```
    """

    encoder: keras.Model
    preprocessor: Callable
    name: str
