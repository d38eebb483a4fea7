"""Labels of multi-task data: one CSV/TSV label column per task, any of them may be empty.

Text (`load_text_data(..., label_columns=[...])`) and image
(`load_image_csv`) loaders read the same kind of table: each label column is a
task, named after its header (`tfxfer.tasks` task names), and an empty
cell means the example has no label for that task. Readers keep each row's
labels as a dict `{task: class name, tuple of names (multi-label) or None}`;
this module turns those rows into what training reads:

- class names per task, sorted, from the training rows;
- `{task: np.ndarray}` labels: int64 class ids `(N,)` with `MISSING_LABEL`
  (-1) where a row has no label, or float32 multi-hot `(N, C)` with a row of
  -1.0 there;
- `{task: Task}`, and the labelled training examples per class of each task.
"""

import re
from collections.abc import Sequence

import numpy as np
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.tasks import MISSING_LABEL, Task, check_log_names

_NOT_NAME = re.compile(r"[^a-z0-9_]")


def task_name(column: str) -> str:
    """The task name of a label column: its header lower-cased, every character other than
    `[a-z0-9_]` replaced by `_`, prefixed `t_` when it does not start with a letter.

    Example:

    >>> task_name("Product Line")
    'product_line'
    >>> task_name("2nd-opinion")
    't_2nd_opinion'
    """
    name = _NOT_NAME.sub("_", column.strip().lower())
    return name if name[:1].isalpha() else "t_" + name


def task_columns(label_columns) -> dict[str, str]:
    """`{task name: column}` of `label_columns`, in their order, checked.

    Raises:
        ConfigError: `label_columns` is not a non-empty list of non-empty
            strings, two columns give one task name, or a task name would
            log its accuracy under another's name (`tfxfer.tasks.check_log_names`).
    """
    if isinstance(label_columns, str) or not isinstance(label_columns, Sequence) or not label_columns or not all(
            isinstance(column, str) and column for column in label_columns):
        raise ConfigError(
            "label_columns must be a non-empty list of column headers, one per task, e.g. "
            f"['product', 'priority'] (a list even for one column). Received: label_columns={label_columns!r}")
    columns = {}
    for column in label_columns:
        name = task_name(column)
        if name in columns:
            raise ConfigError(
                f"Label columns {columns[name]!r} and {column!r} both give the task name {name!r} (headers are "
                "lower-cased and other characters than letters, digits and '_' become '_'). Rename one of the "
                f"columns, or list it once. Received: label_columns={list(label_columns)!r}")
        columns[name] = column
    # Now, before any file is read: the model built on these tasks would refuse the names.
    check_log_names(list(columns), "Rename its label column (tasks are named after their headers)")
    return columns


def read_cell(cell: str, label_separator: str | None) -> tuple[str | tuple[str, ...] | None, bool]:
    """The class name (or names) of one label cell, None when it holds none, and whether empty
    names were dropped (`billing||urgent`).

    With `label_separator`, names are stripped and duplicates dropped, in order.
    """
    label = cell.strip()
    if label_separator is None:
        return label or None, False
    parts = [name.strip() for name in label.split(label_separator)]
    names = tuple(dict.fromkeys(name for name in parts if name))
    return names or None, bool(names) and "" in parts


def warn_if_separator_splits_nothing(labels: Sequence, label_separator: str | None, source: str) -> None:
    """Warns when `label_separator` split no label cell into several class names.

    Multi-label data reads as multi-label however its cells look, so a
    separator mistaken for the CSV's own delimiter would otherwise turn
    one-class-per-row data into a sigmoid model with a threshold, silently.

    Args:
        labels: Sequence. The rows' labels as `read_cell` gave them: tuples of
            names or None, or for multi-task rows `{task: names or None}`.
    """
    if label_separator is None:
        return
    cells = (cell for label in labels for cell in (label.values() if isinstance(label, dict) else (label,)))
    if any(cell is not None and len(cell) > 1 for cell in cells):
        return
    logging.warning(
        "label_separator=%r split no label cell of %s into several class names: every labelled example has one "
        "class, yet the model will be multi-label (a sigmoid per class and a threshold). If each example has "
        "exactly one class, leave label_separator (--label_separator) out; it separates class names inside a "
        "label cell, not the file's columns.", label_separator, source)


def class_names(rows: Sequence[dict], tasks: Sequence[str], multi_label: bool) -> dict[str, list[str]]:
    """`{task: sorted class names}` seen in `rows` (each `{task: label or None}`)."""
    seen = {task: set() for task in tasks}
    for row in rows:
        for task, label in row.items():
            if label is not None:
                seen[task].update(label if multi_label else (label,))
    return {task: sorted(names) for task, names in seen.items()}


