"""Tests for tfxfer.training.distillation_loss and tfxfer.training.distillation (`distill`, end to end).

The loss is checked against a numpy transcription of its formula, per head kind.
End to end, the teacher is a fixed linear softmax over 6 generated features and
the student a tfxfer head on a linear backbone, which can match the teacher
exactly: learning from the teacher's probabilities should get it there, while
the teacher's top classes alone (the labels) push it to overconfidence.
Mirrored training runs this file in a process of its own (two logical CPU
devices must be set before TensorFlow initialises).
"""

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import FILLER, NEGATIVE, POSITIVE, sentences, write_word_vectors

import tfxfer
from tfxfer.errors import ConfigError
from tfxfer.models import heads, layer_names
from tfxfer.models.heads import HeadKind
from tfxfer.training import losses
from tfxfer.training.distillation import distill
from tfxfer.training.distillation_loss import UNLABELLED, DistillationLoss

FEATURES = 6
NUM_CLASSES = 3
EPSILON = 1e-7


# Clearing Keras' session after each of this file's many quick checks would be most of their time.
CLEAR_SESSION_ONCE = True


@pytest.fixture(autouse=True, scope="module")
def _script_server_started(script_server):
    """Asked for first: the server imports TensorFlow in its own process (about 10 s) while the
    tests before the mirrored one run here."""


# The loss, against numpy.

def _softmax(logits):
    exponentials = np.exp(logits - logits.max(-1, keepdims=True))
    return exponentials / exponentials.sum(-1, keepdims=True)


def _kl(p, q):
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def _numpy_soft_term(kind, teacher, student, temperature):
    """KL(teacher_T || student_T) per example, written from the formula's definition."""
    if kind is HeadKind.MULTICLASS:
        return _kl(_softmax(np.log(teacher) / temperature), _softmax(np.log(student) / temperature))
    # Each sigmoid unit: the two classes [1 - p, p], logit log(p) - log(1 - p).
    t, s = (1 / (1 + np.exp(-(np.log(p) - np.log(1 - p)) / temperature)) for p in (teacher, student))
    return np.mean(t * np.log(t / s) + (1 - t) * np.log((1 - t) / (1 - s)), axis=-1)


def _numpy_hard_term(kind, labels, student):
    if kind is HeadKind.MULTICLASS:
        return -np.log(student[np.arange(len(labels)), labels.astype(int)])
    labels = labels.reshape(student.shape)
    return -np.mean(labels * np.log(student) + (1 - labels) * np.log(1 - student), axis=-1)


# A batch of two examples per head kind: (labels, teacher probabilities, student probabilities).
BATCHES = {
    HeadKind.MULTICLASS: (np.array([2.0, 0.0]), np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]),
                          np.array([[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])),
    HeadKind.BINARY: (np.array([1.0, 0.0]), np.array([[0.8], [0.3]]), np.array([[0.6], [0.4]])),
    HeadKind.MULTILABEL: (np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), np.array([[0.9, 0.2, 0.6], [0.1, 0.7, 0.4]]),
                          np.array([[0.7, 0.4, 0.5], [0.2, 0.5, 0.3]])),
}


def _packed(labels, teacher):
    label_columns = labels.reshape(len(labels), -1)
    return tf.constant(np.concatenate([label_columns, teacher], axis=1), tf.float32)


def _tensor(array):
    return tf.constant(array, tf.float32)


@pytest.mark.parametrize("kind", list(HeadKind))
def test_the_loss_is_hintons_formula_on_log_probabilities(kind):
    labels, teacher, student = BATCHES[kind]
    temperature, alpha = 3.0, 0.3
    loss = DistillationLoss(kind, temperature=temperature, alpha=alpha)
    ours = loss.call(_packed(labels, teacher), _tensor(student))
    expected = (alpha * _numpy_hard_term(kind, labels, student)
                + (1 - alpha) * temperature ** 2 * _numpy_soft_term(kind, teacher, student, temperature))
    assert ours.shape == (2,)
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


@pytest.mark.parametrize("kind", list(HeadKind))
def test_alpha_one_is_the_heads_plain_cross_entropy(kind):
    labels, teacher, student = BATCHES[kind]
    ours = DistillationLoss(kind, temperature=5.0, alpha=1.0).call(_packed(labels, teacher), _tensor(student))
    plain = losses.loss_for(kind).call(_tensor(labels), _tensor(student))
    np.testing.assert_allclose(ours, plain, rtol=1e-6)
    np.testing.assert_allclose(ours, _numpy_hard_term(kind, labels, student), rtol=1e-5)


