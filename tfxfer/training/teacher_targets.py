"""The teacher's probabilities, computed once and carried beside the labels through the student's input pipeline.

The teacher is frozen, so its probabilities for an example never change:
`run_teacher` runs it once over the data (in inference mode), and
`TeacherTargets` keeps them keyed by a fingerprint of each example's inputs,
so the student's pipeline can find them again whatever its order and batches
(`with_targets`). Text models tokenize raw texts with their own preprocessor
(`model_inputs`), since teacher and student rarely share a tokenizer; an image
student may take smaller images than its teacher, resized from the teacher's.
"""

import keras
import numpy as np
import tensorflow as tf

from tfxfer.models import classifier
from tfxfer.training.distillation_loss import UNLABELLED

# Seed of the order in which labelled and unlabelled batches are drawn: fixed, so
# every worker of a multi-worker run draws alike.
_MIX_SEED = 0
# What the pipeline's error says when a batch holds an example the teacher never saw.
UNSEEN_EXAMPLE = "distill: an example the teacher pass never saw"


def example_keys(inputs) -> tf.Tensor:
    """A 64-bit fingerprint of each example of a batch of inputs (a tensor or a structure of them), `(B,)`."""
    fingerprints = [tf.fingerprint(tensor) for tensor in tf.nest.flatten(inputs)]
    if len(fingerprints) > 1:
        fingerprints = [tf.fingerprint(tf.concat(fingerprints, axis=1))]
    return tf.bitcast(fingerprints[0], tf.int64)


class TeacherTargets:
    """The teacher's probabilities of every example it ran on, found again by the example's inputs.

    Keyed by a fingerprint of the inputs, not by position, so the pipeline may
    reshuffle and rebatch between epochs. Kept as constants of the pipeline (the
    sorted keys, searched with `tf.searchsorted`): no lookup-table resource that
    a strategy's dataset rewrite (sharding, rebatching) would have to carry.

    Args:
        keys: np.ndarray. int64 `(N,)`, from `example_keys`; repeats (the same
            inputs twice) keep their first probabilities, which are the same.
        probabilities: np.ndarray. float32 `(N, units)`, row `i` of `keys[i]`.
    """

    def __init__(self, keys: np.ndarray, probabilities: np.ndarray):
        self.keys, first = np.unique(keys, return_index=True)
        self.probabilities = probabilities[first]

    def lookup(self, inputs) -> tf.Tensor:
        """The teacher's probabilities `(B, units)` of a batch of inputs; an example never seen
        fails the pipeline with an `InvalidArgumentError` that says so."""
        keys = example_keys(inputs)
        known = tf.constant(self.keys)
        rows = tf.minimum(tf.searchsorted(known, keys), len(self.keys) - 1)
        seen = tf.debugging.Assert(tf.reduce_all(tf.equal(tf.gather(known, rows), keys)), [UNSEEN_EXAMPLE])
        with tf.control_dependencies([seen]):
            return tf.gather(tf.constant(self.probabilities), rows)


def model_inputs(model: keras.Model, inputs, *, resize: bool = True):
    """What `model` takes of a batch of inputs: raw texts through a text classifier's own preprocessor;
    with `resize`, images resized to an image model's input size (a student may take smaller images than its
    teacher; the teacher takes the data's images as they are, as `fine_tune` would, so it has no `resize`)."""
    preprocessor = classifier.text_preprocessor(model)
    if preprocessor is not None and isinstance(inputs, tf.Tensor) and inputs.dtype == tf.string:
        return preprocessor(inputs)
    size = _image_size(model) if resize else None
    if size is not None and isinstance(inputs, tf.Tensor) and inputs.shape.rank == 4 and (
            tuple(inputs.shape[1:3]) != size):
        # Antialiased: a smaller student sees the image averaged, as a resize of the original would give it.
        return tf.image.resize(inputs, size, antialias=True)
    return inputs


def _image_size(model: keras.Model) -> tuple[int, int] | None:
    """`(height, width)` of a model with one image input `(N, H, W, C)` of a fixed size; None for any other."""
    shape = model.input_shape
    if not (isinstance(shape, tuple) and len(shape) == 4 and all(isinstance(d, int) for d in shape[1:3])):
        return None
    return shape[1], shape[2]


def as_model_sees_it(model: keras.Model, dataset: tf.data.Dataset | None, *,
                     resize: bool = True) -> tf.data.Dataset | None:
    """`(inputs, labels)` batches with the inputs as `model` takes them (`model_inputs`)."""
    if dataset is None:
        return None
    return dataset.map(lambda inputs, labels: (model_inputs(model, inputs, resize=resize), labels),
                       num_parallel_calls=tf.data.AUTOTUNE)


def mark_unlabelled(unlabelled_data: tf.data.Dataset, label_width: int) -> tf.data.Dataset:
    """Batches of inputs as `(inputs, labels)` batches whose labels are all `UNLABELLED`."""
    def mark(inputs):
        count = tf.shape(tf.nest.flatten(inputs)[0])[0]
        return inputs, tf.fill([count, label_width], UNLABELLED)
    return unlabelled_data.map(mark)


def with_targets(student: keras.Model, dataset: tf.data.Dataset, targets: TeacherTargets,
                 label_width: int) -> tf.data.Dataset:
    """`(student inputs, labels and teacher probabilities packed)` batches, what `DistillationLoss` takes."""
    def pack(inputs, labels):
        label_columns = tf.reshape(tf.cast(labels, tf.float32), [-1, label_width])
        return model_inputs(student, inputs), tf.concat([label_columns, targets.lookup(inputs)], axis=1)
    return dataset.map(pack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def inference(model: keras.Model):
    """`model` in inference mode (no dropout, no augmentation), one traced function for all its batches."""
    return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)


def predict(forward, batches: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities `forward` (from `inference`) gives over `(inputs, companion)` batches, and the companions."""
    probabilities, companions = [], []
    for inputs, companion in batches.prefetch(tf.data.AUTOTUNE):
        probabilities.append(np.asarray(forward(inputs), np.float32))
        companions.append(companion.numpy())
    return np.concatenate(probabilities), np.concatenate(companions)


def run_teacher(teacher: keras.Model, datasets: dict[str, tf.data.Dataset]) -> dict[str, tuple]:
    """`{name: (keys, probabilities)}`: the teacher run once over every example of each `(inputs, labels)` dataset."""
    forward = inference(teacher)
    passes = {}
    for name, dataset in datasets.items():
        probabilities, keys = predict(forward, dataset.map(
            lambda inputs, labels: (model_inputs(teacher, inputs, resize=False), example_keys(inputs)),
            num_parallel_calls=tf.data.AUTOTUNE))
        passes[name] = keys, probabilities
    return passes


def mix(labelled: tf.data.Dataset, unlabelled: tf.data.Dataset, labelled_steps: int,
        unlabelled_steps: int) -> tf.data.Dataset:
    """Both datasets' batches, drawn in a random order that changes every epoch."""
    total = labelled_steps + unlabelled_steps
    return tf.data.Dataset.sample_from_datasets(
        [labelled, unlabelled], weights=[labelled_steps / total, unlabelled_steps / total], seed=_MIX_SEED,
        stop_on_empty_dataset=False, rerandomize_each_iteration=True)
