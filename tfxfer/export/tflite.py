"""TFLite models of an image classifier, and what each quantization costs in accuracy.

`export_tflite` writes four `.tflite` files plus `labels.txt` and
`tflite_report.json` into one folder and returns the report: for each file its
size in bytes, its validation accuracy and how often it agrees with the Keras
model, beside the Keras model's own accuracy (the SavedModel's `serving_images`
signature computes the same function; tests/test_export.py checks that).

| variant | weights | activations | input / output |
|---|---|---|---|
| `float32` | float32 | float32 | float32 images in [0, 255] / probabilities |
| `dynamic_range` | int8 | float32 | float32 / float32 |
| `float16` | float16 | float32 | float32 / float32 |
| `int8` | int8 | int8, calibrated on training images | int8 / int8: quantize the [0, 255] pixels with the input's `(scale, zero_point)`, dequantize the output with the output's |

Text classifiers are refused (`UnsupportedModelError`, a `NotImplementedError`):
their tokenizers have no TFLite builtin ops, and tfxfer does not convert or
measure them. So are multi-task classifiers: their several outputs and
per-task accuracies are not what these files and this report describe.

Every model takes one `(1, H, W, 3)` image per call (the fixed shape mobile
runtimes prefer) and ends in the `predictions` layer (for a binary head: P(class 1)).
The training-only augmentation layer is left out: it is an identity at inference,
and without it the graph holds only inference ops.
"""

import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data.constants import LABELS_FILE
from tfxfer.errors import ConfigError
from tfxfer.export import versioning
from tfxfer.export.saved_model import checked_class_names
from tfxfer.models import heads, input_fit, layer_names, lora_layers
from tfxfer.models.classifier import text_preprocessor
from tfxfer.tasks import model_tasks

VARIANTS = ("float32", "dynamic_range", "float16", "int8")


class UnsupportedModelError(ConfigError, NotImplementedError):
    """A model TFLite export does not cover (a text or a multi-task classifier).

    A `NotImplementedError`, since tfxfer has no TFLite path for it, and a
    `ConfigError`: tfxfer works as intended, and the caller is the one who
    can act (pass an image classifier, or serve the SavedModel instead), so
    the recipes show its message rather than a traceback.
    """
REPORT_FILE = "tflite_report.json"


@dataclasses.dataclass
class TFLiteResult:
    """One converted model, measured on the validation data.

    Attributes:
        variant: str. One of `VARIANTS`.
        path: str. The `.tflite` file.
        size_bytes: int. Its size.
        accuracy: float. Top-1 accuracy on the validation data.
        agreement: float. Share of validation examples where it predicts the Keras model's class.
    """

    variant: str
    path: str
    size_bytes: int
    accuracy: float
    agreement: float


def export_tflite(
    model: keras.Model,
    output_dir: str | os.PathLike,
    *,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    class_names: Sequence[str],
    variants: Sequence[str] = VARIANTS,
    representative_examples: int = 100,
) -> dict:
    """Converts `model` to TFLite variants, evaluates them and returns the report.

    Args:
        model: keras.Model. A tfxfer image classifier (multiclass or binary head).
        output_dir: str. Folder for `<variant>.tflite`, `labels.txt` and `tflite_report.json`.
        train: tf.data.Dataset. Batches of `(images, labels)`; the int8 variant
            calibrates its ranges on its first `representative_examples` images.
        validation: tf.data.Dataset. Batches of `(images, labels)` to measure accuracy on.
        class_names: sequence of str. One per class, written to `labels.txt`.
        variants: sequence of str, or one str. A subset of `VARIANTS`.
        representative_examples: int. Training images used to calibrate int8.

    Returns:
        `{"keras": {"accuracy": ...}, "validation_size": n, "tflite": {variant:
        {"path", "size_bytes", "accuracy", "agreement"}}}`.

    Example:

    ```python
    report = tfxfer.export_tflite(model, "tflite/photos", train=data.train, validation=data.validation,
                                  class_names=data.class_names, variants=("float32", "int8"))
    print(report["tflite"]["int8"]["accuracy"], report["tflite"]["int8"]["size_bytes"])
    ```
    """
    _reject_unsupported_model(model)
    variants = (variants,) if isinstance(variants, str) else tuple(variants)  # "int8" is one variant, not 4 letters
    unknown = [variant for variant in variants if variant not in VARIANTS]
    if unknown or not variants:
        raise ConfigError(f"variants must be a non-empty subset of {list(VARIANTS)}. Received: {list(variants)}")
    if validation is None:
        raise ConfigError(
            "export_tflite measures each model on validation data: pass validation batches "
            "(e.g. load the images with validation_split=0.2). Received: validation=None"
        )
    output_dir = os.fspath(output_dir)
    versioning.check_folder_path(output_dir, "output_dir", "the .tflite files and labels.txt are written inside it")
    # Checked before any conversion: data that does not fit would otherwise fail minutes later, inside the
    # int8 calibration or the measuring, as a TFLite kernel's or Keras' shape error.
    if "int8" in variants:
        _check_images(model, train, "train")
    _check_images(model, validation, "validation")
    kind = heads.head_kind(model)
    if kind is heads.HeadKind.MULTILABEL:
        raise ConfigError(
            "export_tflite measures top-1 accuracy, which needs a multiclass or binary head. "
            f"Received: a {kind.value} model {model.name!r}; convert it with convert_tflite instead."
        )
    class_names = checked_class_names(class_names, heads.num_classes(model))
    versioning.make_folders(output_dir)
    with tf.io.gfile.GFile(os.path.join(output_dir, LABELS_FILE), "w") as f:
        f.write("\n".join(class_names) + "\n")
    flatbuffers, paths = {}, {}
    for variant in variants:
        representative = _representative_images(train, representative_examples) if variant == "int8" else None
        flatbuffers[variant] = convert_tflite(model, variant, representative_images=representative)
        paths[variant] = os.path.join(output_dir, f"{variant}.tflite")
        with tf.io.gfile.GFile(paths[variant], "wb") as f:
            f.write(flatbuffers[variant])
    keras_accuracy, validation_size, results = _evaluate(model, kind, validation, paths, flatbuffers)
    report = {
        "keras": {"accuracy": keras_accuracy},
        "validation_size": validation_size,
        "tflite": {variant: dataclasses.asdict(result) for variant, result in results.items()},
    }
    with tf.io.gfile.GFile(os.path.join(output_dir, REPORT_FILE), "w") as f:
        f.write(json.dumps(report, indent=2))
    for variant, result in results.items():
        logging.info("TFLite %-13s %9d bytes  accuracy %.4f (Keras %.4f)", variant, result.size_bytes,
                     result.accuracy, keras_accuracy)
    return report


