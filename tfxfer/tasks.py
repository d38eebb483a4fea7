"""What a classifier's heads predict: the head kinds, and the tasks of a multi-task classifier.

Below both `data` and `models`: loaders say what tasks their label columns
hold, builders make a head for each.

A multi-task classifier (`tasks={"product": 12, "priority": 3}`) ends in one
`predictions_<task>` layer per task after the shared `pooler` and `dropout`,
and its output is a dict `{task: probabilities}`. Its labels are a dict of the
same keys: class ids `(B,)` for a one-label task, multi-hot `(B, C)` for a
multi-label one. An example without a label for a task carries
`MISSING_LABEL` there (the whole row, for multi-label), and that task's loss
and accuracy skip it.
"""

import dataclasses
import enum
import math
import numbers
import re
from collections.abc import Mapping

import numpy as np

from tfxfer.errors import ConfigError


class HeadKind(str, enum.Enum):
    """What the `predictions` layer computes; decides loss, metrics and serving outputs.

    A model's kind is `model.head_kind`, chosen by `num_classes` and `multi_label`
    (2 classes give `BINARY`, one sigmoid unit).

    Example:

    >>> tfxfer.HeadKind("binary")
    <HeadKind.BINARY: 'binary'>
    >>> tfxfer.HeadKind.MULTILABEL == "multilabel"  # a str enum: equal to its value
    True
    """

    MULTICLASS = "multiclass"  # softmax over num_classes, one label per example
    BINARY = "binary"  # one sigmoid unit: P(class 1) of two classes
    MULTILABEL = "multilabel"  # one sigmoid per class, any number of labels


def head_kind_for(num_classes: int, multi_label: bool = False) -> HeadKind:
    """Chooses the head for a task.

    Args:
        num_classes: int. Number of classes; at least 2.
        multi_label: bool. Whether an example may carry several labels.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise ConfigError(
            f"num_classes must be an int, e.g. len(data.class_names). Received: num_classes={num_classes!r}")
    if num_classes < 2:
        raise ConfigError(
            "A classifier needs at least 2 classes (a binary task has 2: pass num_classes=2; for data loaded with "
            "label_columns, len(data.class_names) counts its tasks: pass tasks=data.tasks). "
            f"Received: num_classes={num_classes}"
        )
    if multi_label:
        return HeadKind.MULTILABEL
    return HeadKind.BINARY if num_classes == 2 else HeadKind.MULTICLASS


# Class id (or every multi-hot entry) of an example that has no label for a task.
MISSING_LABEL = -1

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class Task:
    """One head of a multi-task classifier.

    Attributes:
        num_classes: int. Classes of the task (2 gives one sigmoid unit).
        multi_label: bool. An example may carry several of its classes.
        loss_weight: float. Weight of the task's loss in the sum the model trains on.

    Example:

    >>> tfxfer.Task(3, loss_weight=0.5).kind
    <HeadKind.MULTICLASS: 'multiclass'>
    """

    num_classes: int
    multi_label: bool = False
    loss_weight: float = 1.0

    def __post_init__(self):
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, numbers.Integral):
            raise ConfigError(f"A task's num_classes must be an int >= 2. Received: num_classes={self.num_classes!r}")
        # A string such as "false" (a config read from text) would be true, and make a multi-label head silently.
        if not isinstance(self.multi_label, (bool, np.bool_)):
            raise ConfigError("A task's multi_label must be True or False. "
                              f"Received: multi_label={self.multi_label!r} of type {type(self.multi_label).__name__}")
        head_kind_for(self.num_classes, self.multi_label)  # raises for fewer than 2 classes
        weight = self.loss_weight
        # An infinite weight makes the loss infinite, and training stops at its first batch.
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not 0 < weight < math.inf:
            raise ConfigError(f"A task's loss_weight must be a finite number > 0, e.g. 1.0. "
                              f"Received: loss_weight={weight!r}")
        # NumPy scalars (a count from np.unique, say) stored as Python's: the config is JSON.
        object.__setattr__(self, "num_classes", int(self.num_classes))
        object.__setattr__(self, "multi_label", bool(self.multi_label))
        object.__setattr__(self, "loss_weight", float(weight))

    @property
    def kind(self) -> HeadKind:
        """The head this task gets: decides its loss, accuracy and serving outputs."""
        return head_kind_for(self.num_classes, self.multi_label)

    @property
    def units(self) -> int:
        """Units of the task's Dense layer: 1 for a binary task, its classes otherwise."""
        return 1 if self.kind is HeadKind.BINARY else self.num_classes

    def get_config(self) -> dict:
        return dataclasses.asdict(self)


