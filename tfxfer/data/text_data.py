"""`load_text_data`: labelled texts from CSV/TSV, class folders or line files, as tf.data.

The format is found from what `path` holds, so `--data_dir` can point at any of
them. Examples stay raw strings here; the model's own preprocessor (tokenizer
and packer, or word vectorizer) is mapped over them with `map_inputs`.
Training batches group texts of similar length, so a batch of short texts
costs a short sequence once `map_inputs` trims the padding.

Bad input never crashes a run and is never lost unseen: each text skipped or
changed is counted by reason (`TextDatasets.skipped`, `.changed`, both in
`summary()`) and logged with where it first happened; what would lose a whole
file, column or class stops the load with an error saying how to fix it.
"""

import collections
import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import (
    datasets,
    exact_copies,
    layout,
    splits,
    task_labels,
    text_batching,
    text_csv,
    text_files,
    token_counts,
)
from tfxfer.data.constants import MAX_TEXT_CHARS
from tfxfer.data.loader_args import check_loader_args
from tfxfer.data.token_batches import check_preprocessor, preprocess_dataset
from tfxfer.errors import ConfigError, MissingFileError


@dataclasses.dataclass
class TextDatasets(datasets.Datasets):
    """Batched training and validation texts for a text classifier.

    The fields of `tfxfer.data.Datasets`, where `train` holds batches of
    `(texts, labels)`: tf.string `(B,)` and int32 `(B,)`, or float32 multi-hot
    `(B, num_classes)` when `multi_label`, texts of similar length batched
    together unless that was turned off; `validation` is in order, not
    bucketed; `class_names` are sorted, or the TFDS label feature's order; with
    `multi_label`, `train_class_counts` counts the examples carrying each class.
    Multi-task data (`label_columns`) has `tasks`, and labels, `class_names`
    and `train_class_counts` per task (see `tfxfer.data.Datasets`): int64
    class ids `(B,)`, or float32 multi-hot `(B, C)` with `label_separator`,
    -1 where a text has no label for the task. And:

    Attributes:
        skipped: dict[str, int]. Texts left out, by reason: always
            `"undecodable"` (not UTF-8) and `"empty"` (empty or whitespace
            only; blank CSV lines too), plus `"no_label"` for multi-label,
            multi-task and TFDS data; any other reason only when it
            happened: `"no_label"` (an empty CSV label cell), `"malformed"`
            (a CSV row that does not fit its header), `"unknown_label"` (a
            TFDS label outside its class names).
        source_format: str. `"csv"`, `"class_folders"`, `"line_files"` or `"tfds"`.
        multi_label: bool. Whether an example may carry several classes (of
            every task, for multi-task data).
        changed: dict[str, int]. Texts kept but altered: always
            `"truncated_chars"` (longer than `max_text_chars`, cut to it);
            `"empty_class_names"` for multi-label data (cells like
            `billing||urgent`, the empty name dropped); and, once `map_inputs`
            ran, `"truncated_tokens"` (more tokens than the preprocessor
            keeps: the model reads only their first ones).
        raw_texts: np.ndarray | None. Every training and validation text as
            loaded (training texts first), so `map_inputs` can count their
            tokens without iterating (and so reshuffling) `train`.
        bucketed: text_batching.BucketedTexts | None. The training texts
            behind bucketed `train`, which `map_inputs` regroups by token count.

    Example:

    ```python
    data = tfxfer.load_text_data("tickets.csv", validation_split=0.2)
    print(data.class_names, data.train_size, data.skipped, data.changed)
    tokenized = data.map_inputs(model.preprocessor)  # batches of (token inputs, labels)
    ```
    """

    skipped: dict[str, int]
    source_format: str
    multi_label: bool = False
    changed: dict[str, int] = dataclasses.field(default_factory=dict)
    raw_texts: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)
    bucketed: text_batching.BucketedTexts | None = dataclasses.field(default=None, repr=False, compare=False)
    tasks: dict | None = dataclasses.field(default=None, kw_only=True)

    def map_inputs(self, preprocessor, *, trim_padding: bool = True) -> "TextDatasets":
        """A copy whose batches are `(preprocessor(texts), labels)`.

        Counts every text's tokens under `preprocessor` once, and uses them twice:
        - bucketed training batches are regrouped by token count, not word
          count (`text_batching.token_buckets`), so trimmed batches carry
          little padding;
        - the texts with more tokens than the preprocessor keeps are counted,
          as `changed["truncated_tokens"]` of these datasets and the copy (so
          `summary()` of either reports it), and logged.

        preprocessor: callable. Strings to model inputs, e.g. `model.preprocessor`.
        trim_padding: bool. Cut each batch's token sequences to its longest
            text (see `tfxfer.data.token_batches.preprocess_dataset`).
        """
        check_preprocessor(preprocessor)  # before counting tokens with it

        def preprocess(dataset):
            return None if dataset is None else preprocess_dataset(dataset, preprocessor, trim_padding=trim_padding)

        train = self.train
        counted = None if self.raw_texts is None else token_counts.count_tokens(self.raw_texts, preprocessor)
        if counted is not None:
            # In place: the copy shares this dict, and a run may report either's summary().
            self.changed["truncated_tokens"] = token_counts.report_truncated(counted)
            if self.bucketed is not None and trim_padding:
                train = self.bucketed.batches(text_batching.token_buckets(counted.packed()[:self.train_size]))
        return dataclasses.replace(self, train=preprocess(train), validation=preprocess(self.validation))

    def texts(self, split: str = "train") -> tf.data.Dataset:
        """Batches of the split's raw strings only (e.g. to build a vocabulary).

        split: str. `"train"` or `"validation"`.
        """
        if split not in ("train", "validation"):
            raise ConfigError(f"split must be 'train' or 'validation'. Received: split={split!r}")
        dataset = self.train if split == "train" else self.validation
        if dataset is None:
            raise ConfigError("The data has no validation part: load it with validation_split (e.g. 0.1), or ask for "
                              "split='train'. Received: split='validation'")
        return dataset.map(lambda texts, labels: texts)

    def warmup_texts(self, count: int) -> list[str] | None:
        """Up to `count` real validation texts (training texts without validation) for
        TF Serving warmup requests; None when `count` is 0."""
        if not count:
            return None
        texts = self.texts("validation" if self.validation is not None else "train").unbatch().take(count)
        return [text.decode("utf-8") for text in texts.as_numpy_iterator()]

    def summary(self) -> dict:
        """JSON-ready facts about the data, for run reports and export metadata."""
        return {**super().summary(), "skipped": self.skipped, "changed": self.changed,
                "format": self.source_format, "multi_label": self.multi_label}


