"""Serving functions: request tensors in, `probabilities`/`class_ids`/`class_names` out.

One function per input kind (encoded image bytes, float image tensors), all
ending in the same output dict, so every signature of a model answers alike.
"""

import keras
import tensorflow as tf

from tfxfer.data import image_ops
from tfxfer.export import layout
from tfxfer.models.heads import HeadKind


def postprocess(
    probabilities: tf.Tensor, kind: HeadKind, labels: tf.lookup.StaticHashTable, top_k: int | None = None,
) -> dict[str, tf.Tensor]:
    """Turns the model's output into the serving outputs.

    `probabilities` is always `(N, num_classes)`: a one-unit binary head's P(1)
    becomes `[1 - p, p]`. `class_ids` is the most probable class (for
    multi-label heads, threshold `probabilities` yourself).

    Args:
        probabilities: tf.Tensor. The model's output, `(N, units)`.
        kind: HeadKind. The head that produced it.
        labels: tf.lookup.StaticHashTable. Class id (int64) to class name.
        top_k: int | None. If set, also return `top_k_scores` float32 `(N, k)`
            and `top_k_class_names` string `(N, k)`, best first; k is already
            capped at num_classes (see `check_top_k`).
    """
    probabilities = tf.cast(probabilities, tf.float32)
    if kind is HeadKind.BINARY:
        probabilities = tf.concat([1.0 - probabilities, probabilities], axis=-1)
    class_ids = tf.argmax(probabilities, axis=-1)
    outputs = {
        "probabilities": probabilities,
        "class_ids": class_ids,
        "class_names": labels.lookup(class_ids),
    }
    if top_k:
        scores, indices = tf.math.top_k(probabilities, k=top_k)
        outputs["top_k_scores"] = scores
        outputs["top_k_class_names"] = labels.lookup(tf.cast(indices, tf.int64))
    return outputs


def check_top_k(top_k: int | None, num_classes: int) -> int | None:
    """Validates `top_k` and caps it at `num_classes`; None means no top-k outputs.

    top_k: int | None. Requested number of best classes per example.
    num_classes: int. Classes the model predicts.
    """
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(
            "top_k must be a positive integer (the number of best classes each "
            f"signature returns), or None for no top-k outputs. Received: top_k={top_k!r}"
        )
    return min(top_k, num_classes)


def predict_batch(model: keras.Model, batch_size: tf.Tensor, inputs_fn) -> tf.Tensor:
    """`model(inputs_fn(), training=False)`, or empty `(0, units)` outputs for an empty request.

    oneDNN's CPU Conv2D mishandles zero-size batches, and a text preprocessor
    need not run on nothing: every signature answers an empty batch this way.
    """
    return tf.cond(
        batch_size > 0,
        lambda: model(inputs_fn(), training=False),
        lambda: tf.zeros([0, model.output_shape[-1]], model.output.dtype),
    )


def image_endpoints(
    model: keras.Model, kind: HeadKind, labels: tf.lookup.StaticHashTable, top_k: int | None = None,
) -> dict:
    """`{name: (fn, input_signature)}` for an image model taking `(N, H, W, 3)` floats in [0, 255]."""
    height, width = model.input_shape[1:3]

    def predict_images(images):
        probabilities = predict_batch(model, tf.shape(images)[0], lambda: images)
        return postprocess(probabilities, kind, labels, top_k)

    def predict_image_bytes(image_bytes):
        images = tf.map_fn(
            # Capped: a small file declaring a huge (or impossible) image must not OOM the server.
            lambda contents: image_ops.decode_and_resize(contents, (height, width), image_ops.MAX_SERVING_PIXELS),
            image_bytes,
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
        )
        return predict_images(images)

    return {
        # First, so it is also `serving_default`: what TF Serving's REST {"b64": ...} sends.
        layout.SERVING_DEFAULT: (predict_image_bytes,
                                 [tf.TensorSpec([None], tf.string, name=layout.IMAGE_BYTES_INPUT)]),
        layout.SERVING_IMAGES: (predict_images,
                                [tf.TensorSpec([None, height, width, 3], tf.float32, name=layout.IMAGES_INPUT)]),
    }
