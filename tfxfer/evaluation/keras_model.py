"""`evaluate_model`: the evaluation report of a Keras model on a batched `(inputs, labels)` dataset.

What a recipe runs after training, on the validation data it trained with:
the same batches `fit` validated on, so no data is read twice in another way.
"""

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.evaluation import metrics


def evaluate_model(
    model: keras.Model,
    dataset: tf.data.Dataset,
    class_names: list[str],
    *,
    multi_label: bool = False,
    threshold: float = 0.5,
    top_k: int = 5,
) -> dict:
    """Predicts every batch of `dataset` with `model`; returns `classification_report`'s dict.

    Args:
        model: keras.Model. Takes the dataset's inputs; outputs probabilities `(B, C)`,
            or a binary head's `(B, 1)` P(class 1).
        dataset: tf.data.Dataset. Batches of `(inputs, labels)` as `fit` takes them (e.g.
            `data.validation` of `tfxfer.load_image_folders`, or of `TextDatasets.map_inputs`):
            int class ids `(B,)`, or multi-hot `(B, C)` when `multi_label`. One pass is made;
            a shuffled dataset is fine (labels stay with their inputs).
        class_names: list[str]. The C class names, in class-id order.
        multi_label: bool. Whether an example may carry several classes.
        threshold: float. Multi-label only: the probability above which a class is predicted.
        top_k: int. Single-label only: k of `top_k_accuracy`.

    Returns:
        dict. See `tfxfer.evaluation.metrics.classification_report`.

    Raises:
        ConfigError: a dataset that does not give `(inputs, labels)` pairs, or an empty one.

    Example:

    ```python
    report = evaluate_model(model, data.validation, data.class_names)
    print(format_report(report))
    ```
    """
    if dataset is None:
        raise ConfigError("There is no dataset to evaluate on (None: the data has no validation part). Pass "
                          "a batched (inputs, labels) dataset, e.g. load the data with validation_split=0.2.")
    labels, probabilities = [], []
    for batch in dataset:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ConfigError("evaluate_model needs a dataset of (inputs, labels) batches, as fit's validation_data. "
                              f"Received: batches of {type(batch).__name__}")
        inputs, batch_labels = batch[0], batch[1]
        # predict_on_batch runs Keras' compiled predict step (inference mode), not a per-batch eager call.
        probabilities.append(np.asarray(model.predict_on_batch(inputs)))
        labels.append(np.asarray(batch_labels))
    if not labels:
        raise ConfigError("The dataset to evaluate on is empty: pass a dataset with at least one batch "
                          "(e.g. data.validation, which is None without validation data).")
    logging.info("Evaluated %s on %d examples.", model.name, sum(len(batch) for batch in labels))
    return metrics.classification_report(
        np.concatenate(labels), np.concatenate(probabilities), class_names, multi_label=multi_label,
        threshold=threshold, top_k=top_k)