def detect_format(path: str) -> str:
    """`"csv"`, `"class_folders"` or `"line_files"`, from what `path` holds."""
    if not tf.io.gfile.exists(path):
        raise MissingFileError(f"No text data at this path; pass a folder or a .csv/.tsv file. Received: path={path!r}")
    if not tf.io.gfile.isdir(path):
        if path.lower().endswith(text_csv.CSV_EXTENSIONS):
            return "csv"
        raise ConfigError(f"A text data file must be .csv or .tsv. Received: path={path!r}")
    folders, files = text_files.visible_folders(path), text_files.visible_files(path)
    if folders and not files:
        return "class_folders"
    if files and not folders:
        check_no_table_files(path, files)
        return "line_files"
    raise ConfigError(
        "Expected a folder of class folders (<class>/<file>, or train/ and val/ holding them), "
        "or a folder of class files (one text per line), not both. "
        f"Received: folders={folders}, files={files} in {path!r}"
    )


def check_no_table_files(path: str, files: list[str]) -> None:
    """Raises a ConfigError when `path`, a folder of files read as class files (one text per line), holds a
    .csv/.tsv: a Kaggle-style `train.csv` + `test.csv` (or a CSV beside a README) would otherwise train a
    classifier of file names on raw CSV lines, header included, without a word of warning."""
    tables = [name for name in files if name.lower().endswith(text_csv.CSV_EXTENSIONS)]
    if not tables:
        return
    raise ConfigError(
        f"{path!r} is a folder of files, which is read as one class file each (one text per line), but it holds "
        f"{tables}: read so, their lines (header included) would become texts of classes named after the files. "
        f"Pass the .csv/.tsv file itself as the path (recipes: --data_dir={os.path.join(path, tables[0])}), the one "
        f"that holds the labelled texts for this use. Received: files {files} in {path!r}")


