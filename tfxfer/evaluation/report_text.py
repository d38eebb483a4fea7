"""`format_report`: a `classification_report` dict as a plain-text table for a console or a log.

Every line stays under `MAX_LINE` characters whatever the class names: long
names are cut with an ellipsis, long lists are wrapped. A confusion matrix of 50
classes does not fit a console, so the text shows the most confused pairs
instead; the whole matrix stays in the report (`metrics.json`). A multi-task
report (`metrics.multi_task_report`) gets a section per task.
"""

import textwrap
from collections.abc import Mapping

import numpy as np

from tfxfer.errors import ConfigError

MAX_LINE = 119
NAME_WIDTH = 40  # Longest class name shown whole.
CONFUSED_PAIRS = 10  # How many of the most confused (true, predicted) pairs are shown.
_NUMBER = 9  # Width of a score column.
# The keys of every report the text reads whatever its kind: classification_report's, or multi_task_report's.
_REPORT_KEYS = ("task", "num_examples", "num_classes", "class_names", "per_class", "classes_without_examples")
_MULTI_TASK_KEYS = ("tasks", "num_examples")


def format_report(report: dict) -> str:
    """A readable table of `report` (from `tfxfer.evaluation.metrics.classification_report`).

    A multi-task report (`multi_task_report`, e.g. from `evaluate_model` of a
    multi-task classifier) gets a summary line, then a section per task headed
    `== Task <name> ==`, each the table below of that task's examples, with how
    many examples had no label for the task and were left out.

    Per-class precision, recall, F1 and support rows, the averages, accuracy
    (single-label: top-k accuracy, ROC AUC and PR AUC when the report has them;
    multi-label: subset and label accuracy at its threshold), classes without
    examples, for single-label tasks the `CONFUSED_PAIRS` most confused pairs
    ("true -> predicted: count"), and skipped inputs when the report lists them.

    Args:
        report: dict. A report from `classification_report` (or `evaluate_model`,
            `evaluate_export`).

    Returns:
        str. Lines joined by "\\n", each at most `MAX_LINE` characters, without a final newline.

    Raises:
        ConfigError: `report` is not such a report (another dict, or no dict).

    Example:

    ```python
    print(format_report(classification_report(labels, probabilities, class_names)))
    ```
    """
    _check_report(report)
    if "tasks" in report:
        return _multi_task_text(report)
    multi_label = report["task"] == "multilabel"
    width = max([len("weighted avg")] + [len(_short(name)) for name in report["class_names"]])
    lines = [f"Evaluated {report['num_examples']} examples of {report['num_classes']} classes"
             + (f" (multi-label, threshold {report['threshold']:g})" if multi_label else "") + "."]
    lines += ["", _row("class", width, ("precision", "recall", "f1", "support"))]
    for name in report["class_names"]:
        scores = report["per_class"][name]
        lines.append(_row(_short(name), width, _scores(scores) + (str(scores["support"]),)))
    total = str(sum(scores["support"] for scores in report["per_class"].values()))
    for average in ("micro", "macro", "weighted"):
        if average in report:
            lines.append(_row(f"{average} avg", width, _scores(report[average]) + (total,)))
    lines.append("")
    lines += _headline(report)
    if report["classes_without_examples"]:
        lines += _wrapped(f"Classes without examples (precision/recall 0 by convention, left out of the macro "
                          f"average): {', '.join(_short(name) for name in report['classes_without_examples'])}")
    if not multi_label:
        lines += _confused_pairs(report)
    lines += _skipped_files(report) + _copies(report)
    return "\n".join(line.rstrip() for line in lines)


def _check_report(report):
    """A ConfigError naming what `format_report` takes, for anything but a report: another dict would fail on a
    missing key, with a bare KeyError."""
    keys = _MULTI_TASK_KEYS if isinstance(report, Mapping) and "tasks" in report else _REPORT_KEYS
    if isinstance(report, Mapping) and all(key in report for key in keys):
        return
    if isinstance(report, Mapping):
        missing = ", ".join(repr(key) for key in keys if key not in report)
        received = f"a dict without {missing} (its keys: {list(report)[:10]})"
    else:
        received = f"report of type {type(report).__name__}"
    raise ConfigError("report must be a report dict as classification_report, evaluate_model or evaluate_export "
                      "return it (a multi-task one too, with a report per task under 'tasks'); format_report shows "
                      f"nothing else. Received: {received}")


