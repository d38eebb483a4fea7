"""`classification_report`: what a classifier gets right and wrong, per class, as a JSON-ready dict.

Every number comes from scikit-learn, so it means what sklearn's documentation
says. `multi_task_report` gives a multi-task classifier one such report per task,
each on the examples labelled for that task. Values are plain Python ints, floats, strings, lists and dicts (and None
where a metric is undefined), ready for `json.dumps`.
"""

import numbers
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn import metrics as skm

from tfxfer.errors import ConfigError
from tfxfer.tasks import MISSING_LABEL, unique_class_names

MULTICLASS, BINARY, MULTILABEL = "multiclass", "binary", "multilabel"  # the values of HeadKind


def classification_report(
    labels: Sequence | np.ndarray,
    probabilities: Sequence | np.ndarray,
    class_names: Sequence[str],
    *,
    multi_label: bool = False,
    threshold: float = 0.5,
    top_k: int = 5,
) -> dict:
    """Accuracy, per-class and averaged precision/recall/F1, confusion matrix (and AUCs) of predictions.

    Single-label: the predicted class is the most probable one (the export's
    `class_ids`; for a binary task, P(class 1) > 0.5, ties going to class 0).
    Multi-label: a class is predicted when its probability is above `threshold`
    (`>`, as Keras' binary metrics count it).

    Classes without examples keep their row (precision 0 when they were
    predicted, and 0 for the undefined values: sklearn's `zero_division=0`)
    and are listed in `classes_without_examples`; the macro averages are over
    the classes with examples only, so evaluating on a subset of the classes is
    not dragged down by classes that were never asked for. The weighted
    averages weigh each class by its support.

    Args:
        labels: int class ids `(N,)` (single-label), or multi-hot 0/1 `(N, C)` (multi-label).
        probabilities: `(N, C)` class probabilities; a binary head's `(N, 1)` P(class 1)
            is taken as `(N, 2)` `[1 - p, p]`.
        class_names: sequence of str. The C class names, in class-id order.
        multi_label: bool. Whether an example may carry several classes.
        threshold: float. Multi-label only: the probability above which a class is predicted.
        top_k: int. Single-label only: `top_k_accuracy` counts an example right when its
            class is among the k most probable; reported only when 1 < k < C (k = 1 is
            the accuracy; with k >= C it is always 1).

    Returns:
        A dict. Every report has `task` ("multiclass", "binary" or "multilabel"),
        `num_examples`, `num_classes`, `class_names`, `per_class` ({name: {precision,
        recall, f1, support}}, in class order), `macro` and `weighted` ({precision,
        recall, f1}) and `classes_without_examples`.
        Single-label reports add `accuracy`, `confusion_matrix` (rows: true class,
        columns: predicted class, both in `class_names` order), and `top_k` with
        `top_k_accuracy` when 1 < k < C. Binary ones add `positive_class` (class_names[1]),
        `roc_auc` and `pr_auc` (average precision of the positive class), both None
        with `auc_undefined` saying why when the labels hold only one class.
        Multi-label reports add `threshold`, `subset_accuracy` (every class of an
        example right), `label_accuracy` (1 - Hamming loss), `micro` ({precision,
        recall, f1}), and per class also `true_positives`, `false_positives`,
        `false_negatives` and `true_negatives` (no C x C confusion matrix: with
        several classes per example there is no single "predicted instead").

    Raises:
        ConfigError: no examples; shapes that do not match each other or
            `class_names`; labels outside the classes, or class names rather than
            class ids; probabilities that are not finite.

    Example:

    >>> report = tfxfer.classification_report([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], ["cat", "dog"])
    >>> report["accuracy"], report["per_class"]["dog"]["recall"], report["confusion_matrix"]
    (0.666..., 0.5, [[1, 0], [1, 1]])
    >>> report["roc_auc"]  # dog's probabilities 0.7 and 0.4 against cat's 0.2: both pairs ranked right
    1.0
    """
    class_names = unique_class_names(class_names)
    probabilities = _check_probabilities(probabilities, len(class_names), multi_label)
    if multi_label:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be a probability in [0, 1]. Received: threshold={threshold!r}")
        return _multi_label_report(_multi_hot(labels, probabilities.shape), probabilities, class_names, threshold)
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ConfigError(f"top_k must be a positive integer. Received: top_k={top_k!r}")
    return _single_label_report(_class_ids(labels, probabilities.shape), probabilities, class_names, int(top_k))


