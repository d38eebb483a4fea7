"""Class weights of the training loss: `FineTuneConfig.class_weight` resolved to `{class_index: weight}`."""

import math
import numbers

import numpy as np
import tensorflow as tf

from tfxfer.errors import ConfigError, is_real_number
from tfxfer.models import heads


def resolve(setting, kind: heads.HeadKind, class_counts: list[int] | None, train_data: tf.data.Dataset,
            num_classes: int) -> dict[int, float] | None:
    """The weights `setting` (None, "balanced" or a dict) asks for, one per class of the head.

    Args:
        setting: None, "balanced" or `{class_index: weight}`. As in Keras' `fit`,
            a class the dict leaves out weighs 1.0.
        kind: HeadKind. Class weights need one label per example.
        class_counts: list of int. Training examples per class, or None to
            count them in `train_data` (a pass over it, "balanced" only).
        train_data: tf.data.Dataset. Batches of (inputs, integer labels).
        num_classes: int. Classes of the model's head.

    Raises:
        ConfigError: a setting other than these, a multi-label head, or a dict
            whose keys are not the head's class ids or whose weights are not
            finite numbers >= 0 (not all 0).
    """
    if setting is None:
        return None
    if not isinstance(setting, dict) and not (isinstance(setting, str) and setting == "balanced"):
        raise ConfigError(
            f"class_weight must be None, 'balanced' or a dict. Received: class_weight={setting!r}"
        )
    if kind is heads.HeadKind.MULTILABEL:
        # The loop weighs an example by its one class: a multi-label example has several.
        raise ConfigError(
            "class_weight needs one label per example; it does not apply to multi-label heads. Leave "
            f"class_weight=None. Received: class_weight={setting!r}")
    if isinstance(setting, dict):
        return checked_class_weight(setting, num_classes)
    if class_counts is None:
        class_counts = count_labels(train_data, num_classes)
    if len(class_counts) != num_classes:
        raise ConfigError(
            f"class_counts needs one count per class of the model ({num_classes}). "
            f"Received: class_counts={list(class_counts)}"
        )
    return balanced_class_weight(class_counts)


def checked_class_weight(class_weight: dict, num_classes: int) -> dict[int, float]:
    """`{class_index: weight}` for every class of a `num_classes` head, those `class_weight` leaves out at 1.0.

    Raises:
        ConfigError: keys other than int class ids below `num_classes` (class
            names among them), or weights that are not finite numbers >= 0, or all 0.
    """
    keys = list(class_weight)
    if any(isinstance(key, str) for key in keys):
        raise ConfigError(
            f"class_weight's keys are class ids (ints from 0 to {num_classes - 1}), not class names: turn names into "
            "ids with {data.class_names.index(name): weight for name, weight in weights.items()}. "
            f"Received: class_weight={class_weight!r}")
    unknown = [key for key in keys
               if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not 0 <= key < num_classes]
    if unknown:
        raise ConfigError(
            f"class_weight's keys must be class ids of the model's {num_classes}-class head, ints from 0 to "
            f"{num_classes - 1} (a class left out weighs 1.0); {unknown!r} is not one. "
            f"Received: class_weight={class_weight!r}")
    # A negative weight turns the loss of its class into a reward for getting it wrong; NaN turns every weight NaN.
    if not all(is_real_number(weight) and 0 <= weight < math.inf for weight in class_weight.values()):
        raise ConfigError(
            "class_weight's weights must be numbers >= 0 (1.0 weighs a class as usual, 0 leaves it out of the loss). "
            f"Received: class_weight={class_weight!r}")
    weights = {index: float(class_weight.get(index, 1.0)) for index in range(num_classes)}
    if not any(weights.values()):
        raise ConfigError(
            "class_weight weighs every class 0: the loss would be 0 and nothing would train. Give at least one "
            f"class a weight > 0. Received: class_weight={class_weight!r}")
    return weights


def balanced_class_weight(class_counts: list[int]) -> dict[int, float]:
    """Weights inversely proportional to class frequency (scikit-learn's "balanced")."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if (counts <= 0).any():
        raise ConfigError(
            f"Every class needs at least one training example. Received: class_counts={list(class_counts)}")
    weights = counts.sum() / (len(counts) * counts)
    return {index: float(weight) for index, weight in enumerate(weights)}


def count_labels(dataset: tf.data.Dataset, num_classes: int) -> list[int]:
    """Examples per class in a dataset of (inputs, integer labels) batches.

    Sized by `num_classes`, not by the labels seen: a class absent from the data
    counts 0 instead of vanishing from the end of the list.
    """
    counts = np.zeros(num_classes, dtype=np.int64)
    for _, labels in dataset:
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        if labels.size and not 0 <= labels.min() <= labels.max() < num_classes:
            raise ConfigError(
                f"Labels must be class indices in [0, {num_classes}). "
                f"Received: labels={sorted(set(labels.tolist()))}"
            )
        counts += np.bincount(labels, minlength=num_classes)
    return counts.tolist()
