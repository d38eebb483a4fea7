"""Reading labelled texts from a CSV or TSV file with named text and label columns."""

import contextlib
import csv
import functools
import io
import os
from collections.abc import Sequence

from absl import logging

from tfxfer.data import task_labels
from tfxfer.data.constants import MAX_TEXT_CHARS
from tfxfer.data.text_encoding import check_not_utf16
from tfxfer.data.text_files import LabelledTexts, log_losses, read_bytes
from tfxfer.errors import ConfigError

CSV_EXTENSIONS = (".csv", ".tsv")
# The csv module refuses fields over 131,072 characters by default; long texts
# are read whole and cut to max_chars like any other (2**31 - 1: a C long everywhere).
_FIELD_SIZE_LIMIT = 2**31 - 1
# Column arguments the recipes take as flags of the same name.
_RECIPE_FLAGS = ("text_column", "label_column")
# Field separators a file read with another one shows in the only column name of its header, each with the
# extension that makes the readers take it without a delimiter argument (none for ';').
_DELIMITER_EXTENSIONS = {",": ".csv", "\t": ".tsv", ";": None}


def read_text_csv(
    path: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    delimiter: str | None = None,
    label_separator: str | None = None,
    max_chars: int = MAX_TEXT_CHARS,
    label_columns: Sequence[str] | None = None,
) -> LabelledTexts:
    """Reads `(text, label)` rows from a CSV/TSV file with a header row.

    Quoted fields may span lines, and a UTF-8 byte-order mark is dropped. A bad
    row costs only itself, counted by reason: its text is not UTF-8
    (`"undecodable"`; its cells keep their bytes, so the delimiters around them
    still parse), empty (`"empty"`, as are blank lines), its label is empty
    (`"no_label"`), or it has more fields than the header or lacks the text
    or label field (`"malformed"`: usually an unquoted delimiter or line
    break inside a text). A quoted field that runs over line breaks without
    closing properly (a text starting with an unbalanced `"`, as unquoted
    writers leave it) is read line by line, its quote kept, and warned about:
    the csv module would merge every row up to the next quote into one text
    with the last row's label. Texts over `max_chars` characters are cut. The
    header is the first line that is not blank; a file without one (empty, or
    only blank lines: `read_header`), or with a header but no rows
    (`check_has_rows`), is an error.

    With `label_separator`, a label cell holds several class names
    (`billing|urgent`): each label is then a tuple of names (stripped,
    duplicates dropped); empty names (`billing||urgent`, `billing|`) are
    dropped and counted in `changed["empty_class_names"]`, and a row without
    any name is skipped as `"no_label"`.

    With `label_columns` (multi-task data), `label_column` is not read: each
    label is a dict `{task: class name, tuple of names or None}` over the
    columns' task names (`task_labels.task_name`), None for an empty cell; a
    row whose label cells are all empty is skipped as `"no_label"`, and
    `label_separator` applies to every label column.

    Args:
        path: str. The file.
        text_column: str. Header of the text column.
        label_column: str. Header of the label (class name) column.
        delimiter: str. Field separator; `"\\t"` for `.tsv`, `","` otherwise if None.
        label_separator: str | None. Separator of class names in a label cell
            (multi-label data); None reads one class name per row.
        max_chars: int. Longer texts are cut to this many characters.
        label_columns: Sequence[str] | None. Headers of the label columns of
            multi-task data, one task each; None reads `label_column`.
    """
    columns = None if label_columns is None else task_labels.task_columns(label_columns)
    if label_separator is not None and (not isinstance(label_separator, str) or not label_separator):
        raise ConfigError(
            "label_separator must be None or a non-empty string, e.g. '|'. "
            f"Received: label_separator={label_separator!r}"
        )
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
    # Read whole through tf.io.gfile (gs:// works); the texts are all kept in memory anyway.
    content = read_bytes(path)
    check_not_utf16(path, content[:4])
    result = LabelledTexts(max_chars=max_chars)
    # newline="": the csv module itself finds line breaks, including those inside
    # quoted fields. surrogateescape keeps bytes that are not UTF-8 as lone
    # surrogates, so one bad row is found and skipped instead of failing the file.
    text = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", errors="surrogateescape", newline="")
    with text as f, _long_fields():
        lines = _RecordedLines(f)
        reader = csv.reader(lines, delimiter=delimiter)
        wanted = [text_column, *(columns.values() if columns is not None else [label_column])]
        header = read_header(path, reader, wanted, delimiter, "text")
        text_index = column_index(path, header, text_column, "text_column", delimiter)
        if columns is not None:
            indices = {task: column_index(path, header, column, "label_columns", delimiter)
                       for task, column in columns.items()}
            add_row = functools.partial(_add_task_row, result, width=len(header), text_index=text_index,
                                        label_indices=indices, label_separator=label_separator)
        else:
            label_index = column_index(path, header, label_column, "label_column", delimiter)
            add_row = functools.partial(_add_row, result, width=len(header), text_index=text_index,
                                        label_index=label_index, label_separator=label_separator)
        lines.take()  # The header's.
        rows, unclosed = 0, []
        for row in reader:
            raw = lines.take()
            first = reader.line_num - len(raw) + 1
            if len(raw) > 1 and not _parses_strictly(raw, delimiter):
                unclosed.append(first)
                numbered = zip(range(first, first + len(raw)), _rows_of_lines(raw, delimiter))
            else:
                numbered = [(reader.line_num, row)]
            for number, line_row in numbered:
                rows += bool(line_row)
                add_row(line_row, where=f"line {number}")
    check_has_rows(path, header, rows, "text")
    if unclosed:
        logging.warning(
            "Read line by line in %s: %d quoted %s ran over line breaks without a proper closing quote (first at "
            "line %d), as a text starting with an unbalanced '\"' does; read as written, it would have merged the "
            "lines up to the next quote into one text with the last line's label. Quote such fields and double the "
            "quotes inside them (\"\"), as spreadsheet exports do.", path, len(unclosed),
            "field" if len(unclosed) == 1 else "fields", unclosed[0])
    log_losses(path, result)
    return result


