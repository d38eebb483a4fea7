"""TF Serving warmup requests: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays this TFRecord of `PredictionLog` protos when it loads a
version, before it takes traffic, so the first live request does not pay for
graph warm-up. A request that fails makes TF Serving refuse the whole version,
which is why the examples are decoded and checked here, at export time.

Requests are built per input kind (`image_warmup_inputs` for image models,
`text_warmup_inputs` for text models) as `{signature_name: {input_name: array}}`;
`write_warmup_requests` does not care which kind produced them.

The protos come from the `tensorflow-serving-api` package, a tfxfer
requirement: it is pure Python and needs only what TensorFlow already needs
(grpcio, protobuf). It is imported only here, and only when warmup requests are
written or read, so a broken install fails with instructions, not at import.
"""

import os
import types
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import image_ops
from tfxfer.export import layout, text_serving, versioning
from tfxfer.export.layout import WARMUP_FILE

# TF Serving reads at most this many warmup records.
MAX_RECORDS = 1000


def image_warmup_inputs(examples: Sequence[bytes], image_size: tuple[int, int]) -> dict[str, dict[str, np.ndarray]]:
    """Warmup inputs for both image signatures, from a few encoded images.

    Args:
        examples: sequence of bytes. Encoded JPEG/PNG/GIF/BMP images, e.g. a few
            validation images (see `encode_images`).
        image_size: tuple[int, int]. The model's (height, width).

    Returns:
        `{"serving_default": {"image_bytes": (N,) bytes}, "serving_images":
        {"images": (N, H, W, 3) float32}}`, each one batched request.
    """
    if isinstance(examples, (bytes, str)) or not examples:
        raise ValueError(
            "warmup_examples must be a non-empty list of encoded images (bytes), e.g. "
            "tfxfer.export.warmup.encode_images(data.validation), or None for no warmup file. "
            f"Received: {type(examples).__name__} of length {len(examples) if examples is not None else None}"
        )
    images = []
    for index, contents in enumerate(examples):
        if not isinstance(contents, bytes):
            raise ValueError(
                "Each warmup example must be the bytes of an encoded image. "
                f"Received: examples[{index}] of type {type(contents).__name__}"
            )
        _check_serving_size(contents, index)
        try:
            images.append(image_ops.decode_and_resize(tf.constant(contents), image_size).numpy())
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(
                f"Warmup example {index} is not a JPEG/PNG/GIF/BMP image; TF Serving would refuse to "
                f"load a model whose warmup request fails. Received: {len(contents)} bytes "
                f"starting {contents[:8]!r}"
            ) from error
    return {
        layout.SERVING_DEFAULT: {layout.IMAGE_BYTES_INPUT: np.array(list(examples), dtype=object)},
        layout.SERVING_IMAGES: {layout.IMAGES_INPUT: np.stack(images).astype(np.float32)},
    }


def _check_serving_size(contents: bytes, index: int) -> None:
    """Raises a ValueError if `serving_default` would refuse this image for its size (or as JPEG XL).

    The export's own check (`image_ops.check_image_size`, the `MAX_SERVING_PIXELS` cap), run
    here because decoding at export time has no cap: an image that decodes here could still
    fail the warmup request, and TF Serving would then refuse the version.
    """
    try:
        image_ops.check_image_size(tf.constant(contents), image_ops.MAX_SERVING_PIXELS)
    except tf.errors.InvalidArgumentError as error:
        reason = error.message.split(". ")[0]  # the check's first sentence; the rest is generic or numbers
        raise ValueError(
            f"Warmup example {index} would fail its serving_default request, and TF Serving refuses to load a "
            f"model whose warmup request fails. {reason}. Pass images the export serves, e.g. "
            f"tfxfer.export.warmup.encode_images(data.validation). Received: {len(contents)} bytes "
            f"starting {contents[:8]!r}"
        ) from error