def load_text_data(
    path: str | os.PathLike,
    *,
    batch_size: int = 32,
    validation_split: float | None = None,
    seed: int = 0,
    text_column: str = "text",
    label_column: str | None = None,
    label_separator: str | None = None,
    bucket_by_length: bool = True,
    max_text_chars: int = MAX_TEXT_CHARS,
    label_columns: Sequence[str] | None = None,
) -> TextDatasets:
    """Loads labelled texts, finding the format from `path`.

    - a `.csv`/`.tsv` file with a header (`text_column`, `label_column`);
    - a folder of class folders, one text per file, in the class folder or
      its own folders (or `train/` and `val/` folders holding class folders:
      a fixed split; also spelled `training/`, `valid/` or `validation/`, in
      any case);
    - a folder of class files, one text per line (`rt-polarity.pos|.neg`).

    Multi-label data is a CSV/TSV whose label cells list class names joined by
    `label_separator` (`billing|urgent`); labels are then float32 multi-hot
    rows. A row with no class name at all is skipped and counted as
    `"no_label"` rather than kept as "none of the classes": an empty cell
    cannot be told apart from a row nobody labelled.

    Multi-task data is a CSV/TSV with one label column per task, named in
    `label_columns`. A task is named after its column's header, lower-cased,
    other characters than `[a-z0-9_]` replaced by `_` (`"Product Line"` ->
    `product_line`); its class names are the sorted names of its column in the
    data, and it needs at least 2. An empty cell means the text has no label
    for that task (-1, or a row of -1.0 with `label_separator`, which then
    applies to every label column); a row whose label cells are all empty is
    skipped as `"no_label"`. The validation split keeps training texts of
    every class of every task (`tfxfer.data.splits.split_for_tasks`).

    Bad texts cost only themselves, counted in `skipped` and `changed` (see
    `TextDatasets`) and logged: a line or CSV row that is not UTF-8 is skipped
    (not decoded with replacement characters, which would train on garbled
    words and hide the file's real encoding), as are empty texts, rows without
    a label and CSV rows that do not fit the header; texts over
    `max_text_chars` are cut. Errors stop the load for what would lose more:
    a missing column (naming the columns there are), a UTF-16 file, a class
    folder or file without one usable text, a validation class with no
    training texts or a training class with none in the validation folder, a
    folder of files holding a .csv/.tsv (pass the file itself).

    Args:
        path: str. File or folder, as above.
        batch_size: int. Texts per batch.
        validation_split: float. Share held out for validation, per class and
            seeded, rounded as `tfxfer.data.splits` says (multi-label: per each
            example's rarest class), with exact copies of a text on one side;
            None keeps everything for training. Must be None with `train/` +
            `val/` (or `valid/`, `validation/`) folders, which fix the split
            (their copies of training texts are warned of): a share there is
            an error, as for `load_image_folders`, and so are two validation
            folders (`val/` and `validation/`).
        seed: int. Seed of the split and the per-epoch shuffle.
        text_column: str. CSV/TSV text column.
        label_column: str | None. CSV/TSV label column; None: `"label"`.
            Not with `label_columns`.
        label_separator: str | None. Separator of class names in CSV/TSV label
            cells, e.g. `"|"`, for multi-label data; None: one class per text.
        bucket_by_length: bool. Batch training texts of similar word count
            together (see `text_batching.LENGTH_BUCKET_BOUNDARIES`), and of
            similar token count once `map_inputs` knows the tokenizer, so
            trimmed batches are short.
        max_text_chars: int. Longer texts are cut to this many characters
            (default `tfxfer.data.constants.MAX_TEXT_CHARS`, 100,000: far more than a
            model reads, but a bound on what one pathological text costs).
        label_columns: Sequence[str] | None. CSV/TSV label columns of
            multi-task data, one task each, e.g. `["product", "priority"]`.

    Example:

    ```python
    data = tfxfer.load_text_data("tickets.csv", label_separator="|", validation_split=0.2)
    model = tfxfer.build_text_classifier("bert_tiny_en_uncased", len(data.class_names),
                                         multi_label=data.multi_label)
    tokenized = data.map_inputs(model.preprocessor)

    # Multi-task: one head per label column.
    tickets = tfxfer.load_text_data("tickets.csv", label_columns=["product", "priority"], validation_split=0.2)
    model = tfxfer.build_text_classifier("bert_tiny_en_uncased", tasks=tickets.tasks)
    ```
    """
    path = os.fspath(path)
    check_loader_args(batch_size=batch_size, validation_split=validation_split, max_text_chars=max_text_chars)
    if label_columns is not None and label_column is not None:
        raise ConfigError(
            "Pass either label_column (one task) or label_columns (one task per column), not both. Received: "
            f"label_column={label_column!r}, label_columns={label_columns!r}")
    source_format = detect_format(path)
    if label_columns is not None:
        if source_format != "csv":
            raise ConfigError(
                "label_columns applies to .csv/.tsv data only (one label column per task); class folders and "
                f"line files give one label per text. Received: label_columns={label_columns!r} for "
                f"{source_format} data in {path!r}")
        return _load_task_csv(path, label_columns, text_column=text_column, label_separator=label_separator,
                              max_text_chars=max_text_chars, batch_size=batch_size,
                              validation_split=validation_split, seed=seed, bucket_by_length=bucket_by_length)
    label_column = "label" if label_column is None else label_column
    if label_separator is not None and source_format != "csv":
        raise ConfigError(
            "label_separator applies to .csv/.tsv data only (several class names in one label cell). "
            f"Received: label_separator={label_separator!r} for {source_format} data in {path!r}"
        )
    validation, missing = None, "no validation part"
    if source_format == "csv":
        train = text_csv.read_text_csv(path, text_column=text_column, label_column=label_column,
                                       label_separator=label_separator, max_chars=max_text_chars)
        task_labels.warn_if_separator_splits_nothing(train.labels, label_separator, path)
    elif source_format == "class_folders":
        train_dir, validation_dir = layout.train_and_validation_folders(path)
        check_no_split_beside_validation_folder(path, train_dir, validation_dir, validation_split)
        train = text_files.read_class_folders(train_dir, max_chars=max_text_chars)
        if validation_dir is not None:
            validation = text_files.read_class_folders(validation_dir, max_chars=max_text_chars)
        elif train_dir != path:
            missing = f"no {layout.split_folder_spellings('validation')} folder (any case)"
    else:
        train = text_files.read_line_files(path, max_chars=max_text_chars)
    multi_label = label_separator is not None
    class_names = sorted({name for label in train.labels for name in (label if multi_label else (label,))})
    return make_text_datasets(
        train, validation=validation, class_names=class_names, batch_size=batch_size,
        validation_split=validation_split, seed=seed, bucket_by_length=bucket_by_length,
        multi_label=multi_label, source_format=source_format, source=path, missing_validation=missing,
        skip_reasons=("undecodable", "empty", "no_label") if multi_label else ("undecodable", "empty"))


