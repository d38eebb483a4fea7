"""Reading labelled texts from a CSV or TSV file with named text and label columns."""

import csv
import io
import os

from tfxfer.data.text_files import LabelledTexts, log_skipped

CSV_EXTENSIONS = (".csv", ".tsv")


def read_text_csv(
    path: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    delimiter: str | None = None,
    label_separator: str | None = None,
) -> LabelledTexts:
    """Reads `(text, label)` rows from a CSV/TSV file with a header row.

    Rows whose text is not UTF-8 or is empty (or whose label is empty) are
    skipped and counted; quoted fields may span lines. With `label_separator`,
    a label cell holds several class names (`billing|urgent`): each label is
    then a tuple of names (stripped, duplicates dropped), and a row without
    any name is skipped and counted as `"no_label"`.

    Args:
        path: str. The file.
        text_column: str. Header of the text column.
        label_column: str. Header of the label (class name) column.
        delimiter: str. Field separator; `"\\t"` for `.tsv`, `","` otherwise if None.
        label_separator: str | None. Separator of class names in a label cell
            (multi-label data); None reads one class name per row.
    """
    if label_separator is not None and (not isinstance(label_separator, str) or not label_separator):
        raise ValueError(
            "label_separator must be None or a non-empty string, e.g. '|'. "
            f"Received: label_separator={label_separator!r}"
        )
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
    with open(path, "rb") as f:
        # surrogateescape keeps undecodable bytes as lone surrogates, so one bad
        # row is found and skipped instead of failing the whole file.
        content = f.read().decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    missing = [name for name in (text_column, label_column) if name not in columns]
    if missing:
        raise ValueError(
            f"{os.path.basename(path)} has no column {missing[0]!r}; its columns are {columns}. "
            f"Pass text_column= and label_column= (--text_column, --label_column). "
            f"Received: text_column={text_column!r}, label_column={label_column!r}"
        )
    result = LabelledTexts()
    for row in reader:
        label = (row.get(label_column) or "").strip()
        if not label:
            result.skipped["no_label" if label_separator else "empty"] += 1
            continue
        try:
            label.encode("utf-8")
        except UnicodeEncodeError:  # Lone surrogates: the label's bytes were not UTF-8.
            result.skipped["undecodable"] += 1
            continue
        if label_separator:
            label = tuple(dict.fromkeys(name.strip() for name in label.split(label_separator) if name.strip()))
            if not label:
                result.skipped["no_label"] += 1
                continue
        text = row.get(text_column) or ""
        result.add(text.encode("utf-8", errors="surrogateescape"), label)
    log_skipped(path, result)
    return result