def text_warmup_inputs(examples: Sequence[str], model) -> dict[str, dict[str, np.ndarray]]:
    """Warmup inputs for both text signatures, from a few raw texts.

    Args:
        examples: sequence of str. A few typical texts, e.g. validation texts.
        model: keras.Model. The text classifier; its preprocessor tokenizes the
            texts for the `serving_token_ids` request.

    Returns:
        `{"serving_default": {"texts": (N,) UTF-8 bytes}, "serving_token_ids":
        {input_name: (N, T) array}}`, each one batched request.
    """
    if isinstance(examples, (bytes, str)) or not examples:
        raise ValueError(
            "warmup_examples of a text model must be a non-empty list of strings (a few typical "
            "texts), or None for no warmup file. "
            f"Received: {type(examples).__name__} of length {len(examples) if examples is not None else None}"
        )
    for index, text in enumerate(examples):
        if not isinstance(text, str):
            raise ValueError(
                "Each warmup example of a text model must be a str (the model takes raw texts, not "
                f"encoded images). Received: examples[{index}] of type {type(text).__name__}"
            )
    tokens = text_serving.tokenize(model, list(examples))
    return {
        layout.SERVING_DEFAULT: {layout.TEXTS_INPUT: np.array([t.encode("utf-8") for t in examples], dtype=object)},
        text_serving.TOKEN_IDS_SIGNATURE: {name: value.numpy() for name, value in tokens.items()},
    }


def encode_images(dataset: tf.data.Dataset, count: int = 3) -> list[bytes]:
    """PNG-encodes the first `count` images of a batched `(images, labels)` dataset.

    PNG is lossless, so the warmup requests carry exactly these pixels.

    Args:
        dataset: tf.data.Dataset. Batches of float `(B, H, W, 3)` images in [0, 255]
            and labels, like `ImageDatasets.validation`.
        count: int. How many images to encode (fewer if the dataset is smaller).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1. Received: count={count}")
    encoded = []
    for images, _ in dataset:
        for image in images:
            pixels = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
            encoded.append(tf.io.encode_png(pixels).numpy())
            if len(encoded) == count:
                return encoded
    return encoded


def write_warmup_requests(version_dir: str, requests: dict[str, dict[str, np.ndarray]]) -> str:
    """Writes one `PredictionLog` per signature to `<version_dir>/assets.extra/`; returns the file path.

    Args:
        version_dir: str. A SavedModel folder (typically still being staged), on
            any filesystem TensorFlow supports.
        requests: dict. `{signature_name: {input_name: batched array}}`.
    """
    apis = _serving_apis()
    if not 0 < len(requests) <= MAX_RECORDS:
        raise ValueError(f"Expected 1 to {MAX_RECORDS} warmup requests. Received: {len(requests)}")
    folder = os.path.join(version_dir, layout.EXTRA_ASSETS_DIR)
    versioning.make_folders(folder)
    path = os.path.join(folder, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:  # any filesystem TensorFlow supports
        for signature_name, inputs in requests.items():
            request = apis.predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            for input_name, value in inputs.items():
                request.inputs[input_name].CopyFrom(tf.make_tensor_proto(value))
            log = apis.prediction_log_pb2.PredictionLog(
                predict_log=apis.prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    logging.info("Wrote %d warmup requests (%s) to %s", len(requests), ", ".join(requests), path)
    return path


def read_warmup_requests(path: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Reads a warmup file back as `[(signature_name, {input_name: array})]`, in file order.

    path: str. A `tf_serving_warmup_requests` file.
    """
    apis = _serving_apis()
    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = apis.prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        requests.append((request.model_spec.signature_name, inputs))
    return requests


def require_serving_api() -> None:
    """Raises an ImportError saying how to install `tensorflow-serving-api` if it is missing."""
    _serving_apis()


def _serving_apis():
    """The `tensorflow_serving.apis` protos, or an ImportError that says how to install them."""
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    except ImportError as error:
        raise ImportError(
            "TF Serving warmup requests need the tensorflow-serving-api package (a tfxfer "
            'requirement that is missing here): pip install "tensorflow-serving-api~=2.21.0", '
            "or export without warmup_examples. "
            f"Received: {error}"
        ) from error
    return types.SimpleNamespace(predict_pb2=predict_pb2, prediction_log_pb2=prediction_log_pb2)
