"""`evaluate_export`: the evaluation report of an exported SavedModel, through what TF Serving runs.

The inputs go through the export's `serving_default` signature as a client
sends them (encoded image bytes, raw texts), so the report measures the
model's decoding, resizing and tokenizing too, not only its weights. The
data's labels are class names, matched to the export's classes by name: the
data may list its classes in another order, or only some of them.

A multi-task export (its metadata lists `tasks`, read by
`tfxfer.prediction.served_tasks`; its signature returns `probabilities_<task>`
per task) gets one report per task (`metrics.multi_task_report`), each on the
examples labelled for that task. Exact copies among the inputs are counted
and logged (`tfxfer.data.exact_copies`): the scores count each copy again.
Given the examples the model was trained on, the inputs that copy one of
them are counted too: the scores count them as unseen.
"""

import json
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer import prediction
from tfxfer.data import exact_copies
from tfxfer.errors import ConfigError, MissingFileError
from tfxfer.evaluation import metrics
from tfxfer.export import layout

_LOG_EVERY = 20  # batches between progress lines
_NAMES_IN_MESSAGE = 20
_NAMES_IN_LOG = 5  # skipped inputs named in the log; the report lists them all


def evaluate_export(
    model_dir: str | prediction.ServingModel,
    examples: Sequence[str] | Sequence[bytes],
    labels: Sequence[str] | Sequence[Sequence[str]] | Mapping[str, Sequence],
    *,
    multi_label: bool | None = None,
    threshold: float = 0.5,
    top_k: int = 5,
    batch_size: int = 32,
    training_examples: Sequence[str] | Sequence[bytes] | None = None,
) -> dict:
    """Runs an export's `serving_default` on labelled examples; returns `classification_report`'s dict.

    Images the signature cannot decode are skipped, not fatal (as the training
    loaders skip them): they are logged with the model's reason and listed in
    the report's `skipped_files`. The report's classes are the export's, in its
    order; classes of the export the data has no example of are listed in
    `classes_without_examples`.

    Args:
        model_dir: str. A version folder, or a model's base folder (its latest version); or
            the export already loaded by `tfxfer.prediction.load_serving_model`.
        examples: For an image export, image file paths (str, read batch by batch through
            `tf.io.gfile`) or encoded images (bytes); for a text export, raw texts (str).
        labels: The class name of each example; for multi-label data, a sequence of class
            names per example (a plain name counts as one). For a multi-task export, a dict
            `{task: labels of every example}` with None (or "") where an example has no label for
            the task (an empty tuple is a multi-label example of none of the classes); tasks left
            out of the dict are left out of the report.
        multi_label: bool | None. Whether the model predicts several classes per example;
            None reads it from the export's metadata (its head). A multi-task export's
            metadata says it per task, and this must be None.
        threshold: float. Multi-label only: the probability above which a class is predicted.
        top_k: int. Single-label only: k of `top_k_accuracy`.
        batch_size: int. Examples per call of the signature.
        training_examples: The examples the model was trained on, as `examples` are given
            (image paths or bytes, or texts), or None. Evaluated inputs that are exact copies
            of one of them are counted and logged as a warning.

    Returns:
        The report of `tfxfer.evaluation.metrics.classification_report` (multi-task exports:
        `multi_task_report`), plus `model_dir` (the version folder evaluated),
        `skipped_files` (inputs the model refused) and `exact_copies`, the counts of
        `tfxfer.data.exact_copies.report_copies` among the inputs (each copy is scored
        again; copies with different labels are logged as a warning), with
        `training_examples` also `copies_of_training` (inputs that copy a training example).

    Raises:
        ConfigError: a class name in `labels` the model does not know (naming it), a label that is
            not a class name (e.g. a class id: labels are names, as the export's labels.txt lists
            them), `examples`, `labels` or `training_examples` a single str rather than a list, no
            examples, examples and labels of different lengths, inputs of the wrong kind, or no
            input the model could read.
        MissingFileError: an image path in `examples` or `training_examples` that is not a file (it
            does not exist, or is a folder: pass its image files, one per label); checked before
            the model runs.

    Example:

    ```python
    report = evaluate_export("saved_models/flowers", ["val/rose/1.jpg", "val/tulip/7.jpg"], ["rose", "tulip"])
    report = evaluate_export("saved_models/pets", ["a.jpg", "b.jpg"],
                             {"species": ["cat", "dog"], "grade": ["high", None]})  # b.jpg has no grade
    print(report["tasks"]["grade"]["num_examples"], report["tasks"]["grade"]["missing_labels"])  # 1 1
    ```
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    prediction.refuse_single_string(examples, "examples", "examples", "example")
    prediction.refuse_single_string(labels, "labels", "labels (class names)", "label")
    if training_examples is not None:
        prediction.refuse_single_string(training_examples, "training_examples", "examples", "example")
        training_examples = list(training_examples)
    examples = list(examples)
    model = model_dir if isinstance(model_dir, prediction.ServingModel) else prediction.load_serving_model(model_dir)
    if model.tasks:
        return _evaluate_tasks(model, examples, labels, multi_label=multi_label, threshold=threshold,
                               top_k=top_k, batch_size=batch_size, training_examples=training_examples)
    labels = list(labels)
    if not examples or len(examples) != len(labels):
        raise ConfigError("Pass one label per example, and at least one example. "
                          f"Received: {len(examples)} examples, {len(labels)} labels")
    if multi_label is None:
        multi_label = _head(model.version_dir) == metrics.MULTILABEL
    _check_scoring([multi_label], threshold, top_k)
    targets = _encode_labels(labels, model.class_names, multi_label, model.version_dir)
    _check_examples(model, examples)
    training = _training_keys(model, training_examples, batch_size)
    logging.info("Evaluating %s on %d %ss in batches of %d.", model.version_dir, len(examples), model.kind, batch_size)
    probabilities, kept, reasons, keys = _serve(model, examples, batch_size)
    skipped = _check_read(examples, kept, reasons)
    report = metrics.classification_report(
        targets[kept], probabilities, model.class_names, multi_label=multi_label, threshold=threshold,
        top_k=top_k)
    return {**report, "model_dir": model.version_dir, "skipped_files": skipped,
            "exact_copies": _report_copies(model, examples, keys, targets, training)}


def _evaluate_tasks(model, examples, labels, *, multi_label, threshold, top_k, batch_size, training_examples):
    """`evaluate_export` of a multi-task export: one report per task of `labels`."""
    if multi_label is not None:
        raise ConfigError("A multi-task export says per task whether it is multi-label (its metadata): leave "
                          f"multi_label at None. Received: multi_label={multi_label!r}")
    tasks = {task: model.tasks[task] for task in _labelled_tasks(model, examples, labels)}
    _check_scoring([served.multi_label for served in tasks.values()], threshold, top_k)
    targets = {}
    for task, served in tasks.items():
        try:
            targets[task] = _encode_task_labels(labels[task], served.class_names, served.multi_label,
                                                model.version_dir)
        except ConfigError as error:
            raise ConfigError(f"Task {task!r}: {error}") from error
    _check_examples(model, examples)
    training = _training_keys(model, training_examples, batch_size)
    logging.info("Evaluating %s (tasks %s) on %d %ss in batches of %d.", model.version_dir, ", ".join(tasks),
                 len(examples), model.kind, batch_size)
    probabilities, kept, reasons, keys = _serve(model, examples, batch_size)
    skipped = _check_read(examples, kept, reasons)
    report = metrics.multi_task_report(
        {task: targets[task][kept] for task in tasks}, {task: probabilities[task] for task in tasks},
        {task: served.class_names for task, served in tasks.items()},
        {task: served.multi_label for task, served in tasks.items()},
        threshold=threshold, top_k=top_k)
    return {**report, "model_dir": model.version_dir, "skipped_files": skipped,
            "exact_copies": _report_copies(model, examples, keys, targets, training)}


def _check_scoring(multi_label, threshold, top_k):
    """The checks `metrics` makes of `threshold` (multi-label scores) and `top_k` (single-label ones), made before
    the model runs rather than after the whole evaluation. multi_label: list of bool, of the tasks scored."""
    if any(multi_label) and not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be a probability in [0, 1]. Received: threshold={threshold!r}")
    if not all(multi_label) and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ConfigError(f"top_k must be a positive integer. Received: top_k={top_k!r}")


def _labelled_tasks(model, examples, labels):
    """The export's tasks that `labels` (a dict of the tasks' labels per example) labels, in the export's order."""
    if not isinstance(labels, Mapping):
        raise ConfigError(f"The model at {model.version_dir!r} has several tasks ({', '.join(model.tasks)}): "
                          "pass labels as a dict {task: one label per example, None where it has none}. "
                          f"Received: labels of {type(labels).__name__}")
    unknown = sorted(set(labels) - set(model.tasks))
    if unknown or not labels:
        raise ConfigError(f"Label tasks the model at {model.version_dir!r} has: {list(model.tasks)}. "
                          f"Received: {'unknown tasks ' + str(unknown) if unknown else 'no task'}")
    lengths = {task: len(values) for task, values in labels.items()}
    if not examples or any(length != len(examples) for length in lengths.values()):
        raise ConfigError("Pass one label (or None) per example for each task, and at least one example. "
                          f"Received: {len(examples)} examples, labels per task {lengths}")
    tasks = [task for task in model.tasks if task in labels]
    if len(tasks) < len(model.tasks):
        logging.info("No labels of task(s) %s: left out of the report.",
                     ", ".join(task for task in model.tasks if task not in labels))
    return tasks


