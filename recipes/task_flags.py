"""Multi-task flags both recipes share: `--label_columns` and `--task_loss_weights`.

With `--label_columns=product,priority`, the data is a CSV/TSV with a label
column per task, and the recipe builds one head per task on the shared backbone
(`tfxfer.tasks`); the export answers every task in one call.
"""

import math

import training_flags
from absl import app, flags

import tfxfer
from tfxfer.data import task_labels

flags.DEFINE_list("label_columns", None,
                  "CSV/TSV data with several label columns: one task (and head) per column, e.g. "
                  "--label_columns=product,priority. A cell left empty means the example has no label for that "
                  "task: it adds nothing to that task's loss. Tasks are named by their columns (lower-cased, "
                  "other characters than a-z, 0-9 and _ as _).")
flags.DEFINE_list("task_loss_weights", None,
                  "With --label_columns: weight of each task's loss, as task=weight, e.g. priority=0.5; "
                  "unlisted tasks weigh 1.")
FLAGS = flags.FLAGS
# The flags that work on the tasks of --label_columns, and what each does (`training_flags.refuse_without`):
# without it they would do nothing. Each recipe adds its own.
_TASK_FLAGS = {"task_loss_weights": "weighs the tasks of"}


def check_flags(*refused: str, needing: dict[str, str] | None = None) -> None:
    """Usage errors of the task flags, before any work.

    refused: str. The recipe's flags that multi-task runs do not take.
    needing: dict. The recipe's own flags that do nothing without --label_columns, and what each does
        (`_TASK_FLAGS` are checked too).
    """
    training_flags.refuse_without("label_columns", {**_TASK_FLAGS, **(needing or {})},
                                  how="--label_columns=COLUMN[,COLUMN...]")
    if not FLAGS.label_columns:
        return
    for name in refused:
        if FLAGS[name].present:
            raise app.UsageError(f"--{name} works on a one-head model, and --label_columns trains a head per task; "
                                 f"leave one of them out. Received: --{name}={FLAGS[name].value}")
    # Checked now, from the columns' task names: the data is read (images decoded) before the model is built.
    tasks = list(task_labels.task_columns(FLAGS.label_columns))
    _check_weighed_tasks(_loss_weights(), tasks)


def head_arguments(data) -> dict:
    """The builders' head arguments for `data`: `tasks` (with `--task_loss_weights`) for multi-task data,
    else `num_classes` (and `multi_label` where the data says)."""
    if not getattr(data, "tasks", None):
        return {"num_classes": len(data.class_names)}
    weights = _loss_weights()
    _check_weighed_tasks(weights, list(data.tasks))
    return {"tasks": {name: tfxfer.Task(task.num_classes, task.multi_label, weights.get(name, 1.0))
                      for name, task in data.tasks.items()}}


def _check_weighed_tasks(weights: dict[str, float], tasks: list[str]) -> None:
    """A usage error for a task of --task_loss_weights that is none of `tasks` (the data's, in column order)."""
    unknown = [name for name in weights if name not in tasks]
    if unknown:
        raise app.UsageError(f"--task_loss_weights names tasks the data does not have; its tasks are {tasks} (the "
                             "--label_columns lower-cased, other characters than a-z, 0-9 and _ as _). "
                             f"Received: {unknown}")


def _loss_weights() -> dict[str, float]:
    weights = {}
    for entry in FLAGS.task_loss_weights or ():
        name, _, value = entry.partition("=")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            raise app.UsageError("--task_loss_weights takes task=weight entries, e.g. priority=0.5. "
                                 f"Received: {entry!r}") from None
        # 0 would drop the task's loss and leave its head untrained; inf or nan stop training at the first batch.
        if not 0 < weight < math.inf:
            raise app.UsageError("--task_loss_weights takes a finite weight > 0 per task, e.g. priority=0.5 (to "
                                 f"leave a task out, leave its column out of --label_columns). Received: {entry!r}")
        if name in weights:
            raise app.UsageError(f"--task_loss_weights weighs task {name!r} twice; give each task one weight. "
                                 f"Received: --task_loss_weights={','.join(FLAGS.task_loss_weights)}")
        weights[name] = weight
    return weights
