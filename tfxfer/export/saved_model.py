"""`export_saved_model`: a versioned SavedModel that TF Serving loads unchanged."""

import json
import os
import platform
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from tfxfer.data import image_ops
from tfxfer.data.constants import LABELS_FILE
from tfxfer.errors import ConfigError
from tfxfer.export import layout, serving, text_serving, versioning, warmup
from tfxfer.export.layout import METADATA_FILE
from tfxfer.models import heads, lora_layers
from tfxfer.models.classifier import Classifier, text_preprocessor
from tfxfer.version import __version__


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    *,
    class_names: list[str] | None = None,
    metadata: dict | None = None,
    top_k: int | None = None,
    warmup_examples: list[bytes] | list[str] | None = None,
) -> str:
    """Exports `model` to `<export_dir>/<next version>/` and returns that path.

    Signatures: `serving_default` takes a batch of encoded JPEG/PNG/GIF/BMP bytes
    (`tf.string`, what TF Serving's REST API delivers for `{"b64": ...}`);
    `serving_images` takes float images `(N, H, W, 3)` in [0, 255]. Both return
    `probabilities` (N, num_classes), `class_ids` (N,) and `class_names` (N,).
    A text classifier (`tfxfer.build_text_classifier`) instead gets
    `serving_default` taking raw UTF-8 strings `texts` (N,), its preprocessor
    inside the graph (needs tensorflow_text ops only), and `serving_token_ids`
    taking the model's already-tokenized inputs (e.g. `token_ids`,
    `segment_ids`, `padding_mask`, each `(N, T)`).
    The class names are also in the SavedModel's `assets/labels.txt`, and
    `assets.extra/tfxfer_metadata.json` describes the model.

    Args:
        model: keras.Model. An image classifier from tfxfer (or any model with
            a `predictions` layer that takes `(N, H, W, 3)` [0, 255] images).
        export_dir: str. The model's base folder; versions go inside it.
        class_names: list of str. One name per class, in label order; class
            indices as strings if None.
        metadata: dict. Extra JSON-serialisable facts (metrics, data, ...).
        top_k: int | None. If set, every signature also returns `top_k_scores`
            float32 `(N, k)` and `top_k_class_names` string `(N, k)`, best
            first, with k capped at the number of classes.
        warmup_examples: list of bytes | list of str | None. A few encoded
            images (e.g. `tfxfer.export.warmup.encode_images(data.validation)`),
            or for a text classifier a few raw texts; if set,
            `assets.extra/tf_serving_warmup_requests` replays them through every
            signature when TF Serving loads the model.

    A model trained with LoRA (`FineTuneConfig.lora_rank`) is exported with
    its adapters merged into the kernels (`W + A @ B`): the SavedModel has no
    adapter variables or ops, and predicts what the Keras model predicts.

    The version folder and its files get the permissions of any folder and
    file the user creates (0o777 / 0o666 minus the umask), so TF Serving
    running as another user can read them when the umask allows it.

    Raises:
        NotAFolderError: `export_dir`, or a parent of it, is a file (a `NotADirectoryError`).
        ConfigError: a class name is empty or holds a line break, or the
            number of class names does not match the model.

    Returns:
        The version folder written, e.g. `saved_models/photos/1`.

    Example:

    ```python
    path = tfxfer.export_saved_model(model, "saved_models/photos", class_names=data.class_names, top_k=3)
    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["serving_default"](image_bytes=tf.constant([open("bee.jpg", "rb").read()]))
    print(outputs["class_names"], outputs["probabilities"])
    ```
    """
    export_dir = os.fspath(export_dir)
    versioning.check_base_dir(export_dir)
    kind = heads.head_kind(model)
    class_names = _check_class_names(class_names, heads.num_classes(model))
    top_k = serving.check_top_k(top_k, len(class_names))
    # Checked before anything is written: a failing warmup request makes TF Serving reject the version.
    warmup_requests = None
    preprocessor = text_preprocessor(model)
    if warmup_examples is not None:
        warmup.require_serving_api()
        if preprocessor is not None:  # A text classifier: its requests carry raw strings.
            warmup_requests = warmup.text_warmup_inputs(warmup_examples, model)
        else:
            warmup_requests = warmup.image_warmup_inputs(warmup_examples, model.input_shape[1:3])
    # A LoRA model (FineTuneConfig.lora_rank) is exported as the plain model it amounts to: merged kernels,
    # no adapter variables or ops; the model itself is put back as it was afterwards.
    with (tempfile.TemporaryDirectory() as scratch, versioning.staging_dir(export_dir) as staging,
          lora_layers.merged(model) as merged_layers):
        # On the local disk whatever export_dir is: TensorFlow copies it into the version's assets/.
        labels_path = os.path.join(scratch, LABELS_FILE)
        with open(labels_path, "w", encoding="utf-8") as f:
            f.write("\n".join(class_names) + "\n")
        # A table initialised from the file makes TF copy it into assets/ and
        # makes the serving graph read class names from there.
        labels = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                labels_path, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string, tf.lookup.TextFileIndex.WHOLE_LINE),
            default_value="")
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.track(labels)
        if preprocessor is not None:  # A text classifier: the export takes raw strings.
            # One call builds it (a reloaded model's has not run yet): the archive tracks built layers only.
            preprocessor(tf.constant(["build"]))
            archive.track(preprocessor)
            endpoints = text_serving.text_endpoints(model, preprocessor, kind, labels, top_k)
        else:
            endpoints = serving.image_endpoints(model, kind, labels, top_k)
        for name, (fn, signature) in endpoints.items():
            archive.add_endpoint(name, fn, input_signature=signature)
        archive.write_out(staging, verbose=False)
        if warmup_requests:
            warmup.write_warmup_requests(staging, warmup_requests)
        _write_metadata(staging, model, kind, class_names,
                        {"top_k": top_k, "warmup_requests": bool(warmup_requests),
                         "signatures": list(endpoints), **_image_metadata(model, preprocessor),
                         **text_serving.text_metadata(model), **(metadata or {})})
        path = versioning.publish(staging, export_dir)
    logging.info("Exported %s to %s%s", model.name, path,
                 f" (LoRA adapters of {merged_layers} layers merged into their kernels)" if merged_layers else "")
    return path


