"""Labelled raw examples to evaluate an export on: image folders, or texts in CSV/TSV files and folders.

Raw means what a TF Serving client sends: image files (read as bytes batch by
batch, never decoded here) or texts. The labels are class names, so that
`tfxfer.evaluation.exported_model` can match them to the export's classes by
name, whatever order or subset of classes the data has. The listing rules are
the training loaders': `IMAGE_EXTENSIONS` (any case), hidden files and folders
skipped (`tfxfer.data.layout`); texts go through the training readers
(`tfxfer.data.text_files`, `text_csv`), which skip and count bad texts.
A data folder holding `train/` and `val/` (or `validation/`) is evaluated on
its validation folder; read as the data a model was trained on
(`part="training"`, to find evaluated inputs that copy a training example),
its `train/` folder. A multi-task export is evaluated on a CSV/TSV file with a
label column per task (`read_task_csv`).
"""

import collections
import csv
import dataclasses
import io
import os

import tensorflow as tf
from absl import logging

from tfxfer import prediction
from tfxfer.data import image_csv, layout, task_labels, text_csv, text_data, text_encoding, text_files
from tfxfer.data.constants import IMAGE_EXTENSIONS
from tfxfer.errors import ConfigError, MissingFileError

IMAGE, TEXT = "image", "text"  # as tfxfer.prediction names the input kinds
# What `read_labelled_data` may read, and what its log line calls each.
_PARTS = {"evaluation": "Evaluation", "training": "Training"}


