"""`load_image_csv`: multi-task image data from a CSV/TSV listing image files and their labels.

One row per image: a column of file paths (relative to the CSV's folder, or
absolute) and one label column per task, any of whose cells may be empty (the
image has no label for that task). Labels become dicts `{task: labels}` as
`tfxfer.data.task_labels` says, so the result trains a multi-task classifier
(`build_image_classifier(..., tasks=data.tasks)`).

Images are decoded once, in parallel, with the decoder of `load_image_folders`
and of the serving graph (`image_ops.decode_and_resize_uint8`), and kept in
memory as uint8: this loader is for data sets whose decoded images fit in
memory (examples x height x width x 3 bytes, under 2 GB: tf.data holds them
as one constant; about 14,000 images of 224x224). A file that is missing or cannot
be decoded costs only its row: it is left out, counted and logged.
"""

import csv
import io
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import (
    exact_copies,
    image_ops,
    pipeline,
    skip_log,
    splits,
    task_labels,
    text_csv,
    text_encoding,
    text_files,
)
from tfxfer.data.image_folders import decode_parallelism, warn_skipped
from tfxfer.data.loader_args import check_loader_args
from tfxfer.defaults import ImageDefaults
from tfxfer.errors import ConfigError, MissingFileError

# How many paths a warning or error shows.
_PATHS_SHOWN = 5
# The most bytes of decoded images: a tf.data constant is serialized in a protocol buffer, capped at 2 GB.
_MAX_IMAGE_BYTES = 2**31 - 1
# Reasons of `ImageDatasets.skipped` listed even when 0.
_SKIP_REASONS = ("no_label", "missing_file", "undecodable")