def _check_class_names(class_names, num_classes):
    if class_names is None:
        logging.warning("No class_names given; exporting class indices as names.")
        return [str(index) for index in range(num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes:
        raise ConfigError(
            f"The model predicts {num_classes} classes but {len(class_names)} class names "
            f"were given. Received: class_names={class_names}"
        )
    check_label_lines(class_names)
    return class_names


def check_label_lines(class_names: list[str]) -> None:
    """Raises if a class name is empty or spans lines: `labels.txt` holds one name per line.

    A name with a line break would shift every later class to the wrong id for
    anyone reading the file line by line. Every break Python's `str.splitlines`
    knows counts (carriage return, form feed, U+2028, ...), not only newline.

    class_names: list of str. The names, in label order.
    """
    bad = [name for name in class_names if not name or name.splitlines() != [name]]
    if bad:
        raise ConfigError(
            "Class names are written one per line to labels.txt; rename these classes (e.g. "
            f"their folders) so that each is non-empty and has no line break. Expected: "
            f"non-empty single lines. Received: {bad}"
        )


def _image_metadata(model, text_preprocessor):
    """How an image model wants its pixels: what a client must know to call `serving_images`."""
    if text_preprocessor is not None:
        return {}
    facts = {"resize": image_ops.RESIZE_METHOD, "pixel_range": [0, 255],
             "max_serving_pixels": image_ops.MAX_SERVING_PIXELS}
    if isinstance(model, Classifier):  # a model built by hand takes pixels as they are
        facts["backbone_preprocessing"] = model.preprocessing
        facts["backbone"] = model.backbone_name
    return facts


def _write_metadata(version_dir, model, kind, class_names, extra):
    # assets.extra/ is where TF Serving looks for extras (e.g. warmup requests).
    folder = os.path.join(version_dir, layout.EXTRA_ASSETS_DIR)
    versioning.make_folders(folder)
    metadata = {
        "model_name": model.name,
        "head": kind.value,
        "class_names": class_names,
        "input_shape": list(model.input_shape[1:]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {"tfxfer": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "python": platform.python_version()},
        **(extra or {}),
    }
    with tf.io.gfile.GFile(os.path.join(folder, METADATA_FILE), "w") as f:  # any filesystem, as the version
        f.write(json.dumps(metadata, indent=2, sort_keys=True, default=str))