def _multi_task_text(report):
    """A summary line, then each task's table under a heading of its own."""
    tasks = report["tasks"]
    mean = "" if report.get("accuracy") is None else f"; mean accuracy {report['accuracy']:.4f}"
    lines = _wrapped(f"Evaluated {report['num_examples']} examples on {len(tasks)} tasks "
                     f"({', '.join(_short(task) for task in tasks)}){mean}.")
    for task, task_report in tasks.items():
        heading = f"== Task {_short(task)} ({task_report['task']}, {task_report['num_classes']} classes) =="
        lines += ["", heading]
        missing = task_report.get("missing_labels", 0)
        if missing:
            lines.append(f"Left out {missing} example{'s' if missing != 1 else ''} without a {_short(task)} label.")
        if task_report["num_examples"]:
            lines += format_report(task_report).split("\n")
        else:
            lines.append(f"No example has a {_short(task)} label: nothing to report.")
    lines += _skipped_files(report) + _copies(report)
    return "\n".join(line.rstrip() for line in lines)


def _skipped_files(report):
    if not report.get("skipped_files"):
        return []
    skipped = report["skipped_files"]
    examples = ", ".join(_short(str(path), 60) for path in skipped[:3])
    inputs = "input" if len(skipped) == 1 else "inputs"
    return [""] + _wrapped(f"Skipped {len(skipped)} {inputs} the model could not read, e.g. {examples}")


def _copies(report):
    """Lines on the exact copies among the inputs and of training examples (`exact_copies`), or none without."""
    copies = report.get("exact_copies") or {}
    sentences = []
    if copies.get("copies"):
        inputs = "input is an exact copy" if copies["copies"] == 1 else "inputs are exact copies"
        differ = copies["groups_with_different_labels"]
        carry = "group carries" if differ == 1 else "groups carry"
        labels = f"; {differ} {carry} different labels (see the log)" if differ else ""
        groups = "1 group" if copies["copy_groups"] == 1 else f"{copies['copy_groups']} groups"
        sentences.append(f"{copies['copies']} {inputs} of another ({groups}), each scored again{labels}.")
    if copies.get("copies_of_training"):
        inputs = ("input is an exact copy of a training example" if copies["copies_of_training"] == 1
                  else "inputs are exact copies of training examples")
        sentences.append(f"{copies['copies_of_training']} {inputs}, scored as unseen: the scores overstate the "
                         "model on new data (see the log).")
    return [""] + _wrapped(" ".join(sentences)) if sentences else []


def _headline(report):
    """The one-number metrics, one per line."""
    if report["task"] == "multilabel":
        return [f"subset accuracy   {report['subset_accuracy']:.4f}  (every class of an example right)",
                f"label accuracy    {report['label_accuracy']:.4f}  (1 - Hamming loss)"]
    lines = [f"accuracy          {report['accuracy']:.4f}"]
    if "top_k_accuracy" in report:
        lines.append(f"top-{report['top_k']} accuracy    {report['top_k_accuracy']:.4f}")
    if "roc_auc" in report:
        positive = _short(report["positive_class"])
        if report["roc_auc"] is None:
            lines += _wrapped(f"ROC AUC, PR AUC    undefined: {report['auc_undefined']}")
        else:
            lines += [f"ROC AUC           {report['roc_auc']:.4f}",
                      f"PR AUC            {report['pr_auc']:.4f}  (average precision of {positive})"]
    return lines


def _confused_pairs(report):
    """The most frequent mistakes, "true -> predicted: count", most frequent first."""
    matrix = np.asarray(report["confusion_matrix"])
    mistakes = matrix.copy()
    np.fill_diagonal(mistakes, 0)
    if not mistakes.any():
        return ["", "No confusions: every example was predicted as its own class."]
    rows, columns = np.nonzero(mistakes)
    # Most frequent first; ties in class order, so the text is the same on every run.
    order = sorted(zip(-mistakes[rows, columns], rows, columns))[:CONFUSED_PAIRS]
    names = report["class_names"]
    shown = len(order)
    lines = ["", f"Most confused (true -> predicted: count, {shown} of {len(rows)} pairs):"]
    for count, true, predicted in order:
        lines.append(f"  {_short(names[true])} -> {_short(names[predicted])}: {-count}")
    return lines


def _scores(scores):
    return tuple("-" if scores[key] is None else f"{scores[key]:.3f}" for key in ("precision", "recall", "f1"))


def _row(name, width, cells):
    return name.ljust(width) + "".join(cell.rjust(_NUMBER + 1) for cell in cells)


def _short(name, limit=NAME_WIDTH):
    """`name`, cut to `limit` characters with an ellipsis when longer."""
    return name if len(name) <= limit else name[:limit - 1] + "…"


def _wrapped(text):
    return textwrap.wrap(text, width=MAX_LINE, subsequent_indent="  ", break_long_words=True)
