"""Loss and metrics for each head kind."""

import keras

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