def convert_tflite(
    model: keras.Model, variant: str, *, representative_images: Sequence[np.ndarray] | None = None
) -> bytes:
    """Converts an image classifier to one TFLite variant; returns the flatbuffer.

    Args:
        model: keras.Model. A tfxfer image classifier.
        variant: str. One of `VARIANTS` (see the module docstring).
        representative_images: sequence of float32 `(H, W, 3)` arrays in [0, 255].
            Required for `"int8"`: the data its activation ranges are calibrated on.
    """
    _reject_unsupported_model(model)
    if variant not in VARIANTS:
        raise ConfigError(f"variant must be one of {list(VARIANTS)}. Received: variant={variant!r}")
    if variant == "int8" and not representative_images:
        raise ConfigError(
            "The int8 variant calibrates on real images: pass representative_images "
            "(a few hundred training images). Received: none"
        )
    inference = inference_model(model)
    height, width = inference.input_shape[1:3]
    # LoRA adapters (a custom backbone's Dense layers) are merged into the kernels first, as in the SavedModel.
    with tempfile.TemporaryDirectory() as folder, lora_layers.merged(model):
        # Converting from a SavedModel freezes the variables into constants; from
        # concrete functions they stay resource reads that int8 calibration cannot run.
        archive = keras.export.ExportArchive()
        archive.track(inference)
        archive.add_endpoint("serve", lambda images: inference(images, training=False),
                             input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="images")])
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if variant != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if variant == "int8":
            converter.representative_dataset = lambda: ([image[np.newaxis].astype(np.float32)]
                                                        for image in representative_images)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return converter.convert()


def _reject_unsupported_model(model: keras.Model) -> None:
    """Raises `UnsupportedModelError` for text and multi-task classifiers, before any work.

    TFLite export covers one-head image classifiers only.
    """
    _reject_text_model(model)
    tasks = model_tasks(model)
    if tasks:
        raise UnsupportedModelError(
            "TFLite export supports one-head classifiers only: its files end in one `predictions` output "
            "with one labels.txt, and its report measures one top-1 accuracy. Serve a multi-task model "
            "with export_saved_model, or build and train one classifier per task for TFLite. Received: the "
            f"multi-task classifier {model.name!r} with tasks {list(tasks)}."
        )


def _reject_text_model(model: keras.Model) -> None:
    """Raises `UnsupportedModelError` for text classifiers: TFLite export covers image classifiers only."""

    if text_preprocessor(model) is not None:
        raise UnsupportedModelError(
            "TFLite export supports image classifiers only. Expected: a model from "
            f"build_image_classifier. Received: the text classifier {model.name!r}. Its tokenizer "
            "(tensorflow_text WordPiece ops or a TextVectorization string lookup) has no TFLite builtin "
            "ops, and tfxfer neither converts nor evaluates text models for TFLite, so it does not claim "
            "they work. Serve text models with the SavedModel (TF Serving + tensorflow_text); on device, "
            "tokenize in the app and convert the token-id model yourself with tf.lite.TFLiteConverter "
            "(untested by tfxfer)."
        )