def check_class_names(names: dict[str, list[str]], columns: dict[str, str], source: str, what: str,
                      note: str = "") -> None:
    """Raises a ConfigError naming each task with fewer than 2 classes: a head cannot learn one class.

    note: str. Appended to the message, e.g. what was skipped reading `source`.
    """
    few = {task: task_names for task, task_names in names.items() if len(task_names) < 2}
    if few:
        listed = ", ".join(f"{task!r} (column {columns[task]!r}): {task_names}" for task, task_names in few.items())
        raise ConfigError(
            f"Every task needs labelled {what} of at least 2 classes. Add {what} of other classes, or drop the "
            f"column from label_columns. Received in {source!r}: {listed}{note}")


def encode(rows: Sequence[dict], names: dict[str, list[str]], multi_label: bool) -> dict[str, np.ndarray]:
    """`{task: labels}`: int64 class ids `(N,)`, or float32 multi-hot `(N, C)`; MISSING_LABEL where a row has none."""
    encoded = {}
    for task, task_names in names.items():
        index = {name: i for i, name in enumerate(task_names)}
        if multi_label:
            labels = np.zeros((len(rows), len(task_names)), np.float32)
            for i, row in enumerate(rows):
                if row[task] is None:
                    labels[i] = MISSING_LABEL
                else:
                    labels[i, [index[name] for name in row[task]]] = 1.0
        else:
            labels = np.asarray([MISSING_LABEL if row[task] is None else index[row[task]] for row in rows],
                                np.int64).reshape(len(rows))
        encoded[task] = labels
    return encoded


def carries(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """bool `(N, C)`: whether each example is labelled with each class (False where it has no label)."""
    if labels.ndim == 2:
        return labels > 0
    return labels[:, None] == np.arange(num_classes)[None, :]


def membership(labels: dict[str, np.ndarray], names: dict[str, list[str]]) -> np.ndarray:
    """bool `(N, K)`: `carries` of every task side by side, what `splits.split_for_tasks` stratifies."""
    return np.concatenate([carries(labels[task], len(names[task])) for task in names], axis=1)


def class_counts(labels: dict[str, np.ndarray], names: dict[str, list[str]]) -> dict[str, list[int]]:
    """`{task: [labelled examples per class]}`, in class-name order."""
    return {task: [int(count) for count in carries(labels[task], len(names[task])).sum(axis=0)] for task in names}


def make_tasks(names: dict[str, list[str]], multi_label: bool) -> dict[str, Task]:
    """`{task: Task(num_classes, multi_label)}`, what `build_*_classifier(tasks=...)` takes."""
    return {task: Task(len(task_names), multi_label=multi_label) for task, task_names in names.items()}


def take(labels: dict[str, np.ndarray], indices: np.ndarray) -> dict[str, np.ndarray]:
    """The rows `indices` of every task's labels."""
    return {task: values[indices] for task, values in labels.items()}


def warn_tasks_unlabelled_in_validation(labels: dict[str, np.ndarray], columns: dict[str, str], source: str,
                                        what: str) -> None:
    """Warns about tasks that no validation example is labelled for: their validation accuracy measures nothing.

    The split keeps every class of every task in training, so a task labelled
    on a few examples can end with none of them held out, and early stopping
    (`val_loss`) then watches the other tasks only.

    Args:
        labels: dict. `{task: labels}` of the validation examples (`encode`'s).
        columns: dict. `{task: column}`, for the message.
        source: str. The file read, for the message.
        what: str. What the examples are ("images", "texts").
    """
    unlabelled = [task for task, count in labelled_counts(labels).items() if not count]
    if unlabelled:
        logging.warning(
            "No validation %s of %s has a label of the task(s) %s: every %s labelled for them is in training, so "
            "their val_<task>_accuracy measures nothing and val_loss leaves them out. Label more %s for them, or "
            "raise validation_split.", what[:-1], source,
            ", ".join(f"{task!r} (column {columns[task]!r})" for task in unlabelled), what[:-1], what)


def labelled_counts(labels: dict[str, np.ndarray]) -> dict[str, int]:
    """`{task: examples with a label for the task}`, for the log."""
    return {task: int(np.sum(values != MISSING_LABEL) if values.ndim == 1
                      else np.sum(np.any(values != MISSING_LABEL, axis=1)))
            for task, values in labels.items()}
