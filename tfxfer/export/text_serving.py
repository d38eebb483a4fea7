"""Serving functions for text classifiers: raw UTF-8 strings in, the usual outputs out.

The model takes token ids; its preprocessor (tokenizer + packer, or a word
vectorizer) runs inside the serving function, so TF Serving only ever sees
strings. The graph needs TensorFlow and tensorflow_text ops only.
"""

import keras
import tensorflow as tf

from tfxfer.export import serving
from tfxfer.heads import HeadKind
from tfxfer.text.text_classifier import text_preprocessor

TEXTS_INPUT = "texts"

__all__ = ["TEXTS_INPUT", "text_endpoints", "text_preprocessor"]


def text_endpoints(
    model: keras.Model, preprocessor, kind: HeadKind, labels: tf.lookup.StaticHashTable, top_k: int | None = None,
) -> dict:
    """`{name: (fn, input_signature)}` for a text classifier.

    Args:
        model: keras.Model. Takes what `preprocessor` returns.
        preprocessor: callable. Strings `(N,)` to the model's inputs.
        kind: HeadKind. The model's head.
        labels: tf.lookup.StaticHashTable. Class id (int64) to class name.
        top_k: int | None. Also return the k best classes (see `serving.postprocess`).
    """
    units = model.output_shape[-1]

    def predict_texts(texts):
        # An empty request gets empty outputs instead of tracing the encoder on nothing.
        probabilities = tf.cond(
            tf.size(texts) > 0,
            lambda: model(preprocessor(texts), training=False),
            lambda: tf.zeros([0, units], model.output.dtype),
        )
        return serving.postprocess(probabilities, kind, labels, top_k)

    return {"serving_default": (predict_texts, [tf.TensorSpec([None], tf.string, name=TEXTS_INPUT)])}