def load_image_csv(
    csv_path: str | os.PathLike,
    *,
    label_columns: Sequence[str],
    image_size: tuple[int, int],
    image_column: str = "image",
    validation_split: float | None = ImageDefaults.validation_split,
    batch_size: int = 32,
    seed: int = 0,
    label_separator: str | None = None,
    delimiter: str | None = None,
    shuffle_buffer: int | None = None,
) -> pipeline.ImageDatasets:
    """Loads images listed in a CSV/TSV file, with one label column per task.

    Each label column is a task, named after its header lower-cased, other
    characters than `[a-z0-9_]` replaced by `_` (`"Leaf Colour"` ->
    `leaf_colour`); its class names are the sorted names in that column, and it
    needs at least 2. An empty label cell means the image has no label for that
    task: its class id is -1 (`tfxfer.tasks.MISSING_LABEL`), or its
    multi-hot row all -1.0 with `label_separator` (which then applies to every
    label column: `"red|round"`).

    Rows cost only themselves, counted by reason in `skipped` and logged
    (warnings, with where each reason first happened): a row whose label cells
    are all empty (`"no_label"`), whose file does not exist
    (`"missing_file"`) or cannot be decoded (`"undecodable"`: truncated,
    corrupt, or not an image), a blank line (`"empty"`), a row without an image
    path (`"no_image"`) or that does not fit the header (`"malformed"`). The
    missing and undecodable files are listed in `skipped_files`. What would
    lose more stops the load: a missing column (with the delimiter to pass
    when the header looks separated by another), a file with a header but no
    rows, a task with fewer than 2 classes, a class whose images are all
    missing or undecodable.

    Args:
        csv_path: str | os.PathLike. The `.csv` or `.tsv` file, with a header row.
        label_columns: Sequence[str]. Headers of the label columns, one task
            each, e.g. `["species", "grade"]` (a list even for one column).
        image_size: tuple[int, int]. (height, width) every image is resized to.
        image_column: str. Header of the column of image file paths; relative
            paths are relative to the CSV's folder.
        validation_split: float | None. Share of the images held out for
            validation, seeded and stratified so every class of every task
            keeps training images (`tfxfer.data.splits.split_for_tasks`), with
            exact copies (rows of one file, or of identical files) on one
            side; None keeps all for training. Default
            `tfxfer.defaults.ImageDefaults.validation_split` (0.2), the image
            recipe's.
        batch_size: int. Examples per batch.
        seed: int. Seeds the split and the per-epoch shuffle.
        label_separator: str | None. Separator of class names in label cells,
            e.g. `"|"`, for multi-label tasks; None: one class per cell.
        delimiter: str | None. Field separator; `"\\t"` for `.tsv`, `","`
            otherwise if None.
        shuffle_buffer: int | None. Shuffle window in examples; None: the
            whole training set.

    Returns:
        A `tfxfer.data.ImageDatasets` whose batches are `(float32 images
        (B, H, W, 3) in [0, 255], {task: labels})`, labels int64 `(B,)` or
        float32 multi-hot `(B, C)`; with `tasks`, and `class_names` and
        `train_class_counts` (labelled training images per class) per task.

    Raises:
        MissingFileError: `csv_path` does not exist.
        ConfigError: `csv_path` is a folder or not .csv/.tsv, a column is
            missing, it has a header but no rows, two label columns give one
            task name, a task has fewer than 2 classes, a class has no usable
            image, or invalid arguments.

    Example:

    ```python
    data = tfxfer.load_image_csv("leaves/labels.csv", label_columns=["species", "disease"], image_size=(320, 320))
    model = tfxfer.build_image_classifier("efficientnet_v2_b0", tasks=data.tasks)
    ```
    """
    check_loader_args(image_size=image_size, batch_size=batch_size, validation_split=validation_split,
                      shuffle_buffer=shuffle_buffer)
    _check_separator(label_separator)
    image_size = (int(image_size[0]), int(image_size[1]))
    csv_path = os.fspath(csv_path)
    columns = task_labels.task_columns(label_columns)
    multi_label = label_separator is not None
    rows = _read_rows(csv_path, image_column, columns, label_separator, delimiter)
    skip_log.log_losses(csv_path, rows.skipped, first_at=rows.first_at)
    task_labels.warn_if_separator_splits_nothing(rows.labels, label_separator, csv_path)
    class_names = task_labels.class_names(rows.labels, columns, multi_label)
    task_labels.check_class_names(class_names, columns, csv_path, "images", note=f" (skipped: {dict(rows.skipped)})")
    _check_fits_in_memory(len(rows.paths), image_size, csv_path)

    missing = missing_files(rows.paths, csv_path)
    images, decodable, fingerprints = _decode(rows.paths, missing, image_size)
    undecodable = sorted({path for path, ok, gone in zip(rows.paths, decodable, missing) if not ok and not gone})
    warn_skipped(undecodable, len(set(rows.paths)))
    rows.skipped["missing_file"] += int(missing.sum())
    rows.skipped["undecodable"] += int((~decodable & ~missing).sum())

    kept = np.flatnonzero(decodable)
    labels = task_labels.encode([rows.labels[i] for i in kept], class_names, multi_label)
    _check_classes_kept(labels, class_names, columns, csv_path)
    # Copies of the images only where rows are dropped or split: the decoded images are most of the memory.
    images = images if len(kept) == len(images) else images[kept]
    train_idx, val_idx = np.arange(len(kept)), None
    keys = fingerprints[kept]
    copies = exact_copies.report_copies(keys, labels, [rows.paths[i] for i in kept], what="images", source=csv_path)
    if validation_split is not None:
        train_idx, val_idx = splits.split_for_tasks(task_labels.membership(labels, class_names), validation_split,
                                                    seed, what="images", copies=keys)
        task_labels.warn_tasks_unlabelled_in_validation(task_labels.take(labels, val_idx), columns, csv_path,
                                                        "images")
    else:
        splits.warn_no_validation(csv_path)
    train_labels = task_labels.take(labels, train_idx)
    train_images = images if val_idx is None else images[train_idx]
    datasets = pipeline.ImageDatasets(
        train=_batches(train_images, train_labels, batch_size, seed, shuffle_buffer or len(train_idx)),
        validation=None if val_idx is None else _batches(
            images[val_idx], task_labels.take(labels, val_idx), batch_size, seed, None),
        class_names=class_names,
        train_size=len(train_idx),
        validation_size=0 if val_idx is None else len(val_idx),
        train_class_counts=task_labels.class_counts(train_labels, class_names),
        skipped_files=sorted({path for path, ok in zip(rows.paths, decodable) if not ok}),
        decoded_cache="memory",
        tasks=task_labels.make_tasks(class_names, multi_label),
        skipped={**{reason: 0 for reason in _SKIP_REASONS},
                 **{reason: int(count) for reason, count in rows.skipped.items() if count}},
        exact_copies=copies,
    )
    pipeline.log_summary(datasets, source=csv_path, batch_size=batch_size)
    return datasets


