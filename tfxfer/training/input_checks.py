"""Checks that the data fits the model, run by `fine_tune` before it trains.

A mismatch would otherwise surface mid-training: an image size or label width
the model does not take as a shape error from inside the compiled step, and a
label past the head's classes as a silently wrong loss. Shapes and dtypes come
from the dataset's `element_spec`; label values from its first batch, which is
read only when asked (`peek`): a pipeline with `.cache()` discards a cache left
half-written, and reading also advances a seeded shuffle. Later batches' labels
are counted by the training loop as it reads them (`losses.invalid_labels`).
The user's own loss is tried on the head's labels and probabilities
(`check_loss_fits`): one that does not fit the head would fail inside the first step.
"""

import math
import re

import keras
import numpy as np
import tensorflow as tf

from tfxfer.errors import ConfigError, is_real_number
from tfxfer.models import classifier, heads, input_fit
from tfxfer.training import losses
from tfxfer import tasks as tasks_lib


def check_dataset(model: keras.Model, dataset: tf.data.Dataset, *, name: str, peek: bool = True,
                  loss: keras.losses.Loss | None = None) -> None:
    """Raises a `ConfigError` if `dataset` does not fit `model`'s inputs and head.

    Args:
        model: keras.Model. A tfxfer classifier (a `predictions` head).
        dataset: tf.data.Dataset. Batches of `(inputs, labels)`.
        name: str. The argument the dataset came in as, for the messages.
        peek: bool. Also check the label values (and any input size the
            spec leaves open) on the first batch.
        loss: keras.losses.Loss. The user's own training loss, or None:
            tried on the head's labels and probabilities (`check_loss_fits`),
            those of the first batch's first examples when it is read.
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
        check_loss_fits(model, loss, spec[1], name=name)
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
        check_loss_fits(model, loss, tf.nest.map_structure(tf.type_spec_from_value, labels), name=name, inputs=inputs)
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


# Examples the user's loss is tried on: a few, as the model runs on them once before training.
_LOSS_CHECK_EXAMPLES = 4
# What each head takes, and the Keras loss that takes it.
_HEAD_WORDS = {
    heads.HeadKind.BINARY: ("a binary head: one sigmoid unit, labels 0/1", "keras.losses.BinaryCrossentropy()"),
    heads.HeadKind.MULTICLASS: ("a {classes}-class head: {classes} softmax units, labels class indices 0 to {last}",
                                "keras.losses.SparseCategoricalCrossentropy()"),
    heads.HeadKind.MULTILABEL: ("a multi-label head: {classes} sigmoid units, labels multi-hot rows of {classes} "
                                "0/1 columns", "keras.losses.BinaryCrossentropy()"),
}


def check_loss_fits(model: keras.Model, loss: keras.losses.Loss | None, label_spec, *, name: str,
                    inputs=None) -> None:
    """Raises a `ConfigError` if the user's `loss` fails on the labels and probabilities of `model`'s head, or does
    not give one finite loss per example; a loss that does not fit the head (a softmax loss on a binary head's one
    sigmoid unit) would otherwise fail inside the first training step, or train on nonsense.

    The loss is called as the training loop calls it (`losses.example_losses`) on a
    few examples: the head's probabilities for the first ones of `inputs` (a batch
    of `name`), in inference mode, or when the data is not read, probabilities
    shaped as the head's. The labels are ones the head takes, shaped as
    `label_spec` says, its last class first: the first examples' own labels may
    all be 0, where a loss that does not fit fails only on 1. A multi-task model's
    loss (a `MultiTaskLoss`) is not tried; neither is `loss` None (the head's own).
    """
    if loss is None or tasks_lib.model_tasks(model) is not None:
        return
    if not callable(getattr(loss, "call", None)):
        raise ConfigError("loss must be a keras.losses.Loss (or a subclass) whose call returns one loss per "
                          "example, e.g. keras.losses.BinaryCrossentropy(), not a function or a name. "
                          f"Received: loss={loss!r}")
    kind, num_classes = heads.head_kind(model), heads.num_classes(model)
    probabilities, source = _head_probabilities(model, kind, num_classes, inputs, name)
    labels = _labels_the_head_takes(kind, num_classes, label_spec, len(probabilities))
    problem = _loss_problem(loss, labels, probabilities)
    if problem is None:
        return
    head, fitting = (words.format(classes=num_classes, last=num_classes - 1) for words in _HEAD_WORDS[kind])
    shown = ("multi-hot rows, alternately all 1 and all 0" if kind is heads.HeadKind.MULTILABEL
             else ", ".join(str(int(label)) for label in tf.reshape(labels, [-1]).numpy()))
    raise ConfigError(
        f"The loss does not fit the model's head, {head}: called with labels the head takes ({shown}) and its "
        f"probabilities for {source}, it {problem}. Pass {fitting} (it takes such labels and the head's "
        f"probabilities, not logits), or leave loss=None for the head's own loss. Received: loss={type(loss).__name__}")


def _head_probabilities(model: keras.Model, kind: heads.HeadKind, num_classes: int, inputs, name: str) -> tuple:
    """`(probabilities, what they are of)`: the model's for the first few examples of the batch `inputs`, in
    inference mode, or for None (the data not read) made up in the head's shape."""
    count = _LOSS_CHECK_EXAMPLES
    if inputs is None:
        units = 1 if kind is heads.HeadKind.BINARY else num_classes
        probability = 1.0 / num_classes if kind is heads.HeadKind.MULTICLASS else 0.5
        return tf.fill([count, units], probability), f"{count} examples (made up: {name} was not read)"
    count = min(count, int(tf.shape(tf.nest.flatten(inputs)[0])[0]))
    probabilities = model(tf.nest.map_structure(lambda tensor: tensor[:count], inputs), training=False)
    return probabilities, f"the first {count} examples of {name}"


def _loss_problem(loss: keras.losses.Loss, labels: tf.Tensor, probabilities: tf.Tensor) -> str | None:
    """What goes wrong when the training loop's way computes `loss` on a batch of `labels` and `probabilities`
    (an error, not one loss per example, or a loss that is not finite), or None."""
    count = len(probabilities)
    try:
        values = np.asarray(losses.example_losses(loss, labels, probabilities))
    except Exception as error:  # whatever the loss raises is the mistake to report
        return f"raised {type(error).__name__}: {_first_line(error)}"
    if values.shape != (count,):
        return f"returned shape {values.shape}, not one loss per example ({count},)"
    if not np.all(np.isfinite(values)):
        return f"returned {values.tolist()}, not finite"
    return None


def _first_line(error: Exception) -> str:
    """The first line of `error`'s message, without TensorFlow's op and device names around it."""
    lines = str(error).strip().splitlines() or [""]
    line = re.sub(r"^\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\].*$", "", lines[0])
    return " ".join(line.split())[:300]


def _labels_the_head_takes(kind: heads.HeadKind, num_classes: int, label_spec, count: int) -> tf.Tensor:
    """`count` labels that fit the head, as float32 (the loop casts labels so), shaped as `label_spec` says: class
    indices from the last class down (1, 0, 1, ... for a binary head), or multi-hot rows of all 1 then all 0."""
    rows = np.arange(count)
    if kind is heads.HeadKind.MULTILABEL:
        return tf.constant(np.repeat((rows % 2 == 0)[:, None], num_classes, axis=1), tf.float32)
    top = 1 if kind is heads.HeadKind.BINARY else num_classes - 1
    labels = tf.constant((top - rows) % (top + 1), tf.float32)
    rank = label_spec.shape.rank if isinstance(label_spec, tf.TensorSpec) else None
    return labels[:, None] if rank == 2 else labels


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
    """Raises a `ConfigError` unless `class_counts` is a list of one count (a number >= 0) per class of the model's
    head: NumPy would otherwise fail on a dict or on strings with an error that names neither."""
    if isinstance(class_counts, dict):
        raise ConfigError(
            "class_counts is a list of training examples per class, in class_names order (data.train_class_counts), "
            "not a dict: turn {name: count} into one with [counts[name] for name in data.class_names]. "
            f"Received: class_counts={class_counts!r}")
    if not _is_sequence(class_counts) or not all(_is_count(count) for count in class_counts):
        raise ConfigError(
            "class_counts must be a list of numbers >= 0, the training examples of each class in class_names order "
            f"(data.train_class_counts). Received: class_counts={class_counts!r}")
    if len(class_counts) != num_classes:
        raise ConfigError(
            f"class_counts counts {len(class_counts)} classes but the model's head has {num_classes}: "
            f"the data and the model disagree. Build the model with num_classes={len(class_counts)} "
            f"(len(data.class_names)). Received: class_counts={list(class_counts)}"
        )


def _is_sequence(value) -> bool:
    """A list, tuple or 1-D array: what holds one count per class (a string is a sequence too, but of characters)."""
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def _is_count(value) -> bool:
    """A number of examples: a finite number >= 0 (not a bool, nor a string of digits)."""
    return is_real_number(value) and 0 <= value < math.inf


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
        # Missing when the whole row is (a multi-hot row too), as the loss reads it: a -1 among 0s and 1s is wrong.
        labelled = np.any(values.reshape(len(values), -1) != tasks_lib.MISSING_LABEL, axis=1)
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