def _encode_task_labels(labels, class_names, multi_label, version_dir):
    """One task's `_encode_labels`, with `MISSING_LABEL` (a row of it, multi-label) where the label is None or ""."""
    labels = list(labels)
    present = [i for i, label in enumerate(labels) if not _is_missing(label)]
    shape = (len(labels), len(class_names)) if multi_label else (len(labels),)
    encoded = np.full(shape, metrics.MISSING_LABEL, np.int64)
    if present:
        encoded[present] = _encode_labels([labels[i] for i in present], class_names, multi_label, version_dir)
    return encoded


def _is_missing(label):
    # An empty tuple is a label: a multi-label example of none of the classes, as for a one-head export.
    return label is None or (isinstance(label, str) and not label.strip())


def _serve(model, examples, batch_size):
    """(probabilities of the inputs the model read, their indices, {name of a refused input: reason},
    every input's content key for `exact_copies`).

    The probabilities are an array, or for a multi-task export a dict of arrays per task.
    """
    rows, kept, reasons, keys = [], [], {}, []
    for number, start in enumerate(range(0, len(examples), batch_size), start=1):
        batch = examples[start:start + batch_size]
        inputs = _inputs(model, batch)
        keys += _content_keys(model, inputs)  # keyed here, where each image's bytes are read anyway
        probabilities, refused = prediction.serving_probabilities(model, inputs)
        rows.append(probabilities)
        kept += [start + i for i in range(len(batch)) if i not in refused]
        reasons.update({_name(batch[i], start + i): reason for i, reason in refused.items()})
        if number % _LOG_EVERY == 0:
            logging.info("Evaluated %d of %d examples.", min(start + batch_size, len(examples)), len(examples))
    return prediction.concatenate_probabilities(rows, model), kept, reasons, keys