def inference_model(model: keras.Model) -> keras.Model:
    """`model` without its training-only augmentation layer (the same model if it has none).

    A model with `test_time_flip` still averages each image with its mirror image.

    model: keras.Model. A tfxfer image classifier.
    """
    names = [layer.name for layer in model.layers]
    if layer_names.AUGMENTATION not in names:
        return model
    # The functional graph from the preprocessing layer's input on: same layers, same weights.
    single_view = keras.Model(model.get_layer(layer_names.PREPROCESSING).input, model.output,
                              name=f"{model.name}_inference")
    if not getattr(model, "test_time_flip", False):
        return single_view
    images = keras.Input(single_view.input_shape[1:], name=layer_names.INPUTS)
    outputs = keras.layers.Average()([single_view(images), single_view(keras.ops.flip(images, axis=2))])
    return keras.Model(images, outputs, name=f"{model.name}_inference")


def interpreter(model: str | bytes):
    """A ready TFLite interpreter: LiteRT's if `ai_edge_litert` is installed, else `tf.lite`'s.

    model: str or bytes. A `.tflite` file on any filesystem TensorFlow reads
        (`gs://...`), or the model's flatbuffer itself.
    """
    if not isinstance(model, bytes):
        # Read here, not by the interpreter: it opens local paths only.
        with tf.io.gfile.GFile(model, "rb") as f:
            model = f.read()
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():
            # TF 2.21 still ships tf.lite.Interpreter; it only warns that LiteRT replaces it.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            Interpreter = tf.lite.Interpreter
            runner = Interpreter(model_content=model)
    else:
        runner = Interpreter(model_content=model)
    runner.allocate_tensors()
    return runner


def run_tflite(runner, image: np.ndarray) -> np.ndarray:
    """Runs one float `(H, W, 3)` image in [0, 255] through a TFLite classifier; returns float outputs.

    runner: a TFLite interpreter from `interpreter`.
    image: np.ndarray. float32 `(H, W, 3)`.
    """
    input_detail = runner.get_input_details()[0]
    output_detail = runner.get_output_details()[0]
    batch = image[np.newaxis].astype(np.float32)
    if input_detail["dtype"] == np.int8:
        scale, zero_point = input_detail["quantization"]
        batch = np.clip(np.round(batch / scale + zero_point), -128, 127).astype(np.int8)
    runner.set_tensor(input_detail["index"], batch)
    runner.invoke()
    output = runner.get_tensor(output_detail["index"])[0]
    if output_detail["dtype"] == np.int8:
        scale, zero_point = output_detail["quantization"]
        output = (output.astype(np.float32) - zero_point) * scale
    return output


def _check_images(model: keras.Model, dataset, name: str) -> None:
    """Raises a `ConfigError` unless `dataset` is batches of `(images, labels)` that fit `model`'s input.

    model: keras.Model. The image classifier.
    dataset: tf.data.Dataset. `train` (read for the int8 calibration) or `validation`.
    name: str. The argument, for the messages.
    """
    spec = getattr(dataset, "element_spec", None)
    if not (isinstance(spec, tuple) and len(spec) == 2):
        shown = f"element_spec={spec}" if spec is not None else f"a {type(dataset).__name__}"
        raise ConfigError(
            f"export_tflite reads {name} as a tf.data.Dataset of (images, labels) batches, such as "
            f"data.{name} of load_image_folders; map yours to such pairs. Received: {name} with {shown}")
    input_fit.check_inputs(model.input, spec[0], name)


def _representative_images(dataset, count):
    images = []
    for batch, _ in dataset:
        images.extend(np.asarray(batch, np.float32))
        if len(images) >= count:
            break
    return images[:count]


def _class_ids(outputs, kind):
    outputs = np.asarray(outputs)
    if kind is heads.HeadKind.BINARY:
        return (outputs[..., 0] > 0.5).astype(np.int64)
    return np.argmax(outputs, axis=-1)


def _evaluate(model, kind, validation, paths, flatbuffers):
    """One pass over the validation data: (Keras accuracy, examples, {variant: TFLiteResult})."""
    runners = {variant: interpreter(flatbuffer) for variant, flatbuffer in flatbuffers.items()}
    correct = {variant: 0 for variant in paths}
    agree = {variant: 0 for variant in paths}
    keras_correct = total = 0
    for images, labels in validation:
        labels = np.asarray(labels).reshape(-1)
        reference = _class_ids(model(images, training=False), kind)
        keras_correct += int(np.sum(reference == labels))
        total += len(labels)
        for variant, runner in runners.items():
            predicted = _class_ids(np.stack([run_tflite(runner, image) for image in np.asarray(images)]), kind)
            correct[variant] += int(np.sum(predicted == labels))
            agree[variant] += int(np.sum(predicted == reference))
    if not total:
        raise ConfigError("The validation dataset is empty; export_tflite needs examples to measure accuracy on. "
                          "Pass at least one batch. Received: 0 examples")
    results = {
        variant: TFLiteResult(variant, path, len(flatbuffers[variant]), correct[variant] / total,
                              agree[variant] / total)
        for variant, path in paths.items()
    }
    return keras_correct / total, total, results