@pytest.mark.parametrize("kind", list(HeadKind))
def test_an_unlabelled_example_contributes_no_hard_label_loss(kind):
    labels, teacher, student = BATCHES[kind]
    unlabelled = np.full_like(labels, UNLABELLED)
    unlabelled[1] = labels[1]  # the second example keeps its labels
    temperature, alpha = 2.0, 0.4
    ours = DistillationLoss(kind, temperature, alpha).call(_packed(unlabelled, teacher), _tensor(student))
    soft = (1 - alpha) * temperature ** 2 * _numpy_soft_term(kind, teacher, student, temperature)
    hard = alpha * _numpy_hard_term(kind, labels, student)
    np.testing.assert_allclose(ours, [soft[0], soft[1] + hard[1]], rtol=1e-5)
    hard_only = DistillationLoss(kind, temperature, alpha=1.0).call(_packed(unlabelled, teacher), _tensor(student))
    assert float(hard_only[0]) == 0.0 and float(hard_only[1]) > 0.1


def test_probabilities_of_zero_and_one_are_clipped_to_finite_loss_and_gradients():
    packed = tf.constant([[0.0, 0.0, 0.0, 1.0]])  # label 0; the teacher is certain of class 2
    student = tf.Variable([[1.0, 0.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = DistillationLoss(HeadKind.MULTICLASS, temperature=2.0, alpha=0.5).call(packed, student)
    assert np.isfinite(loss.numpy()).all() and float(loss[0]) > 1.0
    assert np.isfinite(tape.gradient(loss, student).numpy()).all()


def test_accuracy_is_against_the_label_or_the_teachers_top_class_when_there_is_none():
    loss = DistillationLoss(HeadKind.MULTICLASS)
    teacher = [[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1]]
    packed = tf.constant(np.concatenate([[[2.0], [UNLABELLED], [UNLABELLED]], teacher], axis=1), tf.float32)
    student = tf.constant([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])
    np.testing.assert_array_equal(loss.example_accuracy(packed, student), [0.0, 1.0, 0.0])


# Models and data for `distill`.

def _teacher(seed=0, num_classes=NUM_CLASSES):
    """A fixed linear softmax: soft probabilities, whose top class is the label."""
    inputs = keras.Input((FEATURES,))
    predictions = keras.layers.Dense(num_classes, activation="softmax", name=layer_names.PREDICTIONS)
    model = keras.Model(inputs, predictions(inputs), name="teacher")
    weights = np.random.default_rng(seed).normal(0, 1, (FEATURES, num_classes)).astype("float32")
    predictions.set_weights([weights, np.zeros(num_classes, "float32")])
    return model


def _student(seed=100, num_classes=NUM_CLASSES, multi_label=False):
    """tfxfer's head on a linear backbone: it can match a linear teacher exactly."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FEATURES,))
    backbone = keras.Model(inputs, keras.layers.Dense(8, name="linear")(inputs), name=layer_names.BACKBONE)
    model_inputs = keras.Input((FEATURES,))
    outputs = heads.classification_head(backbone(model_inputs), num_classes, multi_label=multi_label, dropout=0.0)
    return keras.Model(model_inputs, outputs, name="student")


def _features(count, seed):
    return np.random.default_rng(seed).normal(size=(count, FEATURES)).astype("float32")


def _labelled(teacher, count, seed, batch_size=32):
    features = _features(count, seed)
    labels = np.argmax(teacher(features), axis=-1).astype("int32")
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size)


def _config(**changes):
    base = {"epochs": 20, "fine_tune_epochs": 0, "learning_rate": 0.3, "label_smoothing": 0.0,
            "early_stopping_patience": None}
    return tfxfer.FineTuneConfig(**{**base, **changes})


def _mean_kl(teacher_probabilities, student_probabilities):
    teacher, student = (np.clip(p, EPSILON, 1.0) for p in (teacher_probabilities, student_probabilities))
    return float(np.mean(_kl(teacher, student)))


# `distill` end to end.

@pytest.fixture(scope="module")
def compared():
    """The same student trained from the same seed on the same data: distilled, and on labels alone."""
    teacher = _teacher()
    train, validation = _labelled(teacher, 200, seed=1, batch_size=50), _labelled(teacher, 300, seed=2)
    distilled, on_labels = _student(), _student()
    result = distill(teacher, distilled, train, validation, temperature=2.0, alpha=0.1, config=_config(), verbose=0)
    tfxfer.fine_tune(on_labels, train, config=_config(), verbose=0)
    features = np.concatenate([batch for batch, _ in validation.as_numpy_iterator()])
    return {"teacher": teacher, "distilled": distilled, "on_labels": on_labels, "result": result,
            "validation": validation, "features": features}


def test_a_distilled_student_ends_closer_to_the_teacher_than_one_trained_on_labels_alone(compared):
    features = compared["features"]
    teacher = compared["teacher"].predict(features, verbose=0)
    distilled = compared["distilled"].predict(features, verbose=0)
    on_labels = compared["on_labels"].predict(features, verbose=0)
    # Measured over 8 seeds of teacher, data and student: the ratio was 0.0 to 0.14, and the
    # distilled student agreed more often with the teacher in each.
    assert _mean_kl(teacher, distilled) < 0.5 * _mean_kl(teacher, on_labels)
    assert np.mean(distilled.argmax(-1) == teacher.argmax(-1)) >= np.mean(on_labels.argmax(-1) == teacher.argmax(-1))


def test_the_result_compares_student_and_teacher_on_the_validation_labels(compared):
    result, validation = compared["result"], compared["validation"]
    labels = np.concatenate([batch for _, batch in validation.as_numpy_iterator()])
    teacher = compared["teacher"].predict(compared["features"], verbose=0)
    student = compared["distilled"].predict(compared["features"], verbose=0)
    expected_teacher_loss = float(np.mean(-np.log(teacher[np.arange(len(labels)), labels])))
    assert result.teacher_validation == pytest.approx({"loss": expected_teacher_loss, "accuracy": 1.0}, rel=1e-4)
    assert result.student_validation["accuracy"] == pytest.approx(np.mean(student.argmax(-1) == labels))
    assert result.agreement == pytest.approx(np.mean(student.argmax(-1) == teacher.argmax(-1)))
    # The student is left compiled with its plain loss: its own evaluate agrees.
    evaluated = compared["distilled"].evaluate(validation, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(result.student_validation["loss"], rel=1e-4)
    metrics = result.metrics()
    assert metrics["phase1"]["epochs_run"] == 20 and "phase2" not in metrics
    assert metrics["student"] == result.student_validation and metrics["unlabelled_examples"] == 0


class _CountBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.batches[-1] += 1


def test_unlabelled_examples_train_the_student_towards_the_teacher():
    teacher = _teacher(seed=3)
    train, validation = _labelled(teacher, 8, seed=4, batch_size=8), _labelled(teacher, 300, seed=5)
    unlabelled = tf.data.Dataset.from_tensor_slices(_features(200, seed=6)).batch(50)
    counter = _CountBatches()
    with_unlabelled = distill(teacher, _student(), train, validation, unlabelled_data=unlabelled, temperature=2.0,
                              config=_config(epochs=15), cache_features=False, callbacks=[counter], verbose=0)
    labelled_only = distill(teacher, _student(), train, validation, temperature=2.0, config=_config(epochs=15),
                            cache_features=False, verbose=0)
    assert counter.batches == [1 + 4] * 15  # every epoch: the labelled batch and the 4 unlabelled ones
    assert with_unlabelled.unlabelled_examples == 200
    # Measured over 6 seeds: 0.963 to 1.0 with the unlabelled examples, 0.54 to 0.79 without.
    assert with_unlabelled.agreement >= 0.9
    assert with_unlabelled.agreement > labelled_only.agreement + 0.1


def test_text_models_with_their_own_tokenizers_distill_from_raw_texts(tmp_path):
    texts = sentences(POSITIVE, 40, 0) + sentences(NEGATIVE, 40, 1)
    labels = np.array([1] * 40 + [0] * 40, "int32")
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(80, seed=0).batch(16)
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE + FILLER, dim=4)
    teacher, student = (tfxfer.build_text_classifier(
        tfxfer.load_word_vector_backbone(vectors, texts, sequence_length=length, encoder="mean", seed=0),
        num_classes=2, dropout=0.0) for length in (8, 6))
    tokenized = data.map(lambda batch_texts, batch_labels: (teacher.preprocessor(batch_texts), batch_labels))
    tfxfer.fine_tune(teacher, tokenized, config=_config(epochs=10, learning_rate=0.05), verbose=0)
    result = distill(teacher, student, data, data, config=_config(epochs=10, learning_rate=0.05), verbose=0)
    assert student.head_kind is HeadKind.BINARY
    assert result.teacher_validation["accuracy"] == 1.0
    assert result.student_validation["accuracy"] >= 0.95 and result.agreement >= 0.95


def test_an_example_the_teacher_never_saw_stops_training_with_a_config_error():
    teacher = _teacher()
    # Another random half of the examples every pass: the teacher saw the first pass's only.
    halves = _labelled(teacher, 64, seed=1).unbatch().shuffle(64, seed=0).take(32).batch(16)
    with pytest.raises(ConfigError, match=r"an example the teacher pass never saw.*do not take\(\) a reshuffled"):
        distill(teacher, _student(), halves, config=_config(epochs=1), verbose=0)


# Mistakes, refused before any training.

@pytest.mark.parametrize("student_classes, multi_label, message", [
    (4, False, (r"teacher has 3 classes \(multiclass head\) and the student 4 \(multiclass\).*num_classes=3, "
                r"multi_label=False. Received: teacher='teacher', student='student'")),
    (3, True, r"teacher has 3 classes \(multiclass head\) and the student 3 \(multilabel\)"),
])
def test_teacher_and_student_must_share_classes_and_head_kind(student_classes, multi_label, message):
    with pytest.raises(ConfigError, match=message):
        distill(_teacher(), _student(num_classes=student_classes, multi_label=multi_label),
                _labelled(_teacher(), 8, seed=0))


@pytest.mark.parametrize("arguments, message", [
    ({"temperature": 0.0}, r"temperature must be a number > 0.*Received: temperature=0.0"),
    ({"temperature": -1}, r"Received: temperature=-1"),
    ({"temperature": "4"}, r"Received: temperature='4'"),
    ({"alpha": 1.5}, r"alpha must be a number in \[0, 1\].*Received: alpha=1.5"),
    ({"alpha": -0.1}, r"Received: alpha=-0.1"),
    ({"alpha": True}, r"Received: alpha=True"),
    # Above 100 the T^2-scaled soft term is float32 rounding noise; by 2e19 T^2 overflows, and the loss is NaN.
    ({"temperature": 1e20}, r"temperature must be at most 100: above it float32 cannot tell the softened "
                            r"probabilities apart.*Received: temperature=1e\+20"),
    ({"temperature": 101}, r"Received: temperature=101"),
])
def test_temperature_and_alpha_are_checked(arguments, message):
    with pytest.raises(ConfigError, match=message):
        distill(_teacher(), _student(), _labelled(_teacher(), 8, seed=0), **arguments)


@pytest.mark.parametrize("argument", ["validation_data", "unlabelled_data"])
def test_numpy_arrays_for_a_dataset_are_refused_with_the_fix(argument):
    arrays = (np.zeros((8, FEATURES), "float32"), np.zeros(8))
    with pytest.raises(ConfigError, match=rf"{argument} must be a tf\.data\.Dataset of batches; NumPy arrays "
                                          r"become one with tf\.data\.Dataset\.from_tensor_slices"):
        distill(_teacher(), _student(), _labelled(_teacher(), 8, seed=0), **{argument: arrays})


def test_a_student_sharing_weights_with_its_teacher_is_refused():
    # Training it would change the teacher, whose probabilities and validation metrics were taken before.
    teacher = _teacher()
    with pytest.raises(ConfigError, match=r"The student is the teacher: training it would change the teacher too.*"
                                          r"Received: teacher='teacher', student='teacher'"):
        distill(teacher, teacher, _labelled(teacher, 8, seed=0), config=_config(epochs=1), verbose=0)
    inputs = keras.Input((FEATURES,))
    backbone = keras.Model(inputs, keras.layers.Dense(8)(inputs), name=layer_names.BACKBONE)

    def on_the_backbone():
        model_inputs = keras.Input((FEATURES,))
        return keras.Model(model_inputs, heads.classification_head(backbone(model_inputs), NUM_CLASSES, dropout=0.0))

    one, other = on_the_backbone(), on_the_backbone()
    with pytest.raises(ConfigError, match=r"The student shares 2 weights with the teacher.*backbone loaded again"):
        distill(one, other, _labelled(teacher, 8, seed=0), config=_config(epochs=1), verbose=0)


def test_class_weights_are_refused():
    with pytest.raises(ConfigError, match=r"does not weight classes.*Received: class_weight='balanced'"):
        distill(_teacher(), _student(), _labelled(_teacher(), 8, seed=0), config=_config(class_weight="balanced"))


def test_unlabelled_data_with_labels_is_refused():
    data = _labelled(_teacher(), 8, seed=0)
    with pytest.raises(ConfigError, match=r"unlabelled_data holds batches of inputs only.*lambda inputs, labels"):
        distill(_teacher(), _student(), data, unlabelled_data=data)


def test_data_the_teacher_cannot_take_is_refused():
    wide = tf.data.Dataset.from_tensor_slices((np.zeros((4, FEATURES + 1), "float32"), np.zeros(4, "int32")))
    with pytest.raises(ConfigError, match=r"Received: train_data \(for the teacher\)'s inputs of shape"):
        distill(_teacher(), _student(), wide.batch(2))


@pytest.mark.parametrize("argument", ["train_data", "unlabelled_data"])
def test_images_of_another_size_than_the_teachers_are_refused_not_resized_for_it(argument):
    # Only a student's images are resized (from the data's); the teacher takes them as fine_tune would.
    from test_training import _colour_images, _tiny_backbone

    teacher, student = (tfxfer.build_image_classifier(_tiny_backbone(size), num_classes=NUM_CLASSES,
                                                      preprocessing="tf", augmentation=False, dropout=0.0)
                        for size in (32, 16))
    labels = np.arange(8) % NUM_CLASSES
    fitting = tf.data.Dataset.from_tensor_slices((_colour_images(labels, seed=0), labels)).batch(4)
    larger = tf.image.resize(_colour_images(labels, seed=1), (48, 48))
    data = {"train_data": tf.data.Dataset.from_tensor_slices((larger, labels)).batch(4), "unlabelled_data": None}
    if argument == "unlabelled_data":
        data = {"train_data": fitting, "unlabelled_data": tf.data.Dataset.from_tensor_slices(larger).batch(4)}
    with pytest.raises(ConfigError, match=rf"The model takes 32x32x3 images but {argument} \(for the teacher\)'s "
                                          r"inputs are 48x48x3 images"):
        distill(teacher, student, data["train_data"], unlabelled_data=data["unlabelled_data"],
                config=_config(epochs=1), verbose=0)


def test_unlabelled_data_the_models_cannot_take_is_refused():
    wide = tf.data.Dataset.from_tensor_slices(np.zeros((4, FEATURES + 1), "float32")).batch(2)
    with pytest.raises(ConfigError, match=r"Received: unlabelled_data \(for the teacher\)'s inputs of shape"):
        distill(_teacher(), _student(), _labelled(_teacher(), 8, seed=0), unlabelled_data=wide)


# Mirrored training on two logical CPU devices.

def test_mirrored_on_two_cpu_replicas_matches_one_device(script_server):
    process = script_server.run(os.path.abspath(__file__), "mirrored")
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["weights_moved"] > 1e-2
    # float32 sums in another order across replicas.
    assert report["max_difference_to_one_device"] < 1e-5
    assert report["val_loss"][0] == pytest.approx(report["val_loss"][1], abs=1e-5)


def _mirrored():
    """Distils on two mirrored CPU replicas and on one device, same global batch; prints JSON."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    teacher = _teacher()
    train, validation = _labelled(teacher, 64, seed=1, batch_size=16), _labelled(teacher, 32, seed=2)
    unlabelled = tf.data.Dataset.from_tensor_slices(_features(32, seed=3)).batch(16)
    students, val_losses = [], []
    for scope in (strategy, tf.distribute.get_strategy()):
        with scope.scope():
            student = _student()  # the same seed: the same initial weights
        # One phase, not cached: the teacher's targets go through the strategy's input pipeline every step.
        # (Phase 2 under a strategy is fine_tune's, tested in tests/test_distribute.py.)
        result = distill(teacher, student, train, validation, unlabelled_data=unlabelled, cache_features=False,
                         config=_config(epochs=2), verbose=0)
        students.append(student)
        val_losses.append(result.training.phase1.final_metrics["val_loss"])
    mirrored, single = (student.get_weights() for student in students)
    initial = _student().get_weights()
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "weights_moved": float(max(np.max(np.abs(a - b)) for a, b in zip(mirrored, initial))),
        "max_difference_to_one_device": float(max(np.max(np.abs(a - b)) for a, b in zip(mirrored, single))),
        "val_loss": val_losses,
    }))


if __name__ == "__main__" and sys.argv[1:] == ["mirrored"]:
    _mirrored()


def test_an_image_student_may_take_smaller_images_than_its_teacher():
    from test_training import _colour_images, _tiny_backbone

    from tfxfer.training import teacher_targets

    def classifier(size):
        return tfxfer.build_image_classifier(_tiny_backbone(size), num_classes=NUM_CLASSES, preprocessing="tf",
                                             augmentation=False, dropout=0.0)

    teacher, student = classifier(32), classifier(16)
    labels = np.arange(24) % NUM_CLASSES
    images = _colour_images(labels, seed=0)
    assert teacher_targets.model_inputs(student, tf.constant(images)).shape == (24, 16, 16, 3)
    assert teacher_targets.model_inputs(teacher, tf.constant(images)).shape == (24, 32, 32, 3)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)

    result = distill(teacher, student, data, data, config=_config(epochs=2, learning_rate=0.03), verbose=0)

    assert result.training.phase1.epochs_run == 2 and 0 <= result.agreement <= 1