@dataclasses.dataclass
class LabelledExamples:
    """Raw inputs and their true class names.

    Attributes:
        kind: str. `"image"` or `"text"`.
        inputs: list. Image file paths (str) or encoded image bytes; or texts (str).
        labels: list. The class name of each input, or a tuple of names for multi-label data;
            for a multi-task export, a dict `{task: list}` of them, None where an input has no label.
        source: str. Where the examples come from (the folder, file or TFDS split read).
        multi_label: bool. Whether the labels are tuples of class names.
        skipped: dict[str, int]. Examples left out while reading, by reason (texts that
            are not UTF-8 or empty, rows without a label, ...), as the training readers count them.
    """

    kind: str
    inputs: list
    labels: list
    source: str
    multi_label: bool = False
    skipped: dict = dataclasses.field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready facts about the examples, for the evaluation report."""
        summary = {"source": self.source, "kind": self.kind, "num_examples": len(self.inputs),
                   "multi_label": self.multi_label, "skipped": dict(self.skipped)}
        if isinstance(self.labels, dict):  # Multi-task: how many examples each task has a label for.
            summary["labelled"] = {task: sum(label is not None for label in labels)
                                   for task, labels in self.labels.items()}
        return summary


def read_labelled_data(
    path: str,
    kind: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_separator: str | None = None,
    part: str = "evaluation",
) -> LabelledExamples:
    """Reads labelled image folders (`kind="image"`) or texts (`kind="text"`) from `path`.

    Args:
        path: str. Images: a folder of class folders, or of `train/` + `val/` ones.
            Texts: a .csv/.tsv file, a folder of class folders (one text per file;
            or `train/` + `val/` holding them) or a folder of class files (one text per line).
        kind: str. `"image"` or `"text"`: what the model takes.
        text_column: str. CSV/TSV column of the texts.
        label_column: str. CSV/TSV column of the class names.
        label_separator: str | None. Separator of class names in CSV/TSV label cells
            (multi-label data), e.g. `"|"`; None: one class per text.
        part: str. Which folder of a `train/` + `val/` layout is read: `"evaluation"` (its
            `val/`) or `"training"` (its `train/`). Files are read whole either way.

    Returns:
        LabelledExamples.

    Raises:
        MissingFileError: `path` does not exist.
        ConfigError: no examples, or a layout the readers do not understand.

    Example:

    ```python
    data = read_labelled_data("flowers/", "image")   # flowers/val/<class>/*.jpg when there is a val/
    ```
    """
    path = os.fspath(path)
    if part not in _PARTS:
        raise ConfigError(f"part must be one of {list(_PARTS)}. Received: part={part!r}")
    if kind == IMAGE:
        if label_separator is not None:
            raise ConfigError("label_separator is for multi-label texts in a .csv/.tsv file; image folders name "
                              f"one class each. Received: label_separator={label_separator!r}")
        return read_image_folders(path, part)
    if kind == TEXT:
        return read_texts(path, text_column=text_column, label_column=label_column, label_separator=label_separator,
                          part=part)
    raise ConfigError(f"kind must be {IMAGE!r} or {TEXT!r}. Received: kind={kind!r}")


def read_image_folders(data_dir: str, part: str = "evaluation") -> LabelledExamples:
    """Lists the images of `data_dir`'s class folders (of its validation folder if it has one, else of a `test/`
    folder beside its `train/`).

    A class folder without images is a class without examples, not an error:
    evaluation data may hold only some classes. Files of other extensions are left
    out and counted in a warning (`tfxfer.prediction.warn_other_files`).

    Args:
        data_dir: str. A folder of class folders, or of `train/` + `val/` (or `validation/`) ones.
        part: str. `"evaluation"`, or `"training"` to read a `train/` + `val/` layout's `train/`.
    """
    if not tf.io.gfile.isdir(data_dir):
        raise MissingFileError("Expected a folder of class folders of images (or of train/ and val/ folders "
                               f"holding them). Received: {data_dir!r}")
    root = _folder_of(data_dir, part)
    classes = [name for name in layout.visible_names(root) if tf.io.gfile.isdir(os.path.join(root, name))]
    inputs, labels, others = [], [], []
    for name in classes:
        found, other_files = prediction.scan_image_folder(os.path.join(root, name))
        inputs += found
        labels += [name] * len(found)
        others += other_files
    prediction.warn_other_files(others, root)
    if not inputs:
        raise ConfigError(f"Found no images in class folders of {root!r}. Expected {root}/<class>/<image> with "
                          f"names ending in {', '.join(IMAGE_EXTENSIONS)} (any case, not hidden). "
                          f"Received: class folders {classes}")
    logging.info("%s data: %d images in %d class folders of %s.", _PARTS[part], len(inputs), len(classes), root)
    return LabelledExamples(IMAGE, inputs, labels, source=root)


def read_texts(
    path: str, *, text_column: str = "text", label_column: str = "label", label_separator: str | None = None,
    part: str = "evaluation",
) -> LabelledExamples:
    """Reads labelled texts with the training readers (see `read_labelled_data` for the arguments)."""
    source_format = text_data.detect_format(path)
    if label_separator is not None and source_format != "csv":
        raise ConfigError("label_separator applies to .csv/.tsv data only (several class names in one label "
                          f"cell). Received: label_separator={label_separator!r} for {source_format} data in {path!r}")
    source = path
    if source_format == "csv":
        texts = text_csv.read_text_csv(path, text_column=text_column, label_column=label_column,
                                       label_separator=label_separator)
    elif source_format == "class_folders":
        source = _folder_of(path, part)
        texts = text_files.read_class_folders(source)
    else:
        texts = text_files.read_line_files(path)
    if not texts.texts:
        images = prediction.scan_image_folder(source)[0] if source_format == "class_folders" else []
        if images:  # read as texts, every image is "undecodable", which hides the real mistake
            raise ConfigError(f"The model takes texts, but the class folders of {source!r} hold images: evaluate an "
                              f"image model on them, or pass labelled texts. Received: {len(images)} images, e.g. "
                              f"{images[0]!r}")
        raise ConfigError(f"No usable text with a label in {path!r}. Received: skipped {dict(texts.skipped)}")
    logging.info("%s data: %d texts from %s (%s).", _PARTS[part], len(texts.texts), source, source_format)
    return LabelledExamples(TEXT, list(texts.texts), list(texts.labels), source=source,
                            multi_label=label_separator is not None,
                            skipped={reason: int(count) for reason, count in texts.skipped.items()})


def _folder_of(data_dir, part):
    """Where `data_dir`'s class folders are: its training folder (`train/`) if it has one, and for evaluation
    its validation folder when it has both, else its test folder (`tfxfer.data.layout`'s names)."""
    train, validation = layout.train_and_validation_folders(data_dir)
    if part == "training":
        return train
    held_out = validation or layout.test_folder(data_dir)
    if held_out is not None:
        logging.info("%r holds %s/ and %s/: evaluating on %s.", data_dir, os.path.basename(train),
                     os.path.basename(held_out), held_out)
        return held_out
    if train != data_dir:
        logging.warning("%r holds %s/ but no %s folder: evaluating on the training data %s, which says little "
                        "about new data.", data_dir, os.path.basename(train),
                        layout.split_folder_spellings("validation"), train)
    return train


def read_task_csv(
    path: str,
    kind: str,
    tasks: dict[str, bool],
    *,
    input_column: str,
    label_separator: str | None = None,
    part: str = "evaluation",
) -> LabelledExamples:
    """Reads a CSV/TSV file of inputs with a label column per task, to evaluate a multi-task export on.

    A column labels the task `tfxfer.data.task_labels.task_name(header)` names. An empty label cell means no
    label for that task (None in the labels; so does a multi-label cell of separators only);
    a row without any label, without its input, or with more cells than the header is
    skipped and counted (`"no_label"`, `"empty"`, `"malformed"`; `"undecodable"` for an
    input that is not UTF-8; `"missing_file"` for an image path with no file there, as the
    training loader skips it).
    Image inputs are file paths, relative to the CSV's folder unless absolute or URLs.

    Args:
        path: str. The .csv (or .tsv, tab-separated) file, with a header row.
        kind: str. `"image"` or `"text"`: what the model takes.
        tasks: dict `{task: multi_label}`. The export's tasks; tasks without a column are not read.
        input_column: str. Header of the column of texts or image paths.
        label_separator: str | None. Separator of class names in a multi-label task's cells, e.g.
            `"|"`; None: each cell is one class name.
        part: str. `"evaluation"`: the export's tasks without a column are named in a warning, as tasks
            left unscored; `"training"`: the data the model was trained on, read for its inputs.

    Returns:
        LabelledExamples with `labels` a dict `{task: [label or None per input]}`.

    Raises:
        MissingFileError: `path` is not a file.
        ConfigError: no input column, no label column of any task, two columns of one task, or no
            labelled example.

    Example:

    ```python
    data = read_task_csv("pets.csv", "image", {"species": False, "tags": True}, input_column="image",
                         label_separator="|")
    ```
    """
    path = os.fspath(path)
    if part not in _PARTS:
        raise ConfigError(f"part must be one of {list(_PARTS)}. Received: part={part!r}")
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise MissingFileError(f"Expected a .csv/.tsv file with an input column and a label column per task. "
                               f"Received: {path!r}")
    content = text_files.read_bytes(path)
    text_encoding.check_not_utf16(path, content[:4])
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    # surrogateescape keeps bytes that are not UTF-8, so one bad row is found and skipped, not the file.
    rows = csv.reader(io.StringIO(content.decode("utf-8-sig", errors="surrogateescape"), newline=""),
                      delimiter=delimiter)
    header = text_csv.read_header(path, rows, [input_column, *tasks], delimiter, kind)
    if input_column not in header:
        raise ConfigError(f"{os.path.basename(path)} has no column {input_column!r} of {kind}s; its columns are "
                          f"{header}. Name it with --{kind}_column. Received: {input_column!r}")
    columns = _task_columns(path, header, input_column, tasks)
    unscored = [task for task in tasks if task not in columns]
    if unscored and part == "evaluation":
        logging.warning("%s has no label column of the model's task(s) %s: they are not scored (left out of the "
                        "report). To score them, add a column headed by each task's name. Its columns are %s.",
                        os.path.basename(path), ", ".join(unscored), header)
    inputs, labels, skipped = [], {task: [] for task in columns}, collections.Counter()
    for row in rows:
        if row:  # Trailing empty cells may be left out of a row: they are labels it has not.
            row = row + [""] * (len(header) - len(row))
        reason = _bad_row(row, header, input_column, columns)
        if reason:
            skipped[reason] += 1
            continue
        inputs.append(_input(row[header.index(input_column)], kind, path))
        for task, column in columns.items():
            labels[task].append(_task_label(row[column], tasks[task], label_separator))
    missing = image_csv.missing_files(inputs, path, listed_in=None) if kind == IMAGE else []
    if any(missing):  # skipped and counted, as the training loader does
        skipped["missing_file"] = int(sum(missing))
        inputs = [value for value, gone in zip(inputs, missing) if not gone]
        labels = {task: [label for label, gone in zip(column, missing) if not gone] for task, column in labels.items()}
    if not inputs:
        raise ConfigError(f"No usable {kind} with a label in {path!r}. Received: skipped {dict(skipped)}")
    logging.info("%s data: %d %ss from %s, labels of tasks %s.", _PARTS[part], len(inputs), kind, path,
                 ", ".join(columns))
    return LabelledExamples(kind, inputs, labels, source=path, multi_label=any(tasks[task] for task in columns),
                            skipped=dict(skipped))


def _task_columns(path, header, input_column, tasks):
    """`{task: column index}` of the export's tasks the header has a column of, in the export's task order."""
    found = {}
    for index, column in enumerate(header):
        name = task_labels.task_name(column)
        if column == input_column or name not in tasks:
            continue
        if name in found:
            raise ConfigError(f"Two columns of {os.path.basename(path)} label task {name!r}: "
                              f"{header[found[name]]!r} and {column!r}. Rename one. Received: columns {header}")
        found[name] = index
    if not found:
        raise ConfigError(f"{os.path.basename(path)} has no label column of the model's tasks {list(tasks)}: add a "
                          f"column per task, headed by the task's name (a column labels the task of its header "
                          f"lower-cased, other characters than a-z, 0-9 and _ made _: 'Skin Type' labels skin_type). "
                          f"Received: columns {header}")
    return {task: found[task] for task in tasks if task in found}


def _bad_row(row, header, input_column, columns):
    """Why a CSV row is skipped, or None for a usable one."""
    if not row:
        return "empty"
    if any(row[len(header):]):
        return "malformed"
    value = row[header.index(input_column)]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # Lone surrogates: the cell's bytes were not UTF-8.
        return "undecodable"
    if not value.strip():
        return "empty"
    if not any(row[column].strip() for column in columns.values()):
        return "no_label"
    return None


def _input(value, kind, path):
    if kind == TEXT or "://" in value or os.path.isabs(value):
        return value
    return os.path.join(os.path.dirname(path), value)


def _task_label(cell, multi_label, label_separator):
    """A cell's class name, or tuple of names for a multi-label task; None when it names none (no label)."""
    label, _ = task_labels.read_cell(cell, label_separator if multi_label else None)
    return (label,) if multi_label and isinstance(label, str) else label
