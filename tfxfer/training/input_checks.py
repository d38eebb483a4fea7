"""Checks that the data fits the model, run by `fine_tune` before it trains.

A mismatch would otherwise surface mid-training: an image size or label width
the model does not take as a shape error from inside the compiled step, and a
label past the head's classes as a silently wrong loss. Shapes and dtypes come
from the dataset's `element_spec`; label values from its first batch, which is
read only when asked (`peek`): a pipeline with `.cache()` discards a cache left
half-written, and reading also advances a seeded shuffle. Later batches' labels
are counted by the training loop as it reads them (`losses.invalid_labels`).
"""

import keras
import numpy as np
import tensorflow as tf

from tfxfer.errors import ConfigError
from tfxfer.models import classifier, heads, input_fit
from tfxfer import tasks as tasks_lib


def check_dataset(model: keras.Model, dataset: tf.data.Dataset, *, name: str, peek: bool = True) -> None:
    """Raises a `ConfigError` if `dataset` does not fit `model`'s inputs and head.

    Args:
        model: keras.Model. A tfxfer classifier (a `predictions` head).
        dataset: tf.data.Dataset. Batches of `(inputs, labels)`.
        name: str. The argument the dataset came in as, for the messages.
        peek: bool. Also check the label values (and any input size the
            spec leaves open) on the first batch.
    """
    check_are_datasets(**{name: dataset})
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise ConfigError(
            "fine_tune trains on batches of (inputs, labels); map the dataset to such pairs. "
            f"Received: {name} with element_spec={spec}"
        )
    input_fit.check_inputs(model.input, spec[0], name)
    for kind, num_classes, label_spec, where in _heads_and_labels(model, spec[1], name):
        _check_label_spec(kind, num_classes, label_spec, where)
    if int(dataset.cardinality()) == 0:
        _refuse_empty(name)
    if not peek:
        return
    missing_allowed = tasks_lib.model_tasks(model) is not None
    batches = 0
    for inputs, labels in dataset.take(1):
        batches += 1
        # The batch's own shapes settle what the spec leaves as None.
        input_fit.check_inputs(model.input, tf.nest.map_structure(tf.type_spec_from_value, inputs), name)
        _check_token_ids(model, inputs, name)
        input_fit.warn_if_rescaled_pixels(model, inputs, name)
        for kind, num_classes, head_labels, where in _heads_and_labels(model, labels, name):
            _check_label_spec(kind, num_classes, tf.type_spec_from_value(head_labels), where)
            _check_label_values(kind, num_classes, head_labels, where, missing_allowed=missing_allowed)
    if not batches:  # a filter, say, hid the size from `cardinality`
        _refuse_empty(name)


def _check_token_ids(model: keras.Model, inputs, name: str) -> None:
    """Raises a `ConfigError` if a text classifier's token ids in `inputs` (a batch) go past its vocabulary: texts
    tokenized by another model's preprocessor, which would otherwise fail as an index error inside the embedding."""
    preprocessor = classifier.text_preprocessor(model)
    tokenizer = getattr(preprocessor, "tokenizer", preprocessor)
    token_ids = inputs.get("token_ids") if isinstance(inputs, dict) else inputs
    if not hasattr(tokenizer, "vocabulary_size") or token_ids is None or not tf.is_tensor(token_ids):
        return
    size, largest = int(tokenizer.vocabulary_size()), int(tf.reduce_max(token_ids))
    if largest >= size:
        raise ConfigError(
            f"The model's vocabulary has {size} tokens (ids 0 to {size - 1}), but {name} has token id {largest}: "
            "the texts were tokenized for another model; tokenize them with this model's own preprocessor: "
            f"data.map_inputs(model.preprocessor). Received: token ids up to {largest} in the first batch of {name}")


def _refuse_empty(name: str) -> None:
    raise ConfigError(f"{name} is empty: pass at least one batch of (inputs, labels). Received: {name} of 0 batches")


def check_are_datasets(**datasets) -> None:
    """Raises a `ConfigError` for any of `datasets` (by argument name) that is neither None nor a `tf.data.Dataset`:
    NumPy arrays `(x, y)`, as `fit` takes them, would fail later as an `AttributeError`."""
    for name, value in datasets.items():
        if value is not None and not isinstance(value, tf.data.Dataset):
            raise ConfigError(
                f"{name} must be a tf.data.Dataset of batches; NumPy arrays become one with "
                "tf.data.Dataset.from_tensor_slices((x, y)).batch(32). "
                f"Received: {name} of type {type(value).__name__}")


