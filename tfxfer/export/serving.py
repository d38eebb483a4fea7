"""Serving functions: request tensors in, `probabilities`/`class_ids`/`class_names` out.

One function per input kind (encoded image bytes, float image tensors), all
ending in the same output dict, so every signature of a model answers alike.
A multi-task model answers the same outputs once per task, each name suffixed
with `_<task>` (`probabilities_species`, `class_ids_species`, ...).
"""

import dataclasses
import numbers

import keras
import tensorflow as tf

from tfxfer.data import image_ops
from tfxfer.errors import ConfigError
from tfxfer.export import layout
from tfxfer.models.heads import HeadKind


@dataclasses.dataclass(frozen=True)
class ServingHead:
    """One head's part of a signature's outputs (see `postprocess`).

    Attributes:
        kind: HeadKind. What the head computes.
        labels: tf.lookup.StaticHashTable. Class id (int64) to class name.
        top_k: int | None. Best classes returned, already capped at the head's classes.
        task: str | None. The task of a multi-task model: its outputs are read from the model's
            output dict under this key and named with the suffix `_<task>`. None for a one-head model.
    """

    kind: HeadKind
    labels: tf.lookup.StaticHashTable
    top_k: int | None = None
    task: str | None = None


def postprocess(
    probabilities: tf.Tensor, kind: HeadKind, labels: tf.lookup.StaticHashTable, top_k: int | None = None,
    suffix: str = "",
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
        suffix: str. Appended to every output name: `"_<task>"` for one task of
            a multi-task model, `""` for a one-head model.
    """
    probabilities = tf.cast(probabilities, tf.float32)
    if kind is HeadKind.BINARY:
        probabilities = tf.concat([1.0 - probabilities, probabilities], axis=-1)
    class_ids = tf.argmax(probabilities, axis=-1)
    outputs = {
        layout.PROBABILITIES: probabilities,
        layout.CLASS_IDS: class_ids,
        layout.CLASS_NAMES: labels.lookup(class_ids),
    }
    if top_k:
        scores, indices = tf.math.top_k(probabilities, k=top_k)
        outputs[layout.TOP_K_SCORES] = scores
        outputs[layout.TOP_K_CLASS_NAMES] = labels.lookup(tf.cast(indices, tf.int64))
    return {name + suffix: value for name, value in outputs.items()}


def serving_outputs(model_outputs, heads: list[ServingHead]) -> dict[str, tf.Tensor]:
    """A signature's outputs: every head's `postprocess`ed probabilities, under its own names.

    Args:
        model_outputs: tf.Tensor or dict. The model's probabilities; `{task: (N, units)}`
            for a multi-task model.
        heads: list of ServingHead. One without a task for a one-head model, else one per task.
    """
    outputs = {}
    for head in heads:
        probabilities = model_outputs if head.task is None else model_outputs[head.task]
        suffix = "" if head.task is None else layout.task_output("", head.task)  # "_<task>"
        outputs.update(postprocess(probabilities, head.kind, head.labels, head.top_k, suffix=suffix))
    return outputs


def check_top_k(top_k: int | None, num_classes: int) -> int | None:
    """Validates `top_k` and caps it at `num_classes`; None means no top-k outputs.

    top_k: int | None. Requested number of best classes per example.
    num_classes: int. Classes the model predicts.
    """
    if top_k is None:
        return None
    # Any integer type: a NumPy one (np.int64 from a computation on arrays) is as good a k as an int.
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ConfigError(
            "top_k must be a positive integer (the number of best classes each "
            f"signature returns), or None for no top-k outputs. Received: top_k={top_k!r}"
        )
    return min(int(top_k), num_classes)  # a plain int: it becomes a graph constant and a metadata value


def predict_batch(model: keras.Model, batch_size: tf.Tensor, inputs_fn) -> tf.Tensor | dict[str, tf.Tensor]:
    """`model(inputs_fn(), training=False)`, or empty `(0, units)` outputs for an empty request.

    oneDNN's CPU Conv2D mishandles zero-size batches, and a text preprocessor
    need not run on nothing: every signature answers an empty batch this way.
    A multi-task model's outputs are a dict, and so are its empty ones (one per task).
    """
    return tf.cond(
        batch_size > 0,
        lambda: model(inputs_fn(), training=False),
        lambda: tf.nest.map_structure(lambda output: tf.zeros([0, output.shape[-1]], output.dtype), model.output),
    )


def image_endpoints(model: keras.Model, heads: list[ServingHead]) -> dict:
    """`{name: (fn, input_signature)}` for an image model taking `(N, H, W, 3)` floats in [0, 255].

    Args:
        model: keras.Model. The image classifier.
        heads: list of ServingHead. What its outputs become (see `serving_outputs`).
    """
    height, width = model.input_shape[1:3]

    def predict_images(images):
        return serving_outputs(predict_batch(model, tf.shape(images)[0], lambda: images), heads)

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
