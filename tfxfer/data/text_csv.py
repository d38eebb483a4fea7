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
) -> LabelledTexts:
    """Reads `(text, label)` rows from a CSV/TSV file with a header row.

    Rows whose text is not UTF-8 or is empty (or whose label is empty) are
    skipped and counted; quoted fields may span lines.

    Args:
        path: str. The file.
        text_column: str. Header of the text column.
        label_column: str. Header of the label (class name) column.
        delimiter: str. Field separator; `"\\t"` for `.tsv`, `","` otherwise if None.
    """
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
            result.skipped["empty"] += 1
            continue
        try:
            label.encode("utf-8")
        except UnicodeEncodeError:  # Lone surrogates: the label's bytes were not UTF-8.
            result.skipped["undecodable"] += 1
            continue
        text = row.get(text_column) or ""
        result.add(text.encode("utf-8", errors="surrogateescape"), label)
    log_skipped(path, result)
    return result
