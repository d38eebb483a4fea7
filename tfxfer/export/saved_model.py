"""`export_saved_model`: a versioned SavedModel that TF Serving loads unchanged."""

import json
import os
import platform
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from tfxfer import __version__, heads
from tfxfer.export import serving, versioning

LABELS_FILE = "labels.txt"
METADATA_FILE = "tfxfer_metadata.json"


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    *,
    class_names: list[str] | None = None,
    metadata: dict | None = None,
) -> str:
    """Exports `model` to `<export_dir>/<next version>/` and returns that path.

    Signatures: `serving_default` takes a batch of encoded JPEG/PNG/GIF/BMP bytes
    (`tf.string`, what TF Serving's REST API delivers for `{"b64": ...}`);
    `serving_images` takes float images `(N, H, W, 3)` in [0, 255]. Both return
    `probabilities` (N, num_classes), `class_ids` (N,) and `class_names` (N,).
    The class names are also in the SavedModel's `assets/labels.txt`, and
    `assets.extra/tfxfer_metadata.json` describes the model.

    Args:
        model: keras.Model. An image classifier from tfxfer (or any model with
            a `predictions` layer that takes `(N, H, W, 3)` [0, 255] images).
        export_dir: str. The model's base folder; versions go inside it.
        class_names: list of str. One name per class, in label order; class
            indices as strings if None.
        metadata: dict. Extra JSON-serialisable facts (metrics, data, ...).
    """
    export_dir = os.fspath(export_dir)
    kind = heads.head_kind(model)
    class_names = _check_class_names(class_names, heads.num_classes(model))
    with tempfile.TemporaryDirectory() as scratch, versioning.staging_dir(export_dir) as staging:
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
        for name, (fn, signature) in serving.image_endpoints(model, kind, labels).items():
            archive.add_endpoint(name, fn, input_signature=signature)
        archive.write_out(staging, verbose=False)
        _write_metadata(staging, model, kind, class_names, metadata)
        path = versioning.publish(staging, export_dir)
    logging.info("Exported %s to %s", model.name, path)
    return path


def _check_class_names(class_names, num_classes):
    if class_names is None:
        logging.warning("No class_names given; exporting class indices as names.")
        return [str(index) for index in range(num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes:
        raise ValueError(
            f"The model predicts {num_classes} classes but {len(class_names)} class names "
            f"were given. Received: class_names={class_names}"
        )
    bad = [name for name in class_names if not name or "\n" in name or "\r" in name]
    if bad:
        raise ValueError(f"Class names must be non-empty single lines. Received: {bad}")
    return class_names


def _write_metadata(version_dir, model, kind, class_names, extra):
    # assets.extra/ is where TF Serving looks for extras (e.g. warmup requests).
    folder = os.path.join(version_dir, "assets.extra")
    os.makedirs(folder, exist_ok=True)
    metadata = {
        "model_name": model.name,
        "head": kind.value,
        "class_names": class_names,
        "input_shape": list(model.input_shape[1:]),
        "signatures": ["serving_default", "serving_images"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {"tfxfer": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "python": platform.python_version()},
        **(extra or {}),
    }
    with open(os.path.join(folder, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2, sort_keys=True, default=str)