def multi_task_report(
    labels: Mapping[str, Sequence | np.ndarray],
    probabilities: Mapping[str, Sequence | np.ndarray],
    class_names: Mapping[str, Sequence[str]],
    multi_label: Mapping[str, bool],
    *,
    threshold: float = 0.5,
    top_k: int = 5,
) -> dict:
    """One `classification_report` per task of a multi-task classifier, each on the examples labelled for it.

    An example whose label for a task is `MISSING_LABEL` (-1; a row of -1 for a
    multi-label task) is left out of that task's report only, and counted in its
    `missing_labels`.

    Args:
        labels: dict `{task: labels}`: class ids `(N,)`, or multi-hot `(N, C)` for a
            multi-label task, with `MISSING_LABEL` where an example has no label.
        probabilities: dict `{task: (N, C) probabilities}` (a binary task's `(N, 1)` P(class 1) too).
        class_names: dict `{task: class names in class-id order}`.
        multi_label: dict `{task: bool}`. Whether the task's examples may carry several classes.
        threshold: float. Multi-label tasks: the probability above which a class is predicted.
        top_k: int. Single-label tasks: k of `top_k_accuracy`.

    Returns:
        A dict: `tasks` (`{task: report}`, in the order of `class_names`), `num_examples` (all the
        examples, labelled or not) and `accuracy`: the mean over the tasks with labelled examples
        of their `accuracy` (multi-label tasks: `label_accuracy`), as training logs `accuracy`.
        Each task's report is `classification_report`'s, plus `missing_labels`; a task without
        any labelled example gets only `task`, `num_examples` (0), `num_classes`, `class_names`
        and `missing_labels`.

    Raises:
        ConfigError: the dicts name different tasks, tasks of different example counts, or
            any of `classification_report`'s errors (naming the task).

    Example:

    >>> report = tfxfer.evaluation.metrics.multi_task_report(
    ...     {"species": [0, 1, -1], "grade": [1, 1, 0]},
    ...     {"species": [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], "grade": [[0.7], [0.4], [0.1]]},
    ...     {"species": ["cat", "dog"], "grade": ["low", "high"]}, {"species": False, "grade": False})
    >>> report["tasks"]["species"]["num_examples"], report["tasks"]["species"]["missing_labels"]
    (2, 1)
    >>> report["tasks"]["grade"]["accuracy"], report["accuracy"]
    (0.666..., 0.833...)
    """
    if not isinstance(class_names, Mapping) or not class_names:
        raise ConfigError("class_names must be a non-empty dict of task name to its class names, e.g. "
                          f"{{'species': ['cat', 'dog']}}. Received: {class_names!r}")
    names = list(class_names)
    _check_same_tasks(names, labels=labels, probabilities=probabilities, multi_label=multi_label)
    sizes = {task: len(np.asarray(probabilities[task])) for task in names}
    if len(set(sizes.values())) > 1:
        raise ConfigError(f"Every task must have the probabilities of the same examples. Received: examples per "
                          f"task {sizes}")
    reports = {}
    for task in names:
        try:
            reports[task] = _task_report(labels[task], probabilities[task], class_names[task],
                                         bool(multi_label[task]), threshold, top_k)
        except ConfigError as error:
            raise ConfigError(f"Task {task!r}: {error}") from error
    scores = [report.get("label_accuracy", report.get("accuracy")) for report in reports.values()
              if report["num_examples"]]
    return {"tasks": reports, "num_examples": next(iter(sizes.values()), 0),
            "accuracy": float(np.mean(scores)) if scores else None}


