"""`export_saved_model`: a versioned SavedModel that TF Serving loads unchanged."""

import json
import os
import platform
import tempfile
import time
from collections.abc import Mapping
from typing import NamedTuple

import keras
import tensorflow as tf
from absl import logging

from tfxfer.data import image_ops
from tfxfer.data.constants import LABELS_FILE
from tfxfer.errors import ConfigError
from tfxfer.export import layout, serving, text_serving, versioning, warmup
from tfxfer.export.layout import METADATA_FILE
from tfxfer.models import batchnorm_folding, heads, lora_layers
from tfxfer.models.classifier import Classifier, text_preprocessor
from tfxfer.models.heads import HeadKind
from tfxfer.tasks import model_tasks, unique_class_names
from tfxfer.version import __version__

# The keys tfxfer writes to tfxfer_metadata.json (`_write_metadata`): a caller's `metadata` may not replace them.
RESERVED_METADATA_KEYS = (
    "model_name", "head", "class_names", "tasks", "input_shape", "created", "versions",  # `_write_metadata`
    "top_k", "warmup_requests", "signatures", "batch_norms_folded",  # `export_saved_model`
    "resize", "pixel_range", "max_serving_pixels", "backbone_preprocessing", "backbone",  # `_image_metadata`
    "inputs", "token_inputs", "preprocessor",  # `text_serving.text_metadata`
)


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    *,
    class_names: list[str] | dict[str, list[str]] | None = None,
    metadata: dict | None = None,
    top_k: int | None = None,
    warmup_examples: list[bytes] | list[str] | None = None,
    fold_batch_norms: bool = True,
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

    A multi-task classifier (built with `tasks=`) answers every output once per
    task, named with the suffix `_<task>`: `probabilities_<task>` (N, C) (a
    binary task's one unit expanded to `[1 - p, p]`), `class_ids_<task>` (N,),
    `class_names_<task>` (N,), and with `top_k` `top_k_scores_<task>` and
    `top_k_class_names_<task>` (k capped at that task's classes). Each task's
    class names are in `assets/labels_<task>.txt`, and the metadata's `tasks`
    entry holds `{task: {"head": ..., "class_names": [...]}}` instead of the
    one-head `head` and `class_names`.

    Args:
        model: keras.Model. An image classifier from tfxfer (or any model with
            a `predictions` layer that takes `(N, H, W, 3)` [0, 255] images).
        export_dir: str. The model's base folder; versions go inside it.
        class_names: list of str. One name per class, in label order; class
            indices as strings if None. For a multi-task model a dict
            `{task: [names]}` with exactly the model's tasks (e.g. the
            datasets' `class_names`), or None for indices in every task.
        metadata: dict. Extra JSON-serialisable facts (metrics, data, ...), with keys
            other than tfxfer's own (`RESERVED_METADATA_KEYS`: `head`, `class_names`,
            `tasks`, ...), which `evaluate_export` and `tfxfer.prediction` read back.
        top_k: int | None. If set, every signature also returns `top_k_scores`
            float32 `(N, k)` and `top_k_class_names` string `(N, k)`, best
            first, with k capped at the number of classes (per task for a
            multi-task model; the metadata's `top_k` is then the k asked for).
        warmup_examples: list of bytes | list of str | None. A few encoded
            images (e.g. `tfxfer.export.warmup.encode_images(data.validation)`),
            or for a text classifier a few raw texts; if set,
            `assets.extra/tf_serving_warmup_requests` replays them through every
            signature when TF Serving loads the model.
        fold_batch_norms: bool. Whether an image model is exported with each
            BatchNormalization that follows a convolution folded into that
            convolution's kernel and bias (`tfxfer.models.batchnorm_folding`):
            the same predictions within float rounding, and a third less
            time per request for MobileNetV2 on a CPU, decoding included
            (`benchmarks/serving_latency.py`). False exports the layers as
            they are. Text models have no BatchNorm to fold.

    A model trained with LoRA (`FineTuneConfig.lora_rank`) is exported with
    its adapters merged into the kernels (`W + A @ B`): the SavedModel has no
    adapter variables or ops, and predicts what the Keras model predicts.

    The version folder and its files get the permissions of any folder and
    file the user creates (0o777 / 0o666 minus the umask), so TF Serving
    running as another user can read them when the umask allows it.

    Raises:
        NotAFolderError: `export_dir`, or a parent of it, is a file (a `NotADirectoryError`).
        ConfigError: `export_dir` is a version folder (it holds saved_model.pb; pass
            its base folder); `class_names` is a single str rather than a list, a
            class name is bytes that are not UTF-8, is empty, holds a line break or is given twice, or the
            number of class names does not match the model; for a multi-task
            model, `class_names` is not a dict of exactly its tasks; `metadata`
            is not a dict, or sets a key tfxfer writes itself (`RESERVED_METADATA_KEYS`).

    Returns:
        The version folder written, e.g. `saved_models/photos/1`.

    Example:

    ```python
    path = tfxfer.export_saved_model(model, "saved_models/photos", class_names=data.class_names, top_k=3)
    loaded = tf.saved_model.load(path)
    outputs = loaded.signatures["serving_default"](image_bytes=tf.constant([open("bee.jpg", "rb").read()]))
    print(outputs["class_names"], outputs["probabilities"])

    # A multi-task model: one labels file and one set of outputs per task.
    model = tfxfer.build_image_classifier("mobilenet_v2", tasks=data.tasks)
    path = tfxfer.export_saved_model(model, "saved_models/products", class_names=data.class_names)
    outputs = tf.saved_model.load(path).signatures["serving_default"](image_bytes=...)
    print(outputs["class_names_species"], outputs["probabilities_grade"])
    ```
    """
    export_dir = os.fspath(export_dir)
    versioning.check_base_dir(export_dir)
    _check_metadata(metadata)
    export_heads = _export_heads(model, class_names, top_k)
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
        # The signatures run an inference-only copy with BatchNorms folded (the model stays as it was);
        # folded after the merge, so that the folded convolutions hold merged kernels.
        served, folded = (batchnorm_folding.fold_batch_norms(model) if fold_batch_norms and preprocessor is None
                          else (model, 0))
        archive = keras.export.ExportArchive()
        archive.track(served)
        serving_heads = []
        for head in export_heads:
            labels = _labels_table(scratch, head)
            archive.track(labels)
            serving_heads.append(serving.ServingHead(head.kind, labels, head.top_k, head.task))
        if preprocessor is not None:  # A text classifier: the export takes raw strings.
            # One call builds it (a reloaded model's has not run yet): the archive tracks built layers only.
            preprocessor(tf.constant(["build"]))
            archive.track(preprocessor)
            endpoints = text_serving.text_endpoints(model, preprocessor, serving_heads)
        else:
            endpoints = serving.image_endpoints(served, serving_heads)
        for name, (fn, signature) in endpoints.items():
            archive.add_endpoint(name, fn, input_signature=signature)
        archive.write_out(staging, verbose=False)
        if warmup_requests:
            warmup.write_warmup_requests(staging, warmup_requests)
        # A one-head model's top_k is the k its outputs have; a multi-task model's the k asked for.
        # int(): a NumPy integer (which check_top_k takes) would be written to the metadata as a string.
        asked_top_k = None if top_k is None else int(top_k)
        exported_top_k = export_heads[0].top_k if export_heads[0].task is None else asked_top_k
        _write_metadata(staging, model, _head_metadata(export_heads),
                        {"top_k": exported_top_k, "warmup_requests": bool(warmup_requests),
                         "signatures": list(endpoints), "batch_norms_folded": folded,
                         **_image_metadata(model, preprocessor),
                         **text_serving.text_metadata(model), **(metadata or {})})
        path = versioning.publish(staging, export_dir)
    changes = [f"LoRA adapters of {merged_layers} layers merged into their kernels"] if merged_layers else []
    changes += [f"{folded} BatchNorm layers folded into their convolutions"] if folded else []
    logging.info("Exported %s to %s%s", model.name, path, f" ({'; '.join(changes)})" if changes else "")
    return path


class _ExportHead(NamedTuple):
    """One head to export: its task (None for a one-head model), kind, class names and top-k (capped)."""

    task: str | None
    kind: HeadKind
    class_names: list[str]
    top_k: int | None


def _export_heads(model, class_names, top_k) -> list[_ExportHead]:
    """The model's heads with their checked class names and top-k: one, or one per task in task order."""
    tasks = model_tasks(model)
    if tasks is None:
        if isinstance(class_names, Mapping):
            raise ConfigError(
                "class_names is a dict of task names, but the model has one head: pass its class names as a "
                f"list, in class-id order. Received: class_names with keys {sorted(class_names)}")
        kind = heads.head_kind(model)
        names = _check_class_names(class_names, heads.num_classes(model))
        return [_ExportHead(None, kind, names, serving.check_top_k(top_k, len(names)))]
    names = _check_task_class_names(class_names, tasks)
    return [_ExportHead(task, spec.kind, names[task], serving.check_top_k(top_k, spec.num_classes))
            for task, spec in tasks.items()]


def _check_class_names(class_names, num_classes):
    if class_names is None:
        logging.warning("No class_names given; exporting class indices as names.")
        return _index_names(num_classes)
    return checked_class_names(class_names, num_classes)


def _check_task_class_names(class_names, tasks):
    """`{task: names}` for every task of a multi-task model, from a dict of exactly its tasks (or None)."""
    if class_names is None:
        logging.warning("No class_names given; exporting class indices as names.")
        return {task: _index_names(spec.num_classes) for task, spec in tasks.items()}
    if not isinstance(class_names, Mapping):
        raise ConfigError(
            f"The model has a head per task ({', '.join(tasks)}): pass class_names as a dict "
            "{task: [class names in class-id order]}, e.g. the datasets' class_names. "
            f"Received: class_names of type {type(class_names).__name__}")
    missing, unknown = sorted(set(tasks) - set(class_names)), sorted(set(class_names) - set(tasks))
    if missing or unknown:
        raise ConfigError(
            f"class_names must name exactly the model's tasks {list(tasks)}: give each task its class "
            f"names and no other key. Received: keys {list(class_names)} (missing {missing}, unknown {unknown})")
    return {task: checked_class_names(class_names[task], spec.num_classes, task) for task, spec in tasks.items()}


def _index_names(num_classes):
    return [str(index) for index in range(num_classes)]


def checked_class_names(class_names, num_classes, task=None):
    """`class_names` as strings, checked against the head's class count, `check_label_lines` and for
    duplicates (as `evaluate_export` and `classification_report` check them): what an export (SavedModel or
    TFLite) writes to its labels file.

    Args:
        class_names: sequence of str. The names in class-id order (bytes are decoded as UTF-8); a single str
            is refused.
        num_classes: int. The head's classes.
        task: str | None. A multi-task model's task, for the messages.
    """
    owner, argument = ("model", "class_names") if task is None else (f"task {task!r}", f"class_names[{task!r}]")
    if isinstance(class_names, (str, bytes, Mapping)):
        # A str is a sequence too: "abc" would pass as the three classes a, b and c.
        kind = type(class_names).__name__
        raise ConfigError(
            f"The class names of {'the ' if task is None else ''}{owner} must be a list of names in class-id order, "
            f"not a single {kind}. Pass a list, e.g. ['cat', 'dog']. "
            f"Received: {argument}={class_names!r} of type {kind}")
    class_names = [_class_name(name, argument) for name in class_names]
    if len(class_names) != num_classes:
        raise ConfigError(
            f"The {owner} predicts {num_classes} classes but {len(class_names)} class names "
            f"were given. Received: {argument}={class_names}"
        )
    check_label_lines(class_names)
    # Two classes of one name could not be told apart by name: evaluate_export refuses such an export.
    return unique_class_names(class_names)


def _class_name(name, argument):
    """One class name as a str: bytes (e.g. names read from a tf.data pipeline, or numpy `bytes_`) decoded as UTF-8.

    `str(b"cat")` is `"b'cat'"`, which would be written to labels.txt and returned in every prediction.
    """
    if not isinstance(name, bytes):  # np.bytes_ is a bytes
        return str(name)
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"Class names given as bytes are decoded as UTF-8 (labels.txt and the served class names are UTF-8), "
            f"and this one is not UTF-8: decode it yourself and pass str names. Received: {name!r} in {argument}"
        ) from error


def _check_metadata(metadata):
    """Raises unless `metadata` is None or a dict whose keys are not tfxfer's own (`RESERVED_METADATA_KEYS`).

    They are written last, so a key of tfxfer's would silently replace what the readers rely on (a `head` of
    the caller's would make a multi-label export evaluate as a multiclass one).
    """
    if metadata is None:
        return
    if not isinstance(metadata, Mapping):
        raise ConfigError("metadata must be a dict of extra facts, e.g. {'metrics': {...}}. "
                          f"Received: metadata of type {type(metadata).__name__}")
    reserved = sorted(set(metadata) & set(RESERVED_METADATA_KEYS), key=str)
    if reserved:
        raise ConfigError(
            f"metadata sets keys that tfxfer writes itself and reads back (evaluate_export, prediction): "
            f"{reserved}. Rename them, or nest them under a key of your own (e.g. {{'notes': {{...}}}}); "
            f"tfxfer's keys are {list(RESERVED_METADATA_KEYS)}. Received: metadata with keys {list(metadata)}")


def _labels_table(folder, head):
    """A class id -> name table read from the head's labels file, written to `folder` (the local disk).

    A table initialised from a file makes TF copy it into the version's assets/ (under the same
    name) and makes the serving graph read class names from there.
    """
    path = os.path.join(folder, LABELS_FILE if head.task is None else layout.task_labels_file(head.task))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(head.class_names) + "\n")
    return tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            path, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
            tf.string, tf.lookup.TextFileIndex.WHOLE_LINE),
        default_value="")


def _head_metadata(export_heads):
    """The metadata entries of the heads: `head` and `class_names`, or a multi-task model's `tasks`."""
    if export_heads[0].task is None:
        return {"head": export_heads[0].kind.value, "class_names": export_heads[0].class_names}
    return {"tasks": {head.task: {"head": head.kind.value, "class_names": head.class_names}
                      for head in export_heads}}


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


def _write_metadata(version_dir, model, head_metadata, extra):
    # assets.extra/ is where TF Serving looks for extras (e.g. warmup requests).
    folder = os.path.join(version_dir, layout.EXTRA_ASSETS_DIR)
    versioning.make_folders(folder)
    metadata = {
        "model_name": model.name,
        **head_metadata,
        "input_shape": list(model.input_shape[1:]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {"tfxfer": __version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "python": platform.python_version()},
        **(extra or {}),
    }
    with tf.io.gfile.GFile(os.path.join(folder, METADATA_FILE), "w") as f:  # any filesystem, as the version
        # Unsorted: a multi-task model's tasks keep its own order, which clients (predict.py) print in.
        f.write(json.dumps(metadata, indent=2, default=str))
