"""`load_text_data`: labelled texts from CSV/TSV, class folders or line files, as tf.data.

The format is found from what `path` holds, so `--data_dir` can point at any of
them. Examples stay raw strings here; the model's own preprocessor (tokenizer
and packer, or word vectorizer) is mapped over them with `map_inputs`.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import text_csv, text_files

FORMATS = ("csv", "class_folders", "line_files")


@dataclasses.dataclass
class TextDatasets:
    """Batched training and validation texts for a text classifier.

    Attributes:
        train: tf.data.Dataset. Batches of `(texts, labels)`: tf.string `(B,)`
            and int32 `(B,)`. Reshuffled every epoch (seeded); cardinality known.
        validation: tf.data.Dataset | None. Batched like `train`, not shuffled.
        class_names: list[str]. Label `i` means `class_names[i]` (sorted).
        train_size: int. Training examples.
        validation_size: int. Validation examples (0 without validation).
        train_class_counts: list[int]. Training examples per class.
        skipped: dict[str, int]. Texts left out: `"undecodable"` (not UTF-8)
            and `"empty"`.
        source_format: str. `"csv"`, `"class_folders"` or `"line_files"`.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: list[str]
    train_size: int
    validation_size: int
    train_class_counts: list[int]
    skipped: dict[str, int]
    source_format: str

    def map_inputs(self, preprocessor) -> "TextDatasets":
        """A copy whose batches are `(preprocessor(texts), labels)`.

        preprocessor: callable. Strings to model inputs, e.g. `model.preprocessor`.
        """
        from tfxfer.text.text_classifier import preprocess_dataset  # The data layer needs no model code otherwise.

        validation = None if self.validation is None else preprocess_dataset(self.validation, preprocessor)
        return dataclasses.replace(self, train=preprocess_dataset(self.train, preprocessor), validation=validation)

    def texts(self, split: str = "train") -> tf.data.Dataset:
        """Batches of the split's raw strings only (e.g. to build a vocabulary)."""
        dataset = self.train if split == "train" else self.validation
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
        return {"class_names": self.class_names, "train_size": self.train_size,
                "validation_size": self.validation_size, "train_class_counts": self.train_class_counts,
                "skipped": self.skipped, "format": self.source_format}


def detect_format(path: str) -> str:
    """`"csv"`, `"class_folders"` or `"line_files"`, from what `path` holds."""
    if os.path.isfile(path):
        if path.lower().endswith(text_csv.CSV_EXTENSIONS):
            return "csv"
        raise ValueError(f"A text data file must be .csv or .tsv. Received: path={path!r}")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No text data at this path; pass a folder or a .csv/.tsv file. Received: path={path!r}")
    entries = text_files.visible_entries(path)
    folders = [e for e in entries if os.path.isdir(os.path.join(path, e))]
    files = [e for e in entries if os.path.isfile(os.path.join(path, e))]
    if folders and not files:
        return "class_folders"
    if files and not folders:
        return "line_files"
    raise ValueError(
        "Expected a folder of class folders (<class>/<file>, or train/ and val/ holding them), "
        "or a folder of class files (one text per line), not both. "
        f"Received: folders={folders}, files={files} in {path!r}"
    )


def load_text_data(
    path: str | os.PathLike,
    *,
    batch_size: int = 32,
    validation_split: float | None = None,
    seed: int = 0,
    text_column: str = "text",
    label_column: str = "label",
) -> TextDatasets:
    """Loads labelled texts, finding the format from `path`.

    - a `.csv`/`.tsv` file with a header (`text_column`, `label_column`);
    - a folder of class folders, one text per file (or `train/` and `val/`
      folders holding class folders: a fixed split);
    - a folder of class files, one text per line (`rt-polarity.pos|.neg`).

    Args:
        path: str. File or folder, as above.
        batch_size: int. Texts per batch.
        validation_split: float. Share held out for validation, per class and
            seeded; None keeps everything for training (except `train/`+`val/`).
        seed: int. Seed of the split and the per-epoch shuffle.
        text_column: str. CSV/TSV text column.
        label_column: str. CSV/TSV label column.
    """
    path = os.fspath(path)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    if validation_split is not None and not 0.0 < validation_split < 1.0:
        raise ValueError(
            "validation_split must be None or a fraction strictly between 0 and 1, e.g. 0.1. "
            f"Received: validation_split={validation_split!r}"
        )
    source_format = detect_format(path)
    fixed_validation = None
    if source_format == "csv":
        train = text_csv.read_text_csv(path, text_column=text_column, label_column=label_column)
    elif source_format == "class_folders" and os.path.isdir(os.path.join(path, "train")):
        train = text_files.read_class_folders(os.path.join(path, "train"))
        for name in ("val", "validation"):
            if os.path.isdir(os.path.join(path, name)):
                fixed_validation = text_files.read_class_folders(os.path.join(path, name))
    elif source_format == "class_folders":
        train = text_files.read_class_folders(path)
    else:
        train = text_files.read_line_files(path)
    class_names = sorted(set(train.labels))
    if len(class_names) < 2:
        raise ValueError(f"A classifier needs texts of at least 2 classes. Received: classes={class_names} in {path!r}")
    labels = np.asarray([class_names.index(label) for label in train.labels], np.int32)
    texts = np.asarray(train.texts, dtype=object)
    skipped = train.skipped.copy()
    if fixed_validation is not None:
        unknown = sorted(set(fixed_validation.labels) - set(class_names))
        if unknown:
            raise ValueError(f"Validation classes must also be training classes. Received: {unknown} only in val/")
        skipped.update(fixed_validation.skipped)
        val_texts = np.asarray(fixed_validation.texts, dtype=object)
        val_labels = np.asarray([class_names.index(label) for label in fixed_validation.labels], np.int32)
    elif validation_split:
        is_val = split_mask(labels, validation_split, seed)
        texts, val_texts = texts[~is_val], texts[is_val]
        labels, val_labels = labels[~is_val], labels[is_val]
    else:
        val_texts = val_labels = None
    data = TextDatasets(
        train=_batched(texts, labels, batch_size, shuffle_seed=seed),
        validation=None if val_texts is None else _batched(val_texts, val_labels, batch_size),
        class_names=class_names,
        train_size=len(texts),
        validation_size=0 if val_texts is None else len(val_texts),
        train_class_counts=np.bincount(labels, minlength=len(class_names)).tolist(),
        skipped={key: int(skipped.get(key, 0)) for key in ("undecodable", "empty")},
        source_format=source_format,
    )
    logging.info("Loaded %s texts from %s: classes %s, train %d (per class %s), validation %d, skipped %s.",
                 source_format, path, class_names, data.train_size, data.train_class_counts,
                 data.validation_size, data.skipped)
    return data


def split_mask(labels: np.ndarray, validation_split: float, seed: int) -> np.ndarray:
    """A seeded, per-class validation mask: each class gives about the same share.

    labels: np.ndarray. Integer class of each example.
    validation_split: float. Share of each class to hold out (at least one
        example per class with two or more).
    seed: int. Same seed and labels, same split.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        indices = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(len(indices) * validation_split))
        count = min(max(count, 1 if len(indices) > 1 else 0), len(indices) - 1)
        mask[indices[:count]] = True
    return mask


def _batched(texts, labels, batch_size, shuffle_seed=None):
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts), tf.string), tf.constant(labels, tf.int32)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(texts), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