def resolve_tasks(tasks) -> dict[str, Task]:
    """`{name: Task}` from what builders accept: per task a class count, a `Task` or its config dict.

    Names are lowercase identifiers (`[a-z][a-z0-9_]*`): they name layers,
    outputs, serving outputs (`probabilities_<task>`) and files.

    Example:

    >>> tfxfer.tasks.resolve_tasks({"product": 12, "tags": {"num_classes": 5, "multi_label": True}})["tags"]
    Task(num_classes=5, multi_label=True, loss_weight=1.0)
    """
    if not isinstance(tasks, dict) or not tasks:
        raise ConfigError("tasks must be a non-empty dict of task name to class count or tfxfer.Task, e.g. "
                          f"{{'product': 12, 'priority': 3}}. Received: tasks={tasks!r}")
    resolved = {}
    for name, spec in tasks.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError("Task names must be lowercase identifiers (letters, digits, '_', starting with a "
                              f"letter), e.g. 'priority': they name layers and serving outputs. Received: {name!r}")
        if isinstance(spec, dict):
            spec = Task(**spec)
        elif not isinstance(spec, Task):
            spec = Task(spec)
        resolved[name] = spec
    check_log_names(list(resolved), "Rename the task")
    return resolved


def check_log_names(names, rename: str) -> None:
    """Raises a `ConfigError` for task names whose accuracies would be logged under another metric's name.

    The logs hold `<task>_accuracy` and `val_<task>_accuracy`: a task `val`
    logs its training accuracy as `val_accuracy`, the validation accuracy's
    name, and a task `val_<other task>` as the other task's validation
    accuracy. One would overwrite the other, in the history and in what
    early stopping watches.

    Args:
        names: list of str. The task names.
        rename: str. How to rename a task, the start of a sentence: e.g.
            "Rename its label column".
    """
    for name in names:
        other = name[len("val_"):] if name.startswith("val_") else None
        if name == "val" or other in names:
            what = ("the validation accuracy (the tasks' mean)" if name == "val"
                    else f"task {other!r}'s validation accuracy")
            raise ConfigError(
                f"Task {name!r} would log its training accuracy as {name}_accuracy, the name of {what}: one would "
                f"overwrite the other in the logs and history. {rename}, e.g. to {name + '_task'!r}. "
                f"Received: tasks {list(names)}")


def model_tasks(model) -> dict[str, Task] | None:
    """The tasks of a multi-task classifier; None for a one-head model."""
    return getattr(model, "tasks", None) or None


def check_one_head_labels(labels, name: str) -> None:
    """Raises a `ConfigError` if `labels` (a batch's, or their spec) are a dict per task, which a model with one head
    cannot take: what tfxfer's loaders give with `label_columns`, even for one column."""
    if isinstance(labels, Mapping):
        first = sorted(labels)[0] if labels else "task"
        raise ConfigError(
            f"The model has one head, but {name}'s labels are a dict with an entry per task, as tfxfer's loaders give "
            "them with label_columns. Build the model with tasks=data.tasks (a head per task), or keep one task's "
            f"labels, dataset.map(lambda inputs, labels: (inputs, labels[{first!r}])), and its class names. "
            f"Received: {name} labels of the tasks {sorted(labels)}")


def unique_class_names(class_names) -> list[str]:
    """`class_names` as strings; a `ConfigError` if a name is given twice, which no report or prediction could
    tell apart from the other (the export and the evaluation refuse such names alike)."""
    class_names = [str(name) for name in class_names]
    duplicates = sorted({name for name in class_names if class_names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"Class names must be unique: each names one column of the probabilities; rename the "
                          f"repeated ones. Received: {duplicates} more than once in {class_names}")
    return class_names
