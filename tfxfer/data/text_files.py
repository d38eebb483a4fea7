"""Reading labelled texts from files: class folders, and one-file-per-class line files.

Readers return plain Python lists; `text_data` turns them into tf.data. A bad
text costs only itself: bytes that are not UTF-8 and empty texts are skipped,
texts longer than `MAX_TEXT_CHARS` are cut, and each is counted and logged
with where it first happened. Problems that would lose a whole file or class
stop the load with an error saying how to fix them. Files are read through
`tf.io.gfile`, so they may be on any filesystem TensorFlow reads (`gs://`, ...).
"""

import collections
import dataclasses
import os

import tensorflow as tf

from tfxfer.data import layout, skip_log
from tfxfer.data.constants import MAX_TEXT_CHARS
from tfxfer.data.text_encoding import check_not_utf16
from tfxfer.errors import ConfigError


@dataclasses.dataclass
class LabelledTexts:
    """Texts with string labels, and what was skipped or changed reading them.

    Attributes:
        texts: list[str]. One example each.
        labels: list[str] | list[tuple[str, ...]]. The class name of each text,
            or its class names for multi-label data.
        skipped: collections.Counter. Texts (lines, files, rows) left out, by
            reason: `"undecodable"` (not UTF-8), `"empty"` (empty or whitespace
            only), `"no_label"` (no class), `"unknown_label"` (a label outside
            the class names), `"malformed"` (a CSV row that does not fit its header).
        changed: collections.Counter. Texts kept but altered: `"truncated_chars"`
            (cut to `max_chars`), `"empty_class_names"` (empty names dropped
            from a multi-label cell).
        first_at: dict[str, str]. Where each reason of `skipped` and `changed`
            first happened (`"reviews.neg line 12"`), for the log.
        max_chars: int. Longer texts are cut to this many characters.
        class_sources: dict[str, str]. For layouts whose classes are folders
            or files: each class and where its texts come from.
    """

    texts: list[str] = dataclasses.field(default_factory=list)
    labels: list = dataclasses.field(default_factory=list)
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    changed: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    first_at: dict = dataclasses.field(default_factory=dict)
    max_chars: int = MAX_TEXT_CHARS
    class_sources: dict = dataclasses.field(default_factory=dict)

    def add(self, raw: bytes, label: str | tuple[str, ...], where: str | None = None) -> None:
        """Adds one text given as bytes, or counts why it was skipped.

        A UTF-8 byte-order mark is dropped: files joined with `cat` carry one
        at the start of a line, and it would otherwise become part of a word.
        """
        try:
            text = raw.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            self.skip("undecodable", where)
            return
        if not text:
            self.skip("empty", where)
            return
        if len(text) > self.max_chars:
            text = text[: self.max_chars].rstrip()
            self.note("truncated_chars", where)
        self.texts.append(text)
        self.labels.append(label)

    def skip(self, reason: str, where: str | None = None) -> None:
        """Counts a text left out, and where it was first."""
        self.skipped[reason] += 1
        self._first(reason, where)

    def note(self, change: str, where: str | None = None) -> None:
        """Counts a text kept but changed, and where it was first."""
        self.changed[change] += 1
        self._first(change, where)

    def _first(self, reason: str, where: str | None) -> None:
        if where is not None:
            self.first_at.setdefault(reason, where)


def read_bytes(path: str) -> bytes:
    """The whole file, through `tf.io.gfile` (so `gs://` and other filesystems work)."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def visible_files(folder: str) -> list[str]:
    """Sorted names of the files (not folders) in `folder`, without hidden ones."""
    return [name for name in layout.visible_names(folder) if not tf.io.gfile.isdir(os.path.join(folder, name))]


def visible_folders(folder: str) -> list[str]:
    """Sorted names of the folders in `folder`, without hidden ones."""
    return [name for name in layout.visible_names(folder) if tf.io.gfile.isdir(os.path.join(folder, name))]


def files_under(folder: str) -> list[str]:
    """Sorted paths, relative to `folder`, of the files in it and in its folders at any depth, without hidden
    files and folders (`.DS_Store`, `.ipynb_checkpoints/`)."""
    found = []
    for root, subfolders, names in tf.io.gfile.walk(folder):
        subfolders[:] = [name for name in subfolders if not layout.is_hidden(name)]  # walk() follows this list.
        relative = root[len(folder):].strip("/")
        paths = [os.path.join(relative, name) for name in names if not layout.is_hidden(name)]
        # ram:// matches by prefix: beside ham2/, it lists ham/2019/x as ham/2/019, which is not there. Checked there
        # only: elsewhere (gs:// included) listings split at "/", and a check would be a request per file.
        if relative and folder.startswith("ram://"):
            paths = [path for path in paths if tf.io.gfile.exists(os.path.join(folder, path))]
        found += paths
    return sorted(found)


def read_class_folders(data_dir: str, *, max_chars: int = MAX_TEXT_CHARS) -> LabelledTexts:
    """Reads `data_dir/<class>/<file>`: one text per file, the folder is its class.

    The layout of `keras.utils.text_dataset_from_directory`: as there (and as for
    images), the files of a class folder's own folders (`pos/2019/*.txt`) are its
    texts too, not left out unseen.

    Args:
        data_dir: str. A folder of class folders.
        max_chars: int. Longer texts are cut to this many characters.
    """
    classes = visible_folders(data_dir)
    if len(classes) < 2:
        raise ConfigError(
            f"Expected at least 2 class folders (data_dir/<class>/<file>) in {data_dir}. "
            f"Received: {classes}"
        )
    layout.warn_files_beside_classes(data_dir)
    result = LabelledTexts(max_chars=max_chars)
    for class_name in classes:
        folder = os.path.join(data_dir, class_name)
        result.class_sources[class_name] = folder
        for name in files_under(folder):
            result.add(read_bytes(os.path.join(folder, name)), class_name, where=os.path.join(class_name, name))
    log_losses(data_dir, result)
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


def read_line_files(data_dir: str, *, max_chars: int = MAX_TEXT_CHARS) -> LabelledTexts:
    """Reads one file per class, one text per line (`data/rt-polarity/rt-polarity.pos|.neg`).

    Lines are split on bytes before decoding, so a line that is not UTF-8
    costs only itself. A UTF-16 file is an error: every line of it would be lost.

    Args:
        data_dir: str. A folder holding only the class files.
        max_chars: int. Longer lines are cut to this many characters.
    """
    files = visible_files(data_dir)
    if len(files) < 2:
        raise ConfigError(
            f"Expected at least 2 class files (one text per line) in {data_dir}. Received: {files}"
        )
    result = LabelledTexts(max_chars=max_chars)
    for name, class_name in zip(files, line_file_class_names(files)):
        path = os.path.join(data_dir, name)
        result.class_sources[class_name] = path
        content = read_bytes(path)
        check_not_utf16(path, content)
        # splitlines: no phantom empty line after the final newline; \r\n works too.
        for number, line in enumerate(content.splitlines(), start=1):
            result.add(line, class_name, where=f"{name} line {number}")
    log_losses(data_dir, result)
    return result


def log_losses(source: str, result: LabelledTexts) -> None:
    """Logs, by reason, how many texts `source` lost or had changed, and where first (`skip_log.log_losses`)."""
    skip_log.log_losses(source, result.skipped, result.changed, result.first_at)