class _RecordedLines:
    """The lines of a file as the csv reader pulls them, kept until `take()`, so that a row can be read again."""

    def __init__(self, lines):
        self._lines = iter(lines)
        self._pending = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._pending.append(line)
        return line

    def take(self) -> list[str]:
        """The lines pulled since the last call."""
        lines, self._pending = self._pending, []
        return lines


def _parses_strictly(lines: list[str], delimiter: str) -> bool:
    """Whether `lines`, one row whose quoted field spans them, is well quoted: each quoted field closes, followed
    by the delimiter or the line's end. A quote opened by mistake (a text starting with '"') is not: it runs to the
    next quote in the file, however many rows later, and that one is rarely followed by a delimiter."""
    try:
        for _ in csv.reader(lines, delimiter=delimiter, strict=True):
            pass
    except csv.Error:
        return False
    return True


def _rows_of_lines(lines: list[str], delimiter: str) -> list[list[str]]:
    """Each of `lines` read as a row on its own; a line whose quote does not close on it is read as written
    (quotes kept), since its quote is a character of the text, not the start of a quoted field."""
    rows = []
    for line in lines:
        row = next(csv.reader([line], delimiter=delimiter), [])
        if row and row[-1].endswith(("\n", "\r")):  # Its last field ran to the line's end inside a quote.
            row = next(csv.reader([line], delimiter=delimiter, quoting=csv.QUOTE_NONE), [])
        rows.append(row)
    return rows


def _delimiter_hint(header: list[str], delimiter: str, delimiter_argument: str | None) -> str | None:
    """How to read the file with its own separator, when its header is one column name holding another one."""
    if len(header) != 1:
        return None
    found = [other for other in _DELIMITER_EXTENSIONS if other != delimiter and other in header[0]]
    if not found:
        return None
    other = max(found, key=header[0].count)
    extension = _DELIMITER_EXTENSIONS[other]
    fixes = [f"pass {delimiter_argument}={other!r}"] if delimiter_argument else []
    fixes.append(f"name it {extension}" if extension else "save it separated by ',' (as .csv) or by tabs (as .tsv)")
    return f"the file looks separated by {other!r}, not {delimiter!r}: {' or '.join(fixes)}"


def read_header(path: str, reader, columns: Sequence[str], delimiter: str, what: str) -> list[str]:
    """The header row of the file `reader` reads: its first line that is not blank (blank lines come as []).

    Raises a ConfigError for a file without one (empty, or only blank lines), showing the header it needs:
    the column errors would only say that its columns are [].

    columns: Sequence[str]. The columns the caller reads, shown as the header to write.
    what: str. What a row holds (`"text"`, `"image"`), for the message.
    """
    for row in reader:
        if row:
            return row
    separator = "tabs" if delimiter == "\t" else repr(delimiter)
    raise ConfigError(
        f"{os.path.basename(path)} is empty: it needs a header row naming its columns, {list(columns)} separated "
        f"by {separator}, then one row per {what} below it. Received: an empty file (or only blank lines) at "
        f"{path!r}")


def check_has_rows(path: str, header: list[str], rows: int, what: str) -> None:
    """Raises a ConfigError for a file with a header but no rows (blank lines do not count): no class at all, which
    later checks would report as too few classes.

    rows: int. The rows below the header that are not blank.
    what: str. What a row holds (`"text"`, `"image"`), for the message.
    """
    if not rows:
        raise ConfigError(
            f"{os.path.basename(path)} has a header but no rows: add one row per {what} below it. Received: only "
            f"the header {header} in {path!r}")