def check_no_split_beside_validation_folder(path: str, train_dir: str, validation_dir: str | None,
                                            validation_split: float | None) -> None:
    """Raises a ConfigError when `validation_split` would split `train_dir` although `path` has a validation folder
    (`validation_dir`): one of the two would be silently ignored."""
    if validation_dir is None or validation_split is None:
        return
    train_folder = f"{os.path.basename(train_dir)}/"
    raise ConfigError(
        f"{path!r} already has a validation folder ({validation_dir!r}), so validation_split cannot also carve one "
        f"out of {train_folder}. Drop validation_split (recipes: leave --validation_split unset, or 0) to validate on "
        f"that folder, or remove the validation folder to split {train_folder} instead. "
        f"Received: validation_split={validation_split!r}")


def make_text_datasets(
    train: text_files.LabelledTexts,
    *,
    class_names: list[str],
    batch_size: int,
    seed: int,
    source_format: str,
    source: str,
    validation: text_files.LabelledTexts | None = None,
    validation_split: float | None = None,
    bucket_by_length: bool = True,
    multi_label: bool = False,
    skip_reasons: tuple[str, ...] = ("undecodable", "empty"),
    missing_validation: str = "no validation part",
) -> TextDatasets:
    """Turns texts read by any loader into `TextDatasets`: labels, split, batches.

    Args:
        train: LabelledTexts. Training texts (the split is taken from them
            when `validation` is None and `validation_split` is set).
        class_names: list[str]. All classes; label `i` is `class_names[i]`.
        batch_size: int. Texts per batch.
        seed: int. Seed of the split and the per-epoch shuffle.
        source_format: str. Recorded in `TextDatasets.source_format`.
        source: str. Where the texts came from, for messages.
        validation: LabelledTexts | None. A fixed validation set.
        validation_split: float | None. Share of `train` to hold out instead.
        bucket_by_length: bool. Batch training texts of similar length together.
        multi_label: bool. Labels are tuples of class names (multi-hot).
        skip_reasons: tuple[str, ...]. Keys of `TextDatasets.skipped` even
            when 0 (other reasons are listed when they happened).
        missing_validation: str. What `source` lacks, for the warning when
            there is no validation data.
    """
    # Counts of both splits add up: a text skipped in val/ is as lost as one in train/.
    skipped, changed = collections.Counter(train.skipped), collections.Counter(train.changed)
    if validation is not None:
        skipped.update(validation.skipped)
        changed.update(validation.changed)
    # First: of 2 class folders or files, one that gave no text is why there would be one class.
    check_every_class_has_texts(train, class_names, skipped)
    if len(class_names) < 2:
        raise ConfigError(
            f"A classifier needs texts of at least 2 classes. Received: classes={class_names} in {source!r} "
            f"(skipped: {dict(skipped)})")
    texts = np.asarray(train.texts, dtype=object)
    labels = encode_labels(train.labels, class_names, multi_label)
    val_texts = val_labels = None
    if validation is not None:
        check_validation_classes(validation, class_names, multi_label)
        check_every_class_is_validated(validation, class_names, source, skipped)
        val_texts = np.asarray(validation.texts, dtype=object)
        val_labels = encode_labels(validation.labels, class_names, multi_label)
    copies = exact_copies.report_copies(texts, labels, texts, what="texts", source=source,
                                        validation_keys=val_texts, validation_names=val_texts)
    if validation is None and validation_split:
        train_idx, val_idx = splits.split_per_class(
            stratification_keys(labels) if multi_label else labels, validation_split, seed, what="texts",
            copies=texts)
        texts, val_texts = texts[train_idx], texts[val_idx]
        labels, val_labels = labels[train_idx], labels[val_idx]
    if not len(texts):
        raise ConfigError(f"No training texts left in {source!r} after skipping {dict(skipped)}.")
    if val_texts is None:
        splits.warn_no_validation(source, missing=missing_validation, example_split=0.1)
    changes = ("truncated_chars", "empty_class_names") if multi_label else ("truncated_chars",)
    counts = labels.sum(axis=0) if multi_label else np.bincount(labels, minlength=len(class_names))
    data = _batched(
        texts, labels, val_texts, val_labels, batch_size=batch_size, seed=seed, bucket_by_length=bucket_by_length,
        class_names=list(class_names),
        train_class_counts=[int(count) for count in counts],
        skipped=counts_by_reason(skipped, skip_reasons),
        source_format=source_format,
        multi_label=multi_label,
        changed=counts_by_reason(changed, changes),
        exact_copies=copies,
    )
    logging.info("Loaded %s texts from %s: classes %s%s, train %d (per class %s) in %d batches, "
                 "validation %d, skipped %s, changed %s.", source_format, source, class_names,
                 " (multi-label)" if multi_label else "", data.train_size, data.train_class_counts,
                 int(data.train.cardinality()), data.validation_size, data.skipped, data.changed)
    return data