def _content_keys(model, inputs):
    """Each input's key for `exact_copies`: a text itself, or a fingerprint of an image's bytes."""
    if model.kind == prediction.TEXT:
        return list(inputs)
    return exact_copies.fingerprint(tf.constant(inputs)).numpy().tolist()


def _training_keys(model, training_examples, batch_size):
    """`(content keys, names)` of the training examples, read batch by batch as the evaluated inputs are;
    None without them.

    Called before the evaluation runs, so that an unreadable training file fails before the model does.
    """
    if training_examples is None:
        return None
    _check_examples(model, training_examples, argument="training_examples")
    logging.info("Reading %d training %ss to find their copies among the evaluated ones.", len(training_examples),
                 model.kind)
    keys = []
    for start in range(0, len(training_examples), batch_size):
        keys += _content_keys(model, _inputs(model, training_examples[start:start + batch_size]))
    return keys, [_name(example, index, "training example") for index, example in enumerate(training_examples)]


def _report_copies(model, examples, keys, targets, training):
    """`exact_copies.report_copies`' counts of the evaluated inputs (every one, read or refused), logged;
    with `training` (`_training_keys`), also how many inputs copy a training example."""
    what, name_of = f"{model.kind}s", lambda index: _name(examples[index], index)
    counts = exact_copies.report_copies(keys, targets, name_of, what=what, source="the evaluation data",
                                        purpose="evaluation")
    if training is not None:
        counts["copies_of_training"] = exact_copies.report_copies_of_training(
            *training, keys, name_of, what=what, source="the training data", purpose="evaluation")
    return counts


def _check_read(examples, kept, reasons):
    """The names of the refused inputs (logged); a ConfigError when the model read none."""
    skipped = list(reasons)
    if skipped:
        logging.warning("Skipped %d of %d inputs the model cannot read (listed in the report's skipped_files), "
                        "e.g. %s", len(skipped), len(examples),
                        "; ".join(f"{name} ({reasons[name]})" for name in skipped[:_NAMES_IN_LOG]))
    if not kept:
        raise ConfigError(f"The model could read none of the {len(examples)} inputs; expected JPEG/PNG/GIF/BMP "
                          f"images. Received: e.g. {skipped[:3]} ({reasons[skipped[0]]})")
    return skipped


