"""Serving functions for text classifiers: raw UTF-8 strings in, the usual outputs out.

The model takes token ids; its preprocessor (tokenizer + packer, or a word
vectorizer) runs inside the serving function, so TF Serving only ever sees
strings. The graph needs TensorFlow and tensorflow_text ops only.
"""

import keras
import tensorflow as tf

from tfxfer.export import serving
from tfxfer.export.layout import TEXTS_INPUT
from tfxfer.models.classifier import text_preprocessor

TOKEN_IDS_SIGNATURE = "serving_token_ids"

__all__ = ["TEXTS_INPUT", "TOKEN_IDS_SIGNATURE", "text_endpoints", "text_metadata", "token_input_specs", "tokenize"]


def text_endpoints(model: keras.Model, preprocessor, heads: list[serving.ServingHead]) -> dict:
    """`{name: (fn, input_signature)}` for a text classifier.

    `serving_default` takes raw strings `texts` (N,); `serving_token_ids` takes
    the model's own already-tokenized inputs (see `token_input_specs`), for
    clients that tokenize themselves. Both return the same outputs.

    Args:
        model: keras.Model. Takes what `preprocessor` returns.
        preprocessor: callable. Strings `(N,)` to the model's inputs.
        heads: list of serving.ServingHead. What the model's outputs become (see `serving.serving_outputs`).
    """

    def predict_texts(texts):
        return serving.serving_outputs(
            serving.predict_batch(model, tf.size(texts), lambda: preprocessor(texts)), heads)

    specs = token_input_specs(model)

    def predict_token_ids(*tensors):
        inputs = dict(zip(specs, tensors)) if isinstance(model.input, dict) else tensors[0]
        return serving.serving_outputs(serving.predict_batch(model, tf.shape(tensors[0])[0], lambda: inputs), heads)

    return {
        "serving_default": (predict_texts, [tf.TensorSpec([None], tf.string, name=TEXTS_INPUT)]),
        TOKEN_IDS_SIGNATURE: (predict_token_ids, list(specs.values())),
    }


def token_input_specs(model: keras.Model) -> dict[str, tf.TensorSpec]:
    """`{input_name: TensorSpec}` of a text model's token inputs, in signature order.

    model: keras.Model. A text classifier; its inputs are a dict (keras-hub
    encoders: `token_ids`, `segment_ids`, `padding_mask`) or one tensor
    (word-vector encoders: `token_ids`).
    """
    if isinstance(model.input, dict):
        tensors = {name: model.input[name] for name in sorted(model.input)}
    else:
        tensors = {model.input.name: model.input}
    return {name: tf.TensorSpec(tensor.shape, tensor.dtype, name=name) for name, tensor in tensors.items()}


def tokenize(model: keras.Model, texts) -> dict[str, tf.Tensor]:
    """`{input_name: tensor}` for the `serving_token_ids` signature: `texts` run through the preprocessor.

    model: keras.Model. A text classifier.
    texts: list of str or tf.Tensor. A batch of raw strings.
    """
    specs = token_input_specs(model)
    outputs = text_preprocessor(model)(tf.constant(texts, tf.string))
    if not isinstance(outputs, dict):
        outputs = {next(iter(specs)): outputs}
    return {name: tf.cast(outputs[name], spec.dtype) for name, spec in specs.items()}


def text_metadata(model: keras.Model) -> dict:
    """Metadata entries that describe a text model's input; empty for other models.

    model: keras.Model. Any exported model.
    """
    preprocessor = text_preprocessor(model)
    if preprocessor is None:
        return {}
    token_inputs = {name: f"{spec.dtype.name} {tuple(spec.shape)}" for name, spec in token_input_specs(model).items()}
    return {"input_shape": [None], "inputs": {TEXTS_INPUT: "tf.string (N,), raw UTF-8 texts"},
            "token_inputs": token_inputs, "preprocessor": type(preprocessor).__name__}