@contextlib.contextmanager
def _long_fields():
    """Lets the csv module read fields of any length, then restores its (process-wide) limit."""
    previous = csv.field_size_limit(_FIELD_SIZE_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def column_index(path: str, header: list[str], name: str, argument: str, delimiter: str,
                 delimiter_argument: str | None = None) -> int:
    """Where column `name` is in `header`; a ConfigError naming the columns there are if absent.

    An entry of `label_columns` also matches a header that differs from it only
    by case, when exactly one does: its task is named after the header
    lower-cased (`task_labels.task_name`) either way. Two such headers are a
    ConfigError naming both, unless the entry is written as one of them.

    argument: str. The argument that named the column (`"text_column"`, or
        `"label_columns"` for an entry of that list), for the message.
    delimiter_argument: str | None. The caller's argument that sets the field
        separator (`"delimiter"`), suggested when the header looks separated by
        another; None: the caller takes it from the extension only.
    """
    if name in header:
        return header.index(name)
    if argument == "label_columns":  # Their tasks are named lower-cased, so the case tells no two apart.
        same = [column for column in header if column.lower() == name.lower()]
        if len(same) == 1:
            return header.index(same[0])
        if same:
            raise ConfigError(
                f"{os.path.basename(path)} has columns {' and '.join(map(repr, same))}, which differ only by case, "
                f"and {argument}= matches headers whatever their case (tasks are named lower-cased), so {name!r} "
                "could be either. Write it exactly as one of them, or rename the others. "
                f"Received: {name!r} in {argument}")
    hints = [f"did you mean {column!r}?" for column in header if column.strip().lower() == name.strip().lower()]
    delimiter_hint = _delimiter_hint(header, delimiter, delimiter_argument)
    if delimiter_hint:
        hints.append(delimiter_hint)
    what = argument.split("_")[0]
    if argument.endswith("s"):  # A list of columns.
        fix, received = f"List the names of its {what} columns in {argument}=", f"{name!r} in {argument}"
    else:
        flag = f" (--{argument})" if argument in _RECIPE_FLAGS else ""
        fix, received = f"Pass the name of its {what} column as {argument}={flag}", f"{argument}={name!r}"
    raise ConfigError(
        f"{os.path.basename(path)} has no column {name!r}; its columns are {header}. {fix}"
        + (f"; {'; '.join(hints)}" if hints else "") + f". Received: {received}"
    )


def _add_row(result: LabelledTexts, row: list[str], *, width: int, text_index: int, label_index: int,
             label_separator: str | None, where: str) -> None:
    """Adds one CSV row to `result`, or counts why it was skipped."""
    if not row:
        result.skip("empty", where)  # A blank line.
        return
    if any(row[width:]) or len(row) <= max(text_index, label_index):
        result.skip("malformed", where)
        return
    label = _read_label(result, row[label_index], label_separator, where)
    if label is not None:
        result.add(row[text_index].encode("utf-8", errors="surrogateescape"), label, where)


def _read_label(result: LabelledTexts, cell: str, label_separator: str | None,
                where: str) -> str | tuple[str, ...] | None:
    """The class name (or names) of a label cell; None, counted, when there is none."""
    label = cell.strip()
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:  # Lone surrogates: the label's bytes were not UTF-8.
        result.skip("undecodable", where)
        return None
    names, dropped_names = task_labels.read_cell(label, label_separator)
    if names is None:
        result.skip("no_label", where)
    elif dropped_names:
        result.note("empty_class_names", where)
    return names


def _add_task_row(result: LabelledTexts, row: list[str], *, width: int, text_index: int,
                  label_indices: dict[str, int], label_separator: str | None, where: str) -> None:
    """Adds one CSV row of multi-task data to `result`, or counts why it was skipped."""
    if not row:
        result.skip("empty", where)
        return
    if any(row[width:]) or len(row) <= max(text_index, *label_indices.values()):
        result.skip("malformed", where)
        return
    cells = [row[index] for index in label_indices.values()]
    if not all(_is_utf8(cell) for cell in cells):
        result.skip("undecodable", where)
        return
    labels, dropped_names = {}, False
    for task, cell in zip(label_indices, cells):
        labels[task], dropped = task_labels.read_cell(cell, label_separator)
        dropped_names = dropped_names or dropped
    if all(label is None for label in labels.values()):
        result.skip("no_label", where)
        return
    if dropped_names:
        result.note("empty_class_names", where)
    result.add(row[text_index].encode("utf-8", errors="surrogateescape"), labels, where)


def _is_utf8(cell: str) -> bool:
    """False when the cell holds lone surrogates: its bytes were not UTF-8."""
    try:
        cell.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