def _encode_labels(labels, class_names, multi_label, version_dir):
    """Class ids `(N,)`, or multi-hot `(N, C)`, in the export's class order; unknown names are an error."""
    index = {name: i for i, name in enumerate(class_names)}
    names = [_label_names(label, position, class_names, version_dir) for position, label in enumerate(labels)]
    unknown = sorted({name for label in names for name in label} - set(index))
    if unknown:
        # A multi-label export's labels read without the separator arrive as one name per cell: "pos|x".
        unsplit = multi_label and any(isinstance(label, str) for label in labels)
        hint = (" This model is multi-label: if a cell holds several class names, read the data with its "
                "label_separator (evaluate.py's --label_separator), e.g. '|'." if unsplit else "")
        raise ConfigError(
            f"The evaluation data has classes the model does not know; the model at {version_dir!r} predicts "
            f"{_listed(class_names)}. Evaluate on data of these classes only (remove or rename the others).{hint} "
            f"Received: unknown classes {_listed(unknown)}")
    if multi_label:
        multi_hot = np.zeros((len(names), len(class_names)), np.int64)
        for row, label in enumerate(names):
            multi_hot[row, [index[name] for name in label]] = 1
        return multi_hot
    several = [label for label in names if len(label) != 1]
    if several:
        raise ConfigError(f"The model at {version_dir!r} predicts one class per example, but some examples carry "
                          f"{len(several[0])} classes; evaluate a multi-label model on multi-label data. "
                          f"Received: e.g. {list(several[0])}")
    return np.asarray([index[label[0]] for label in names], np.int64)


def _label_names(label, position, class_names, version_dir):
    """The class names of one label as a tuple (a plain name is one); a ConfigError for anything but names.

    Labels are names, never class ids: the data may list its classes in another order than the export.
    """
    names = (label,) if isinstance(label, str) else tuple(label) if isinstance(label, Iterable) else None
    if names is None or not all(isinstance(name, str) for name in names):
        raise ConfigError(
            f"Labels are class names (str), as the export's labels.txt lists them, not class ids or other values; "
            f"the model at {version_dir!r} predicts {_listed(class_names)}. Pass each example's class name (for "
            f"class ids, e.g. [class_names[i] for i in ids], with the model's class_names), or a list of names per "
            f"example for multi-label data. Received: labels[{position}]={label!r}")
    return names


def _check_examples(model, examples, argument="examples"):
    """Raises unless `examples` are inputs of the model's kind and, for image paths, files that exist."""
    _check_kind(model, examples, argument)
    if model.kind == prediction.IMAGE:
        _check_image_files(examples, argument)


def _check_image_files(examples, argument):
    """A MissingFileError naming the image paths that are not files, found before the model runs: a
    mistyped path must not cost the batches before it, and a folder has no one label."""
    paths = [example for example in examples if isinstance(example, str)]
    kinds = {path: _path_kind(path) for path in dict.fromkeys(paths)}
    folders = [path for path, kind in kinds.items() if kind == "folder"]
    if folders:
        raise MissingFileError(
            f"{argument} holds {len(folders)} folder(s), but evaluate_export takes one image file per label. Pass "
            "the image files (tfxfer.evaluation.labelled_data.read_labelled_data(folder, 'image') reads a folder of "
            f"class folders with their labels). Received: e.g. {argument}[{examples.index(folders[0])}]={folders[0]!r}")
    missing = [path for path, kind in kinds.items() if kind is None]
    if missing:
        raise MissingFileError(
            f"{len(missing)} image file(s) of {argument} do not exist. Check the paths (relative ones are read from "
            f"{os.getcwd()!r}), or leave those examples out. "
            f"Received: e.g. {argument}[{examples.index(missing[0])}]={missing[0]!r}")


def _path_kind(path):
    """"file", "folder" or None (nothing there): one stat per path, as each costs a request on gs://."""
    try:
        return "folder" if tf.io.gfile.stat(path).is_directory else "file"
    except tf.errors.NotFoundError:
        return None


def _check_kind(model, examples, argument="examples"):
    wanted = str if model.kind == prediction.TEXT else (str, bytes)
    wrong = next((example for example in examples if not isinstance(example, wanted)), None)
    if wrong is not None:
        expected = "texts (str)" if model.kind == prediction.TEXT else "image file paths (str) or image bytes"
        raise ConfigError(f"The model at {model.version_dir!r} takes {model.kind}s: pass {expected} as "
                          f"{argument}. Received: a {type(wrong).__name__}")


def _inputs(model, batch):
    """What the signature takes: file contents for image paths, everything else as it is."""
    if model.kind == prediction.TEXT:
        return batch
    return [prediction.read_files([item])[0] if isinstance(item, str) else item for item in batch]


def _head(version_dir):
    """A one-head export's head kind from its metadata ("multiclass", "binary", "multilabel"), or None without it."""
    path = os.path.join(version_dir, prediction.METADATA_ASSET)
    if not tf.io.gfile.exists(path):
        logging.warning("No %s in %s: evaluating it as a single-label model (pass multi_label to say otherwise).",
                        layout.METADATA_FILE, version_dir)
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        return json.loads(f.read()).get("head")


def _name(example, index, called="example"):
    return example if isinstance(example, str) else f"{called} {index}"


def _listed(names):
    shown = ", ".join(repr(name) for name in names[:_NAMES_IN_MESSAGE])
    return f"[{shown}{', ...' if len(names) > _NAMES_IN_MESSAGE else ''}] ({len(names)})"