def _batched(texts: np.ndarray, labels, val_texts: np.ndarray | None, val_labels, *, batch_size: int, seed: int,
             bucket_by_length: bool, **fields) -> TextDatasets:
    """`TextDatasets` of split texts and labels (arrays, or `{task: array}`); `fields` are its other fields."""
    if isinstance(labels, dict):
        bucketed = _TaskBucketedTexts(texts, np.arange(len(texts)), batch_size, seed, labels) if bucket_by_length \
            else None
        train = bucketed.batches() if bucketed else with_task_labels(
            text_batching.plain_batches(texts, np.arange(len(texts)), batch_size, shuffle_seed=seed), labels)
        validation = None if val_texts is None else with_task_labels(
            text_batching.plain_batches(val_texts, np.arange(len(val_texts)), batch_size), val_labels)
    else:
        bucketed = text_batching.BucketedTexts(texts, labels, batch_size, seed) if bucket_by_length else None
        train = bucketed.batches() if bucketed else text_batching.plain_batches(texts, labels, batch_size,
                                                                                shuffle_seed=seed)
        validation = None if val_texts is None else text_batching.plain_batches(val_texts, val_labels, batch_size)
    return TextDatasets(
        train=train,
        validation=validation,
        train_size=len(texts),
        validation_size=0 if val_texts is None else len(val_texts),
        raw_texts=texts if val_texts is None else np.concatenate([texts, val_texts]),
        bucketed=bucketed,
        **fields,
    )