def _heads_and_labels(model: keras.Model, labels, name: str) -> list[tuple]:
    """`(kind, num_classes, labels, what to call them)` per head: one, or one per task of a multi-task model."""
    tasks = tasks_lib.model_tasks(model)
    if tasks is None:
        tasks_lib.check_one_head_labels(labels, name)
        return [(heads.head_kind(model), heads.num_classes(model), labels, name)]
    if not isinstance(labels, dict) or set(labels) != set(tasks):
        got = sorted(labels) if isinstance(labels, dict) else input_fit.describe(labels)
        raise ConfigError(
            f"The model has a head per task and trains on a dict of labels with one entry per task, "
            f"{sorted(tasks)} (tfxfer's loaders give one with label_columns). Received: {name} labels {got}")
    return [(task.kind, task.num_classes, labels[task_name], f"{name}[{task_name!r}]")
            for task_name, task in tasks.items()]


def check_class_counts(class_counts: list[int], num_classes: int) -> None:
    """Raises a `ConfigError` unless there is one count per class of the model's head."""
    if len(class_counts) != num_classes:
        raise ConfigError(
            f"class_counts counts {len(class_counts)} classes but the model's head has {num_classes}: "
            f"the data and the model disagree. Build the model with num_classes={len(class_counts)} "
            f"(len(data.class_names)). Received: class_counts={list(class_counts)}"
        )


def _check_label_spec(kind: heads.HeadKind, num_classes: int, spec, name: str) -> None:
    if not isinstance(spec, tf.TensorSpec) or spec.shape.rank is None:
        return
    if spec.dtype == tf.string:
        raise ConfigError(
            "Labels must be class indices (or multi-hot rows for a multi-label head), not class "
            "names: map each name to its index in your class list (tfxfer's loaders do). "
            f"Received: {name} labels of dtype string"
        )
    shape = tuple(spec.shape)
    width = shape[1] if len(shape) == 2 else None
    if kind is heads.HeadKind.MULTILABEL:
        if len(shape) != 2 or width == 1:
            raise ConfigError(
                f"The model has a multi-label head: it takes multi-hot labels of shape (batch, "
                f"{num_classes}), one 0/1 column per class. For one class per example, build the "
                f"model with multi_label=False. Received: {name} labels of shape {shape}"
            )
        if width is not None and width != num_classes:
            raise ConfigError(
                f"The model's multi-label head has {num_classes} classes but {name}'s labels have "
                f"{width} columns. Build the model with num_classes={width} (len(data.class_names)). "
                f"Received: {name} labels of shape {shape}"
            )
        return
    if len(shape) == 1 or (len(shape) == 2 and width in (1, None)):
        return
    if len(shape) == 2:
        raise ConfigError(
            f"The model's {num_classes}-class head takes one class index per example (labels of "
            f"shape (batch,)), but {name}'s labels have {width} columns: one-hot or multi-hot rows. "
            "Pass class indices (tf.argmax(labels, axis=-1) for one-hot), or build the model with "
            f"multi_label=True for several labels per example. Received: {name} labels of shape {shape}"
        )
    raise ConfigError(
        f"Labels must be class indices of shape (batch,). Received: {name} labels of shape {shape}"
    )


def _check_label_values(kind: heads.HeadKind, num_classes: int, labels, name: str, *,
                        missing_allowed: bool = False) -> None:
    values = np.asarray(labels).astype(np.float64)
    if missing_allowed:  # a multi-task example without a label for this task: checked by no range
        labelled = values.reshape(len(values), -1)[:, 0] != tasks_lib.MISSING_LABEL
        values = values[labelled]
    if values.size == 0:
        return
    as_written = lambda value: int(value) if float(value).is_integer() else float(value)  # noqa: E731
    shown = [as_written(value) for value in np.unique(values)[:10]]
    if kind is heads.HeadKind.MULTILABEL:
        if values.min() < 0 or values.max() > 1:
            raise ConfigError(
                "Multi-hot labels must be 0 or 1 in every column. "
                f"Received: values {shown} in the first batch of {name}"
            )
        return
    # A binary label is P(class 1), so a soft one (0.9) is a label too, as `losses.invalid_labels` counts it.
    if kind is heads.HeadKind.MULTICLASS and not np.all(np.equal(np.mod(values, 1), 0)):
        raise ConfigError(
            "Labels must be class indices (whole numbers). "
            f"Received: values {shown} in the first batch of {name}"
        )
    upper = 1 if kind is heads.HeadKind.BINARY else num_classes - 1
    if values.min() < 0 or values.max() > upper:
        bad = as_written(values.max() if values.max() > upper else values.min())
        raise ConfigError(
            f"{name} has label {bad}, but the model's head has {num_classes} classes (labels 0 to "
            f"{num_classes - 1}). Build the model with num_classes equal to the number of classes in "
            f"the data (len(data.class_names)), or fix the labels. "
            f"Received: labels {shown} in the first batch of {name}"
        )
