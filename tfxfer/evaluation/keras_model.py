"""`evaluate_model`: the evaluation report of a Keras model on a batched `(inputs, labels)` dataset.

What a recipe runs after training, on the validation data it trained with:
the same batches `fit` validated on, so no data is read twice in another way.
A multi-task classifier gets one report per task (`metrics.multi_task_report`).
"""

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.evaluation import metrics
from tfxfer.models import input_fit
from tfxfer import tasks as model_tasks


def evaluate_model(
    model: keras.Model,
    dataset: tf.data.Dataset,
    class_names: list[str] | dict[str, list[str]],
    *,
    multi_label: bool = False,
    threshold: float = 0.5,
    top_k: int = 5,
) -> dict:
    """Predicts every batch of `dataset` with `model`; returns `classification_report`'s dict.

    A multi-task classifier (built with `tasks=`) gets `multi_task_report`'s dict
    instead: `{"tasks": {task: report}, "num_examples": ..., "accuracy": ...}`, each
    task's report on the examples labelled for it, with `missing_labels` counting
    the others. Each task's own `multi_label` (from `model.tasks`) decides its report.

    Args:
        model: keras.Model. Takes the dataset's inputs; outputs probabilities `(B, C)`,
            or a binary head's `(B, 1)` P(class 1); a multi-task classifier, a dict of them.
        dataset: tf.data.Dataset. Batches of `(inputs, labels)` as `fit` takes them (e.g.
            `data.validation` of `tfxfer.load_image_folders`, or of `TextDatasets.map_inputs`):
            int class ids `(B,)`, or multi-hot `(B, C)` when `multi_label`; for a multi-task
            classifier a dict `{task: labels}` with `MISSING_LABEL` (-1; a row of -1 for a
            multi-label task) where an example has no label. One pass is made;
            a shuffled dataset is fine (labels stay with their inputs).
        class_names: list[str]. The C class names, in class-id order; for a multi-task
            classifier a dict `{task: [class names]}` (e.g. the datasets' `class_names`).
        multi_label: bool. Whether an example may carry several classes. Ignored for a
            multi-task classifier, whose tasks say it.
        threshold: float. Multi-label only: the probability above which a class is predicted.
        top_k: int. Single-label only: k of `top_k_accuracy`.

    Returns:
        dict. See `tfxfer.evaluation.metrics.classification_report`
        (multi-task: `tfxfer.evaluation.metrics.multi_task_report`).

    Raises:
        ConfigError: a dataset that does not give `(inputs, labels)` pairs, or an empty one,
            or whose inputs do not fit the model (unbatched, raw strings for a model of token
            ids, images of another size); labels per task for a model with one head;
            for a multi-task classifier, class names or labels that are not a dict of its tasks.

    Example:

    ```python
    report = evaluate_model(model, data.validation, data.class_names)
    print(format_report(report))
    report = evaluate_model(multi_task_model, data.validation, data.class_names)  # {task: [names]}
    print(report["tasks"]["species"]["accuracy"], report["tasks"]["species"]["missing_labels"])
    ```
    """
    if dataset is None:
        raise ConfigError("There is no dataset to evaluate on (None: the data has no validation part). Pass "
                          "a batched (inputs, labels) dataset, e.g. load the data with validation_split=0.2.")
    _check_inputs_fit(model, dataset)
    tasks = model_tasks.model_tasks(model)
    if tasks is not None:
        _check_task_class_names(tasks, class_names)
    labels, probabilities = [], []
    for batch in dataset:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ConfigError("evaluate_model needs a dataset of (inputs, labels) batches, as fit's validation_data. "
                              f"Received: batches of {type(batch).__name__}")
        inputs, batch_labels = batch[0], batch[1]
        if not labels:  # the first batch: rescaled images would score badly without any error
            input_fit.warn_if_rescaled_pixels(model, inputs, "dataset")
        # predict_on_batch runs Keras' compiled predict step (inference mode), not a per-batch eager call.
        predicted = model.predict_on_batch(inputs)
        if tasks is None:
            model_tasks.check_one_head_labels(batch_labels, "dataset")
            probabilities.append(np.asarray(predicted))
            labels.append(np.asarray(batch_labels))
        else:
            probabilities.append({task: np.asarray(predicted[task]) for task in tasks})
            labels.append(_task_labels(tasks, batch_labels))
    if not labels:
        raise ConfigError("The dataset to evaluate on is empty: pass a dataset with at least one batch "
                          "(e.g. data.validation, which is None without validation data).")
    if tasks is not None:
        return _multi_task_report(model, tasks, labels, probabilities, class_names, threshold, top_k)
    logging.info("Evaluated %s on %d examples.", model.name, sum(len(batch) for batch in labels))
    return metrics.classification_report(
        np.concatenate(labels), np.concatenate(probabilities), class_names, multi_label=multi_label,
        threshold=threshold, top_k=top_k)