class _Rows:
    """The usable rows of the CSV: resolved image paths and label dicts, kept in step, and rows skipped by reason."""

    def __init__(self):
        self.paths: list[str] = []
        self.labels: list[dict] = []
        self.skipped: dict[str, int] = {reason: 0 for reason in _SKIP_REASONS}
        self.first_at: dict[str, str] = {}  # Where each reason of `skipped` first happened, for the log.

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.first_at.setdefault(reason, where)


def _check_separator(label_separator) -> None:
    if label_separator is not None and (not isinstance(label_separator, str) or not label_separator):
        raise ConfigError("label_separator must be None or a non-empty string, e.g. '|'. "
                          f"Received: label_separator={label_separator!r}")


def _read_rows(csv_path: str, image_column: str, columns: dict[str, str], label_separator: str | None,
               delimiter: str | None) -> _Rows:
    """Reads the image paths and label dicts of `csv_path`, counting the rows left out."""
    text = _read_csv_text(csv_path)
    if delimiter is None:
        delimiter = "\t" if csv_path.lower().endswith(".tsv") else ","
    folder = os.path.dirname(csv_path)
    rows = _Rows()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = text_csv.read_header(csv_path, reader, [image_column, *columns.values()], delimiter, "image")
    image_index = text_csv.column_index(csv_path, header, image_column, "image_column", delimiter, "delimiter")
    label_indices = {task: text_csv.column_index(csv_path, header, column, "label_columns", delimiter, "delimiter")
                     for task, column in columns.items()}
    last = max(image_index, *label_indices.values())
    count = 0
    for row in reader:
        count += bool(row)
        where = f"line {reader.line_num}"
        if not row:
            rows.skip("empty", where)
        elif any(row[len(header):]) or len(row) <= last:
            rows.skip("malformed", where)
        elif not row[image_index].strip():
            rows.skip("no_image", where)
        else:
            labels = {task: task_labels.read_cell(row[index], label_separator)[0]
                      for task, index in label_indices.items()}
            if all(label is None for label in labels.values()):
                rows.skip("no_label", where)
                continue
            rows.paths.append(_resolve(folder, row[image_index].strip()))
            rows.labels.append(labels)
    text_csv.check_has_rows(csv_path, header, count, "image")
    return rows


def _check_fits_in_memory(count: int, image_size: tuple[int, int], csv_path: str) -> None:
    """Raises a ConfigError, before decoding, for more decoded images than one tf.data constant holds."""
    size = count * pipeline.uint8_image_bytes(image_size)
    if size > _MAX_IMAGE_BYTES:
        raise ConfigError(
            f"load_image_csv keeps the decoded images in memory, at most 2 GB; {count} images of {image_size} take "
            f"{size / 2**30:.1f} GB. Use a smaller image_size, fewer rows, or class folders with "
            f"load_image_folders (which caches to files). Received: {count} rows in {csv_path}")


def _read_csv_text(csv_path: str) -> str:
    """The CSV's text, through `tf.io.gfile` (so `gs://` works); errors for what is not a UTF-8 CSV/TSV file."""
    if not tf.io.gfile.exists(csv_path):
        raise MissingFileError(f"No CSV/TSV file at this path. Pass the .csv or .tsv file that lists the images and "
                               f"their labels. Received: csv_path={csv_path!r}")
    if tf.io.gfile.isdir(csv_path) or not csv_path.lower().endswith(text_csv.CSV_EXTENSIONS):
        raise ConfigError(
            "load_image_csv reads a .csv or .tsv file listing image paths and label columns; for a folder of "
            f"class folders use load_image_folders. Received: csv_path={csv_path!r}")
    return text_encoding.decode_utf8(csv_path, text_files.read_bytes(csv_path))


