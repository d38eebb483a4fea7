"""Loss and metrics for each head kind, and for a multi-task classifier's heads together."""

import keras
import tensorflow as tf

from tfxfer import tasks as tasks_lib
from tfxfer.models.heads import HeadKind


@keras.saving.register_keras_serializable(package="tfxfer")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing.

    Keras' `SparseCategoricalCrossentropy` has no `label_smoothing`, and one-hot
    labels in the input pipeline would tie the data to the loss; this one-hots
    inside the loss instead.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        num_classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        one_hot = keras.ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def loss_for(kind: HeadKind, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """The loss for a head kind: labels are class indices, or multi-hot for multi-label."""
    if kind is HeadKind.MULTICLASS:
        return SparseCategoricalCrossentropyWithSmoothing(label_smoothing)
    return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)


def metrics_for(kind: HeadKind) -> list[keras.metrics.Metric]:
    """Accuracy under one name, `accuracy`, whatever the head, so reports read alike."""
    if kind is HeadKind.MULTICLASS:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return [keras.metrics.BinaryAccuracy(name="accuracy")]


def example_losses(loss: keras.losses.Loss, labels, probabilities):
    """`loss.call` on the labels and probabilities cast to float32 (dicts per task too): each example's loss,
    as the training loop computes it."""
    cast = lambda tensors: tf.nest.map_structure(lambda tensor: tf.cast(tensor, tf.float32), tensors)  # noqa: E731
    return loss.call(cast(labels), cast(probabilities))


def example_accuracy(kind: HeadKind, labels, probabilities):
    """Each example's accuracy, shape `(B,)`: 1/0 for one label, the share of right
    labels for multi-label; what `metrics_for(kind)` averages.

    Args:
        kind: HeadKind. The head that produced `probabilities`.
        labels: Tensor. Class indices `(B,)`, or multi-hot `(B, C)` for multi-label.
        probabilities: Tensor. The model's float outputs.
    """
    if kind is HeadKind.MULTICLASS:
        predicted = keras.ops.argmax(probabilities, axis=-1)
        labels = keras.ops.reshape(labels, (-1,))
        return keras.ops.cast(keras.ops.equal(predicted, keras.ops.cast(labels, predicted.dtype)), "float32")
    predicted = keras.ops.cast(probabilities > 0.5, "float32")
    labels = keras.ops.reshape(keras.ops.cast(labels, "float32"), keras.ops.shape(predicted))
    return keras.ops.mean(keras.ops.cast(keras.ops.equal(predicted, labels), "float32"), axis=-1)


def invalid_labels(kind: HeadKind, labels, probabilities):
    """Per example, shape `(B,)`, 1.0 where a label does not fit the head, else 0.0.

    A class index must be a whole number from 0 to the head's classes less one,
    and every column of a binary or multi-hot label from 0 to 1. The loss takes
    anything: a class index past the head one-hots to a row of zeros, which
    trains on nothing, silently. The training loop counts these in every batch,
    where `fine_tune`'s checks before training read only the first.
    """
    labels = tf.cast(labels, tf.float32)
    if kind is HeadKind.MULTICLASS:
        labels = tf.reshape(labels, (-1,))
        num_classes = tf.cast(tf.shape(probabilities)[-1], tf.float32)
        invalid = (labels < 0) | (labels >= num_classes) | tf.not_equal(labels, tf.floor(labels))
    else:
        rows = tf.reshape(labels, (tf.shape(labels)[0], -1))
        invalid = tf.reduce_any((rows < 0) | (rows > 1), axis=-1)
    return tf.cast(invalid, tf.float32)


class MultiTaskLoss(keras.losses.Loss):
    """Per example, the sum over tasks of `loss_weight` times the task's loss; a missing label adds 0.

    Labels and probabilities are dicts `{task: tensor}` (see
    `tfxfer.tasks`). Averaged over the batch by the training loop, a
    task's loss counts every example of the batch, labelled or not, as Keras
    averages a loss with zero sample weights: a task labelled on half the
    examples weighs half as much as one labelled on all of them (raise its
    `loss_weight` to make up for it).

    Args:
        tasks: dict. `{name: tfxfer.Task}`, the model's `tasks`.
        label_smoothing: float. Applied to every task's cross-entropy.
    """

    def __init__(self, tasks: dict, label_smoothing: float = 0.0, name: str = "multi_task_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.tasks = tasks_lib.resolve_tasks(tasks)
        self.label_smoothing = label_smoothing
        self._losses = {task_name: loss_for(task.kind, label_smoothing) for task_name, task in self.tasks.items()}

    def call(self, y_true, y_pred):
        total = 0.0
        for task_name, task in self.tasks.items():
            labelled, labels = _labelled(y_true[task_name])
            probabilities = tf.cast(y_pred[task_name], tf.float32)
            task_losses = self._losses[task_name].call(labels, probabilities)
            total += task.loss_weight * tf.where(labelled, task_losses, 0.0)
        return total

    def task_accuracies(self, y_true, y_pred) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
        """`{task: (correct, labelled)}` per example, shape `(B,)` each: what the loop sums per task."""
        sums = {}
        for task_name, task in self.tasks.items():
            labelled, labels = _labelled(y_true[task_name])
            correct = example_accuracy(task.kind, labels, tf.cast(y_pred[task_name], tf.float32))
            labelled = tf.cast(labelled, tf.float32)
            sums[task_name] = (correct * labelled, labelled)
        return sums

    def invalid_labels(self, y_true, y_pred):
        """Per example, 1.0 where a task's label (a missing one aside) does not fit its head: see `invalid_labels`."""
        invalid = 0.0
        for task_name, task in self.tasks.items():
            labelled = tf.cast(_labelled(y_true[task_name])[0], tf.float32)
            invalid += labelled * invalid_labels(task.kind, y_true[task_name], y_pred[task_name])
        return tf.minimum(invalid, 1.0)

    def compile_arguments(self) -> dict:
        """`loss`, `loss_weights` and `metrics` per output for `model.compile`, so that Keras' own
        `evaluate` works on the model; it does not skip missing labels (`tfxfer.evaluate_model` does)."""
        return {"loss": dict(self._losses),
                "loss_weights": {name: task.loss_weight for name, task in self.tasks.items()},
                "metrics": {name: metrics_for(task.kind) for name, task in self.tasks.items()}}

    def get_config(self):
        return {**super().get_config(), "tasks": {name: task.get_config() for name, task in self.tasks.items()},
                "label_smoothing": self.label_smoothing}


def _labelled(labels):
    """`(labelled (B,) bool, labels with missing ones set to 0)`: 0 keeps every loss finite before it is masked.

    A multi-hot row is missing when all of it is `MISSING_LABEL`, as the evaluation reads it: a row with a -1
    among 0s and 1s is labelled, and `invalid_labels` counts it, where reading its first entry only would skip
    the row silently when that entry is the -1.
    """
    labels = tf.cast(labels, tf.float32)
    rows = tf.reshape(labels, (tf.shape(labels)[0], -1))
    labelled = tf.reduce_any(tf.not_equal(rows, float(tasks_lib.MISSING_LABEL)), axis=1)
    return labelled, tf.maximum(labels, 0.0)