def _check_inputs_fit(model: keras.Model, dataset) -> None:
    """Data that does not fit the model's inputs fails here with the fix, not inside Keras' predict step."""
    spec = getattr(dataset, "element_spec", None)
    if not (isinstance(spec, tuple) and len(spec) >= 2):
        return  # not (inputs, labels): the loop below says so
    try:
        expected = model.input
    except AttributeError:  # a Sequential model says only `inputs`, and without an Input layer not even that
        inputs = getattr(model, "inputs", None) or []
        if len(inputs) != 1:
            return
        expected = inputs[0]
    input_fit.check_inputs(expected, spec[0], "dataset")


def _multi_task_report(model, tasks, labels, probabilities, class_names, threshold, top_k):
    """`multi_task_report` of the batches' per-task labels and probabilities."""
    report = metrics.multi_task_report(
        {task: np.concatenate([batch[task] for batch in labels]) for task in tasks},
        {task: np.concatenate([batch[task] for batch in probabilities]) for task in tasks},
        {task: list(class_names[task]) for task in tasks},
        {task: spec.multi_label for task, spec in tasks.items()}, threshold=threshold, top_k=top_k)
    logging.info("Evaluated %s on %d examples: %s.", model.name, report["num_examples"], ", ".join(
        f"{task} {task_report['num_examples']} labelled" for task, task_report in report["tasks"].items()))
    return report


def _check_task_class_names(tasks, class_names):
    """Class names of every task of a multi-task model: a dict of its tasks, one name per class."""
    if not isinstance(class_names, Mapping) or set(class_names) != set(tasks):
        received = sorted(class_names) if isinstance(class_names, Mapping) else type(class_names).__name__
        raise ConfigError("A multi-task model needs class_names as a dict of its tasks to their class names, e.g. "
                          f"data.class_names of multi-task data. Expected the tasks {sorted(tasks)}. "
                          f"Received: class_names of {received}")
    for task, spec in tasks.items():
        if len(class_names[task]) != spec.num_classes:
            raise ConfigError(f"Task {task!r} has {spec.num_classes} classes: pass one class name for each. "
                              f"Received: {len(class_names[task])} names {list(class_names[task])[:10]}")


def _task_labels(tasks, batch_labels):
    """A batch's labels of each task as numpy arrays; a ConfigError when they are not a dict of the tasks."""
    if not isinstance(batch_labels, Mapping) or not set(tasks) <= set(batch_labels):
        received = sorted(batch_labels) if isinstance(batch_labels, Mapping) else type(batch_labels).__name__
        raise ConfigError("A multi-task model is evaluated on labels that are a dict of its tasks (-1 where an "
                          f"example has no label), as multi-task data gives them. Expected the tasks {sorted(tasks)}. "
                          f"Received: labels of {received}")
    return {task: np.asarray(batch_labels[task]) for task in tasks}