@dataclasses.dataclass
class _TaskBucketedTexts(text_batching.BucketedTexts):
    """Bucketed texts of multi-task data: `labels` are the texts' indices, which
    `text_batching` batches like one label tensor; `task_labels` gives each batch its dict labels."""

    task_labels: dict

    def batches(self, buckets: np.ndarray | None = None) -> tf.data.Dataset:
        return with_task_labels(super().batches(buckets), self.task_labels)


def with_task_labels(dataset: tf.data.Dataset, labels: dict[str, np.ndarray]) -> tf.data.Dataset:
    """Batches of `(texts, example indices)` as `(texts, {task: labels of those examples})`."""
    tables = {task: tf.constant(values) for task, values in labels.items()}

    def look_up(texts, indices):
        return texts, {task: tf.gather(table, indices) for task, table in tables.items()}

    return dataset.map(look_up, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _load_task_csv(path: str, label_columns: Sequence[str], *, text_column: str, label_separator: str | None,
                   max_text_chars: int, batch_size: int, validation_split: float | None, seed: int,
                   bucket_by_length: bool) -> TextDatasets:
    """`load_text_data` of a CSV/TSV with one label column per task (see there)."""
    columns = task_labels.task_columns(label_columns)
    train = text_csv.read_text_csv(path, text_column=text_column, label_columns=label_columns,
                                   label_separator=label_separator, max_chars=max_text_chars)
    task_labels.warn_if_separator_splits_nothing(train.labels, label_separator, path)
    multi_label = label_separator is not None
    skipped = counts_by_reason(train.skipped, ("undecodable", "empty", "no_label"))
    class_names = task_labels.class_names(train.labels, columns, multi_label)
    task_labels.check_class_names(class_names, columns, path, "texts", note=f" (skipped: {skipped})")
    texts = np.asarray(train.texts, dtype=object)
    labels = task_labels.encode(train.labels, class_names, multi_label)
    val_texts = val_labels = None
    copies = exact_copies.report_copies(texts, labels, texts, what="texts", source=path)
    if validation_split:
        train_idx, val_idx = splits.split_for_tasks(task_labels.membership(labels, class_names), validation_split,
                                                    seed, what="texts", copies=texts)
        texts, val_texts = texts[train_idx], texts[val_idx]
        labels, val_labels = task_labels.take(labels, train_idx), task_labels.take(labels, val_idx)
        task_labels.warn_tasks_unlabelled_in_validation(val_labels, columns, path, "texts")
    else:
        splits.warn_no_validation(path, example_split=0.1)
    data = _batched(
        texts, labels, val_texts, val_labels, batch_size=batch_size, seed=seed, bucket_by_length=bucket_by_length,
        class_names=class_names,
        train_class_counts=task_labels.class_counts(labels, class_names),
        skipped=skipped,
        source_format="csv",
        multi_label=multi_label,
        changed=counts_by_reason(train.changed, ("truncated_chars", "empty_class_names") if multi_label
                                 else ("truncated_chars",)),
        tasks=task_labels.make_tasks(class_names, multi_label),
        exact_copies=copies,
    )
    logging.info("Loaded csv texts from %s: tasks %s (columns %s), classes %s%s, train %d (labelled per task %s; "
                 "per class %s) in %d batches, validation %d, skipped %s, changed %s.", path, list(columns),
                 list(columns.values()), class_names, " (multi-label)" if multi_label else "", data.train_size,
                 task_labels.labelled_counts(labels), data.train_class_counts, int(data.train.cardinality()),
                 data.validation_size, data.skipped, data.changed)
    return data


def counts_by_reason(counts: dict, always: tuple[str, ...]) -> dict[str, int]:
    """`counts` as plain ints: the `always` reasons (0 if none), then any other that happened."""
    return {**{key: 0 for key in always}, **{key: int(count) for key, count in counts.items() if count}}


def check_every_class_has_texts(train: text_files.LabelledTexts, class_names: list[str], skipped: dict) -> None:
    """Raises a ValueError when a class folder or file gave no usable text: training
    would otherwise go on without that class, unnoticed."""
    empty = [name for name in train.class_sources if name not in class_names]
    if empty:
        raise ConfigError(
            "Every class folder or file needs at least one usable text. Add texts to it, fix its "
            f"encoding (UTF-8) or remove it. Received: no usable text in {[train.class_sources[n] for n in empty]} "
            f"(skipped: {dict(skipped)})")


def check_validation_classes(validation: text_files.LabelledTexts, class_names: list[str], multi_label: bool) -> None:
    """Raises a ValueError naming validation classes that have no training texts."""
    names = {name for label in validation.labels for name in (label if multi_label else (label,))}
    unknown = sorted(names - set(class_names))
    if unknown:
        where = [validation.class_sources.get(name, name) for name in unknown]
        raise ConfigError(
            f"Validation classes must also be training classes. Received: {unknown} only in validation "
            f"({where}). Add training texts of these classes, or remove them from validation.")


def check_every_class_is_validated(validation: text_files.LabelledTexts, class_names: list[str], source: str,
                                   skipped: dict) -> None:
    """Raises a ConfigError naming the training classes without a validation text, when the validation texts come
    from class folders (`val/<class>/`): a class folder missing from `val/`, or one whose every file was skipped,
    would leave the class unscored (no recall, no F1) and the best epoch picked blind to it. As for images."""
    if not validation.class_sources:  # Not class folders (TFDS): its splits hold what they hold.
        return
    validated = set(validation.labels)
    missing = [name for name in class_names if name not in validated]
    if not missing:
        return
    folder = os.path.dirname(next(iter(validation.class_sources.values())))
    where = [validation.class_sources.get(name, f"no folder {name}/") for name in missing]
    raise ConfigError(
        f"Training and validation folders must hold the same classes, each with at least one usable text. Add "
        f"texts of {missing} to {folder!r} (in a folder named as the class; UTF-8, not empty), or remove these "
        f"classes from the training folder too. Received: no validation text of {missing} in {source!r} ({where}; "
        f"skipped: {dict(skipped)})")


def encode_labels(labels: list, class_names: list[str], multi_label: bool = False) -> np.ndarray:
    """Class names to int32 indices `(N,)`, or name tuples to float32 multi-hot `(N, C)`."""
    index = {name: i for i, name in enumerate(class_names)}
    if not multi_label:
        return np.asarray([index[label] for label in labels], np.int32).reshape(len(labels))
    multi_hot = np.zeros((len(labels), len(class_names)), np.float32)
    for row, names in enumerate(labels):
        multi_hot[row, [index[name] for name in names]] = 1.0
    return multi_hot


def stratification_keys(multi_hot: np.ndarray) -> np.ndarray:
    """Each example's rarest class, to split multi-label data per class.

    The rarest class is the one a careless split can leave out of validation
    (or training) entirely; common classes co-occur with it and still get
    about their share. The first step of iterative stratification
    (Sechidis et al., 2011), without its per-label rebalancing.
    """
    counts = multi_hot.sum(axis=0)
    # Absent classes get an infinite count; argmin breaks ties by class index.
    return np.argmin(np.where(multi_hot > 0, counts, np.inf), axis=1).astype(np.int32)
