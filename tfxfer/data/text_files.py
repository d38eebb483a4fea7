"""Reading labelled texts from files: class folders, and one-file-per-class line files.

Readers return plain Python lists; `text_data` turns them into tf.data. Bytes
that are not UTF-8 and empty texts are skipped and counted, never fatal.
"""

import collections
import dataclasses
import os

from absl import logging


@dataclasses.dataclass
class LabelledTexts:
    """Texts with string labels, and what was skipped reading them.

    Attributes:
        texts: list[str]. One example each.
        labels: list[str] | list[tuple[str, ...]]. The class name of each text,
            or its class names for multi-label data.
        skipped: collections.Counter. `{"undecodable": n, "empty": n}`: texts
            (lines or files) left out because they were not UTF-8, or empty;
            `"no_label"` counts examples without any class.
    """

    texts: list[str] = dataclasses.field(default_factory=list)
    labels: list = dataclasses.field(default_factory=list)
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def add(self, raw: bytes, label: str | tuple[str, ...]) -> None:
        """Adds one text given as bytes, or counts why it was skipped."""
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            self.skipped["undecodable"] += 1
            return
        if not text:
            self.skipped["empty"] += 1
            return
        self.texts.append(text)
        self.labels.append(label)


def visible_entries(folder: str) -> list[str]:
    """Sorted names in `folder`, without hidden ones (`.DS_Store`, `.ipynb_checkpoints`)."""
    return sorted(name for name in os.listdir(folder) if not name.startswith("."))


def read_class_folders(data_dir: str) -> LabelledTexts:
    """Reads `data_dir/<class>/<file>`: one text per file, the folder is its class.

    The layout of `keras.utils.text_dataset_from_directory`.

    Args:
        data_dir: str. A folder of class folders.
    """
    classes = [name for name in visible_entries(data_dir) if os.path.isdir(os.path.join(data_dir, name))]
    if len(classes) < 2:
        raise ValueError(
            f"Expected at least 2 class folders (data_dir/<class>/<file>) in {data_dir}. "
            f"Received: {classes}"
        )
    result = LabelledTexts()
    for class_name in classes:
        folder = os.path.join(data_dir, class_name)
        for name in visible_entries(folder):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    result.add(f.read(), class_name)
    log_skipped(data_dir, result)
    return result


def line_file_class_names(file_names: list[str]) -> list[str]:
    """Class names of line files: the extensions when all files share one stem
    (`rt-polarity.pos`, `rt-polarity.neg` -> `pos`, `neg`), else the stems when
    they differ (`good.txt`, `bad.txt` -> `good`, `bad`), else the file names."""
    stems, extensions = zip(*(os.path.splitext(name) for name in file_names))
    if len(set(stems)) == 1 and all(extensions):
        return [extension[1:] for extension in extensions]
    if len(set(stems)) == len(stems):
        return list(stems)
    return list(file_names)


def read_line_files(data_dir: str) -> LabelledTexts:
    """Reads one file per class, one text per line (`data/rt-polarity/rt-polarity.pos|.neg`).

    Args:
        data_dir: str. A folder holding only the class files.
    """
    files = [name for name in visible_entries(data_dir) if os.path.isfile(os.path.join(data_dir, name))]
    if len(files) < 2:
        raise ValueError(
            f"Expected at least 2 class files (one text per line) in {data_dir}. Received: {files}"
        )
    result = LabelledTexts()
    for name, class_name in zip(files, line_file_class_names(files)):
        with open(os.path.join(data_dir, name), "rb") as f:
            # splitlines: no phantom empty line after the final newline; \r\n works too.
            for line in f.read().splitlines():
                result.add(line, class_name)
    log_skipped(data_dir, result)
    return result


def log_skipped(source: str, result: LabelledTexts) -> None:
    """Logs how many texts `source` lost, and why."""
    if result.skipped:
        logging.warning("Skipped in %s: %s (not UTF-8, empty, or without a label).", source, dict(result.skipped))