def _resolve(folder: str, path: str) -> str:
    """`path` relative to the CSV's folder, unless absolute (a local path or a URL such as `gs://...`)."""
    if os.path.isabs(path) or "://" in path:
        return path
    return os.path.join(folder, path)


def missing_files(paths: list[str], csv_path: str, listed_in: str | None = "ImageDatasets.skipped_files"
                  ) -> np.ndarray:
    """bool per row of `csv_path`: its image file (at `paths`) does not exist. Logs them, with the folder
    relative paths are read from, and `listed_in`, where the caller lists them all (None: nowhere)."""
    exists = {path: tf.io.gfile.exists(path) for path in dict.fromkeys(paths)}
    missing = np.asarray([not exists[path] for path in paths], bool)
    if missing.any():
        gone = [path for path, found in exists.items() if not found]
        logging.warning(
            "Skipping %d rows of %s whose image file does not exist (relative paths are read from %r), e.g. %s.%s",
            int(missing.sum()), csv_path, os.path.dirname(csv_path) or os.getcwd(), gone[:_PATHS_SHOWN],
            f" The full list is in {listed_in}." if listed_in else "")
    return missing


def _decode(paths: list[str], missing: np.ndarray, image_size: tuple[int, int]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decodes every existing file once, in parallel.

    The failures are dropped by `ignore_errors`: the rows that do not come out
    of the pass are the undecodable files (as in `load_image_folders`).

    Returns:
        (uint8 images `(N, H, W, 3)`, bool `(N,)` decoded, int64 `(N,)`
        fingerprints of the files' bytes, to find exact copies).
    """
    images = np.zeros((len(paths), *image_size, 3), np.uint8)
    decoded = np.zeros(len(paths), bool)
    fingerprints = np.zeros(len(paths), np.int64)
    positions = np.flatnonzero(~missing).astype(np.int64)
    if not len(positions):
        return images, decoded, fingerprints

    def decode(position, path):
        contents = tf.io.read_file(path)
        return position, image_ops.decode_and_resize_uint8(contents, image_size), exact_copies.fingerprint(contents)

    examples = (
        tf.data.Dataset.from_tensor_slices((positions, [paths[i] for i in positions]))
        .map(decode, num_parallel_calls=decode_parallelism(), deterministic=True)
        .ignore_errors()
        .batch(pipeline.chunk_size(image_size))
    )
    for chunk_positions, chunk_images, chunk_fingerprints in examples.as_numpy_iterator():
        images[chunk_positions] = chunk_images
        decoded[chunk_positions] = True
        fingerprints[chunk_positions] = chunk_fingerprints
    return images, decoded, fingerprints


def _check_classes_kept(labels: dict[str, np.ndarray], class_names: dict[str, list[str]], columns: dict[str, str],
                        csv_path: str) -> None:
    """Raises a ConfigError for classes whose images are all missing or undecodable: nothing would teach them."""
    counts = task_labels.class_counts(labels, class_names)
    lost = [f"{names[i]!r} of task {task!r} (column {columns[task]!r})"
            for task, names in class_names.items() for i, count in enumerate(counts[task]) if not count]
    if lost:
        raise ConfigError(
            f"Every class needs at least one usable image, but every image listed for these in {csv_path} is "
            "missing or failed to decode (the warnings above list them). Fix the paths or files, or remove those "
            f"rows. Received: no usable image for {', '.join(lost)}")


def _batches(images: np.ndarray, labels: dict[str, np.ndarray], batch_size: int, seed: int,
             shuffle_buffer: int | None) -> tf.data.Dataset:
    """Batches through `pipeline.finish_dataset` (float32 cast, seeded shuffle when `shuffle_buffer`, prefetch).

    The images are already in memory, so they are not cached again.
    """
    examples = tf.data.Dataset.from_tensor_slices((images, labels))
    return pipeline.finish_dataset(examples, batch_size=batch_size, cache=False, shuffle_buffer=shuffle_buffer,
                                   seed=seed)