def _task_report(labels, probabilities, class_names, multi_label, threshold, top_k):
    """`classification_report` of the examples labelled for one task, with `missing_labels` counted."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    if len(labels) != len(probabilities):
        raise ConfigError(f"Pass one label per example. Received: {len(labels)} labels for "
                          f"{len(probabilities)} examples")
    if not multi_label and labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]  # (N, 1) int labels, as some datasets batch them.
    missing = labels == MISSING_LABEL
    if labels.ndim == 2:  # Multi-hot rows: missing when the whole row is.
        missing = missing.all(axis=1)
    elif labels.ndim != 1:
        missing = np.zeros(len(labels), bool)  # classification_report says what is wrong with the shape.
    labelled = ~missing
    if not labelled.any():
        kind = MULTILABEL if multi_label else BINARY if len(class_names) == 2 else MULTICLASS
        return {"task": kind, "num_examples": 0, "num_classes": len(class_names),
                "class_names": unique_class_names(class_names), "missing_labels": int(missing.sum())}
    report = classification_report(labels[labelled], probabilities[labelled], class_names,
                                   multi_label=multi_label, threshold=threshold, top_k=top_k)
    return {**report, "missing_labels": int(missing.sum())}


def _check_same_tasks(names, **by_argument):
    for argument, values in by_argument.items():
        if not isinstance(values, Mapping) or set(values) != set(names):
            received = sorted(values) if isinstance(values, Mapping) else type(values).__name__
            raise ConfigError(f"{argument} must be a dict with one entry per task, as class_names has: "
                              f"{sorted(names)}. Received: {argument} of {received}")


def _single_label_report(y_true, probabilities, class_names, top_k):
    num_classes = len(class_names)
    y_pred = np.argmax(probabilities, axis=1)
    every_class = list(range(num_classes))
    support = np.bincount(y_true, minlength=num_classes)
    report = {
        "task": BINARY if num_classes == 2 else MULTICLASS,
        **_common(class_names, len(y_true), y_true, y_pred, support),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=every_class).tolist(),
    }
    if 1 < top_k < num_classes:  # k = 1 is the accuracy; k >= C always 1.
        report["top_k"] = top_k
        report["top_k_accuracy"] = float(skm.top_k_accuracy_score(y_true, probabilities, k=top_k, labels=every_class))
    if num_classes == 2:
        report.update(_binary_aucs(y_true, probabilities[:, 1], class_names))
    return report


def _multi_label_report(y_true, probabilities, class_names, threshold):
    y_pred = (probabilities > threshold).astype(np.int64)
    support = y_true.sum(axis=0)
    report = {
        "task": MULTILABEL,
        **_common(class_names, len(y_true), y_true, y_pred, support),
        "threshold": float(threshold),
        "subset_accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "label_accuracy": float(1.0 - skm.hamming_loss(y_true, y_pred)),
        "micro": _averages(y_true, y_pred, "micro", list(range(len(class_names)))),
    }
    # (C, 2, 2) of [[tn, fp], [fn, tp]] per class.
    for name, ((tn, fp), (fn, tp)) in zip(class_names, skm.multilabel_confusion_matrix(y_true, y_pred)):
        report["per_class"][name].update(
            true_positives=int(tp), false_positives=int(fp), false_negatives=int(fn), true_negatives=int(tn))
    return report


def _common(class_names, num_examples, y_true, y_pred, support):
    """What single- and multi-label reports share: sizes, names, per-class and averaged scores."""
    every_class = list(range(len(class_names)))
    present = [i for i in every_class if support[i] > 0]
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=every_class, average=None, zero_division=0)
    return {
        "num_examples": int(num_examples),
        "num_classes": len(class_names),
        "class_names": list(class_names),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        # Over the classes with examples: see classification_report.
        "macro": _averages(y_true, y_pred, "macro", present),
        "weighted": _averages(y_true, y_pred, "weighted", every_class),
        "classes_without_examples": [class_names[i] for i in every_class if support[i] == 0],
    }


def _averages(y_true, y_pred, average, classes):
    if not classes:  # Multi-label data where no example carries any class.
        return {"precision": None, "recall": None, "f1": None}
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=average, zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def _binary_aucs(y_true, positive_scores, class_names):
    """ROC AUC and PR AUC (average precision) of the positive class, class_names[1]."""
    aucs = {"positive_class": class_names[1]}
    if len(np.unique(y_true)) < 2:
        only = class_names[int(y_true[0])]
        return {**aucs, "roc_auc": None, "pr_auc": None,
                "auc_undefined": f"every example is of class {only!r}; ROC AUC and PR AUC need examples of both "
                                 "classes"}
    is_positive = (y_true == 1).astype(np.int64)
    return {**aucs, "roc_auc": float(skm.roc_auc_score(is_positive, positive_scores)),
            "pr_auc": float(skm.average_precision_score(is_positive, positive_scores))}


def _check_probabilities(probabilities, num_classes, multi_label):
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ConfigError(f"probabilities must be a 2-D (examples, classes) array. "
                          f"Received: shape {probabilities.shape}")
    if not len(probabilities):
        raise ConfigError("There are no examples to evaluate: pass at least one labelled example. "
                          f"Received: probabilities of shape {probabilities.shape}")
    if probabilities.shape[1] == 1 and num_classes == 2 and not multi_label:
        # A binary head's single sigmoid unit is P(class 1), as the export's serving graph reads it.
        probabilities = np.concatenate([1.0 - probabilities, probabilities], axis=1)
    if probabilities.shape[1] != num_classes:
        raise ConfigError(
            f"probabilities must have one column per class name (or one column, P(class 1), for 2 classes). "
            f"Received: {probabilities.shape[1]} columns for {num_classes} class names")
    if not multi_label and num_classes < 2:
        raise ConfigError(f"A single-label task needs at least 2 classes. Received: class_names of {num_classes}")
    if not np.isfinite(probabilities).all():
        raise ConfigError("probabilities must be finite numbers; the model produced NaN or infinity for "
                          f"{int((~np.isfinite(probabilities)).any(axis=1).sum())} examples. Received: non-finite "
                          "values")
    return probabilities


def _class_ids(labels, shape):
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]  # (N, 1) int labels, as some datasets batch them.
    if labels.ndim != 1 or len(labels) != shape[0]:
        raise ConfigError(
            f"Single-label labels must be one class id per example, shape ({shape[0]},) to match the "
            f"probabilities: for one-hot rows, their argmax (np.argmax(labels, axis=-1)); a multi-label model, "
            f"with several classes per example, is evaluated with multi_label=True. "
            f"Received: labels of shape {labels.shape}")
    if labels.dtype == object and all(isinstance(label, numbers.Real) for label in labels):
        labels = labels.astype(np.float64)  # numbers held as objects, e.g. by a pandas object column
    if labels.dtype.kind not in "biuf":  # class names (str), or other values np.mod cannot take
        raise ConfigError(
            f"Labels are class ids here (ints from 0 to {shape[1] - 1}, in class_names order), not class names or "
            f"other values: turn names into ids with [class_names.index(name) for name in labels]. "
            f"Received: e.g. {labels[:3].tolist()}")
    if not np.all(np.equal(np.mod(labels, 1), 0)):
        raise ConfigError(f"Labels must be integer class ids. Received: e.g. {labels[np.mod(labels, 1) != 0][:3]}")
    labels = labels.astype(np.int64)
    outside = labels[(labels < 0) | (labels >= shape[1])]
    if len(outside):
        raise ConfigError(f"Labels must be class ids in [0, {shape[1]}), one per class name. "
                          f"Received: {sorted(set(outside.tolist()))[:10]}")
    return labels


def _multi_hot(labels, shape):
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ConfigError(
            f"Multi-label labels must be multi-hot, shape {shape} like the probabilities (one 0/1 column per "
            f"class). Received: labels of shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        bad = np.unique(labels[~np.isin(labels, (0, 1))])[:5]
        raise ConfigError(f"Multi-hot labels must be 0 or 1. Received: e.g. {bad.tolist()}")
    return labels.astype(np.int64)
