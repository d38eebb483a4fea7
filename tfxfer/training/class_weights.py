"""Class weights of the training loss: `FineTuneConfig.class_weight` resolved to `{class_index: weight}`."""

import numpy as np
import tensorflow as tf

from tfxfer.errors import ConfigError
from tfxfer.models import heads


def resolve(setting, kind: heads.HeadKind, class_counts: list[int] | None, train_data: tf.data.Dataset,
            num_classes: int) -> dict[int, float] | None:
    """The weights `setting` (None, "balanced" or a dict) asks for.

    Args:
        setting: None, "balanced" or `{class_index: weight}`.
        kind: HeadKind. "balanced" needs one label per example.
        class_counts: list of int. Training examples per class, or None to
            count them in `train_data` (a pass over it, "balanced" only).
        train_data: tf.data.Dataset. Batches of (inputs, integer labels).
        num_classes: int. Classes of the model's head.
    """
    if setting is None or isinstance(setting, dict):
        return setting
    if setting != "balanced":
        raise ConfigError(
            f"class_weight must be None, 'balanced' or a dict. Received: class_weight={setting!r}"
        )
    if kind is heads.HeadKind.MULTILABEL:
        raise ConfigError(
            "class_weight='balanced' needs one label per example; it does not apply to multi-label heads.")
    if class_counts is None:
        class_counts = count_labels(train_data, num_classes)
    if len(class_counts) != num_classes:
        raise ConfigError(
            f"class_counts needs one count per class of the model ({num_classes}). "
            f"Received: class_counts={list(class_counts)}"
        )
    return balanced_class_weight(class_counts)


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
