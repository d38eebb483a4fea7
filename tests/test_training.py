"""Tests for tfxfer.training: `fine_tune`, its losses, schedules and class weights.

Models use a tiny two-block conv backbone (with BatchNorm) so that a whole
two-phase run compiles and trains in a few seconds; the task is generated:
an image's class is the colour channel that is bright.
"""

import os
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError, NonFiniteLossError
from tfxfer.models.heads import HeadKind
from tfxfer.training import class_weights, losses, schedules
from tfxfer.training.backup import PHASE_STATE
from tfxfer.training.class_weights import balanced_class_weight, count_labels
from tfxfer.training.planner import steps_per_epoch

NUM_CLASSES = 3


def _tiny_backbone(size=32):
    inputs = keras.Input((size, size, 3))
    x = inputs
    for name, filters in (("conv_1", 8), ("conv_2", 16)):
        x = keras.layers.Conv2D(filters, 3, strides=2, name=name)(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.Model(inputs, x, name="tiny")


def _classifier(num_classes=NUM_CLASSES, **kwargs):
    return tfxfer.build_image_classifier(
        _tiny_backbone(), num_classes=num_classes, preprocessing="tf", augmentation=False, dropout=0.0, **kwargs)


def _colour_images(labels, seed):
    """32x32 images whose channel `label` is bright (200) and the others dark (40), plus noise."""
    rng = np.random.default_rng(seed)
    images = np.full((len(labels), 32, 32, 3), 40.0)
    images[np.arange(len(labels)), :, :, labels] = 200.0
    images += rng.normal(0, 25, images.shape)
    return np.clip(images, 0, 255).astype("float32")


def _colour_data(num_examples, seed, num_classes=NUM_CLASSES, batch_size=8):
    labels = np.arange(num_examples) % num_classes
    images = _colour_images(labels, seed)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def _config(**changes):
    base = dict(epochs=3, fine_tune_epochs=2, learning_rate=3e-2, fine_tune_learning_rate=3e-3,
                fine_tune_at="conv_2", label_smoothing=0.0, early_stopping_patience=None)
    return FineTuneConfig(**{**base, **changes})


class _CountPhases(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.fits = 0
        self.epochs = 0

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


# One two-phase run on the colour task, shared by the tests that read its result.

@pytest.fixture(scope="module")
def colour_run():
    keras.utils.set_random_seed(1234)
    model = _classifier()
    train, validation = _colour_data(48, seed=0), _colour_data(24, seed=1)
    model.compile(loss=losses.loss_for(HeadKind.MULTICLASS), metrics=losses.metrics_for(HeadKind.MULTICLASS))
    initial = model.evaluate(validation, verbose=0, return_dict=True)
    counter = _CountPhases()
    result = tfxfer.fine_tune(model, train, validation, config=_config(), callbacks=[counter])
    return dict(initial=initial, result=result, counter=counter)


def test_fine_tune_learns_the_colour_task(colour_run):
    final = colour_run["result"].phase2.final_metrics
    assert final["val_accuracy"] >= 0.9  # chance is 1/3
    assert final["val_loss"] < colour_run["initial"]["loss"] - 0.3


def test_fine_tune_lowers_training_loss_in_both_phases(colour_run):
    result = colour_run["result"]
    phase1_loss, phase2_loss = result.phase1.history["loss"], result.phase2.history["loss"]
    assert phase1_loss[-1] < phase1_loss[0]
    assert phase2_loss[-1] < phase1_loss[0]


def test_fine_tune_result_metrics(colour_run):
    result = colour_run["result"]
    metrics = result.metrics()
    assert set(metrics) == {"phase1", "phase2"}
    for phase, epochs in (("phase1", 3), ("phase2", 2)):
        assert {"val_accuracy", "val_loss", "seconds", "epochs_run", "trainable_parameters"} <= set(metrics[phase])
        assert metrics[phase]["epochs_run"] == epochs
        assert metrics[phase]["seconds"] > 0
    # final_metrics are of the weights the phase ended with: phase 1's last epoch's (phase 2's blend is
    # checked under fine_tune_interpolation below).
    assert metrics["phase1"]["val_loss"] == pytest.approx(result.phase1.history["val_loss"][-1], rel=1e-5)


def test_phase1_trains_the_head_and_phase2_adds_the_top_of_the_backbone(colour_run):
    metrics = colour_run["result"].metrics()
    # Head: 16 features -> 3 classes. Phase 2 adds conv_2 (3*3*8*16 kernel + 16 biases).
    assert metrics["phase1"]["trainable_parameters"] == 16 * 3 + 3
    assert metrics["phase2"]["trainable_parameters"] == 16 * 3 + 3 + 3 * 3 * 8 * 16 + 16


def test_user_callbacks_run_in_both_phases(colour_run):
    assert colour_run["counter"].fits == 2
    assert colour_run["counter"].epochs == 3 + 2


def test_fine_tune_does_not_warn_about_shuffling(recwarn):
    tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), config=_config(epochs=1, fine_tune_epochs=0))
    assert not [w for w in recwarn if "shuffle" in str(w.message)]


def test_fine_tune_epochs_zero_skips_phase2():
    model = _classifier()
    result = tfxfer.fine_tune(model, _colour_data(16, seed=0), _colour_data(8, seed=1),
                              config=_config(epochs=1, fine_tune_epochs=0))
    assert result.phase2 is None
    assert set(result.metrics()) == {"phase1"}
    assert model.get_layer("backbone").trainable_weights == []


class _WreckHeadAfterFirstEpoch(keras.callbacks.Callback):
    """Makes every epoch after the first one worse, so the first is the best."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            kernel = self.model.get_layer("predictions").kernel
            kernel.assign(-100.0 * kernel)


def test_early_stopping_restores_the_best_epoch():
    model = _classifier()
    result = tfxfer.fine_tune(model, _colour_data(16, seed=0), _colour_data(8, seed=1),
                              config=_config(epochs=6, fine_tune_epochs=0, learning_rate=1e-3,
                                             early_stopping_patience=1),
                              callbacks=[_WreckHeadAfterFirstEpoch()])
    val_losses = result.phase1.history["val_loss"]
    assert result.phase1.epochs_run == 2
    assert val_losses[1] > val_losses[0]
    assert result.phase1.final_metrics["val_loss"] == pytest.approx(val_losses[0], rel=1e-5)


def test_keras_callbacks_in_auto_mode_watch_val_accuracy_and_keep_its_best_epoch(tmp_path):
    # README's own example: Keras reads which way accuracy improves from the model's compiled metrics.
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), monitor="val_accuracy",
                                                 save_best_only=True, save_weights_only=True)
    early = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    model = _classifier()
    validation = _colour_data(9, seed=1)
    result = tfxfer.fine_tune(model, _colour_data(24, seed=0), validation,
                              config=_config(epochs=5, fine_tune_epochs=0, learning_rate=0.1),
                              callbacks=[checkpoint, early, _WreckHeadAfterFirstEpoch()])
    accuracies = result.phase1.history["val_accuracy"]
    assert accuracies[1] < accuracies[0]  # the wrecked head is worse: no rise, so a patience of 1 stops
    assert result.phase1.epochs_run == 2
    assert early.best == checkpoint.best == accuracies[0]
    best = _classifier()
    best.load_weights(str(tmp_path / "best.weights.h5"))
    best.compile(loss=losses.loss_for(HeadKind.MULTICLASS), metrics=losses.metrics_for(HeadKind.MULTICLASS))
    assert best.evaluate(validation, verbose=0, return_dict=True)["accuracy"] == pytest.approx(accuracies[0])


def test_a_warmup_fraction_past_1_fails_before_phase_1_trains():
    record = _CountPhases()
    with pytest.raises(ConfigError, match=r"warmup_fraction must be a number from 0 \(no warmup\) up to, not "
                                          r"including, 1.*Received: warmup_fraction=1\.5"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), callbacks=[record],
                         config=_config(warmup_fraction=1.5))
    assert (record.fits, record.epochs) == (0, 0)


def test_one_callback_alone_runs_in_both_phases_as_under_fit():
    counter = _CountPhases()
    tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), config=_config(epochs=1, fine_tune_epochs=1),
                     callbacks=counter)
    assert (counter.fits, counter.epochs) == (2, 2)


@pytest.mark.parametrize("callback", [
    # Lowers the rate at phase 1's second epoch, whose end is before its last.
    keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", patience=0, min_delta=5.0),
    keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate / 2),
])
def test_a_callback_that_sets_the_learning_rate_fails_before_training_naming_the_config_fields(callback):
    # Unrefused, it raised Keras' TypeError ("... its learning rate is not settable") at an epoch's start or end.
    counter = _CountPhases()
    with pytest.raises(ConfigError, match=r"fine_tune schedules each phase's learning rate itself .*set learning_rate "
                                          r"and fine_tune_learning_rate in the config.*"
                                          rf"Received: callbacks item {type(callback).__name__}$"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), _colour_data(8, seed=1),
                         config=_config(epochs=3, fine_tune_epochs=1), callbacks=[counter, callback])
    assert counter.fits == 0


# FineTuneConfig.replace: None is a value, as in dataclasses.replace.

def test_replace_early_stopping_patience_none_turns_early_stopping_off():
    config = _config(epochs=4, fine_tune_epochs=0, learning_rate=1e-3, early_stopping_patience=1)
    config = config.replace(early_stopping_patience=None)
    assert config.early_stopping_patience is None
    result = tfxfer.fine_tune(_classifier(), _colour_data(16, seed=0), _colour_data(8, seed=1), config=config,
                              callbacks=[_WreckHeadAfterFirstEpoch()])
    # With patience 1, the worse second epoch would stop the phase after 2 epochs.
    assert result.phase1.epochs_run == 4


def test_replace_global_clipnorm_none_turns_clipping_off():
    config = _config(epochs=1, fine_tune_epochs=0, global_clipnorm=1.0)
    clipped, unclipped = _classifier(), _classifier()
    tfxfer.fine_tune(clipped, _colour_data(8, seed=0), config=config)
    tfxfer.fine_tune(unclipped, _colour_data(8, seed=0), config=config.replace(global_clipnorm=None))
    assert clipped.optimizer.global_clipnorm == 1.0
    assert unclipped.optimizer.global_clipnorm is None


def test_replace_keeps_the_fields_it_is_not_given():
    config = FineTuneConfig(epochs=2, global_clipnorm=1.0)
    assert config.replace(fine_tune_epochs=0) == FineTuneConfig(epochs=2, fine_tune_epochs=0, global_clipnorm=1.0)


def test_replace_with_an_unknown_field_is_an_error():
    with pytest.raises(TypeError, match=r"FineTuneConfig has no field 'epoch'; its fields are: epochs, "
                                        r"fine_tune_epochs, .*class_weight, .*jit_compile\. Received: epoch=3"):
        FineTuneConfig().replace(epoch=3)


def test_binary_head_trains_with_one_sigmoid_unit():
    model = _classifier(num_classes=2)
    predictions = model.get_layer("predictions")
    assert predictions.units == 1
    assert predictions.activation.__name__ == "sigmoid"
    train, validation = _colour_data(32, seed=0, num_classes=2), _colour_data(16, seed=1, num_classes=2)
    result = tfxfer.fine_tune(model, train, validation, config=_config(epochs=4, fine_tune_epochs=1))
    assert result.phase1.history["loss"][-1] < result.phase1.history["loss"][0]
    assert result.phase2.final_metrics["val_accuracy"] >= 0.9  # chance is 1/2


def test_multi_label_head_trains_on_multi_hot_labels():
    model = _classifier(multi_label=True)
    rng = np.random.default_rng(0)
    multi_hot = rng.integers(0, 2, (32, NUM_CLASSES)).astype("float32")
    # Every channel that is on is bright.
    images = np.clip(40.0 + 160.0 * multi_hot[:, None, None, :] + rng.normal(0, 25, (32, 32, 32, 3)), 0, 255)
    data = tf.data.Dataset.from_tensor_slices((images.astype("float32"), multi_hot)).batch(8)
    result = tfxfer.fine_tune(model, data, data, config=_config(epochs=4, fine_tune_epochs=1))
    history = result.phase1.history
    assert history["loss"][-1] < history["loss"][0]
    probabilities = model.predict(images[:4], verbose=0)
    assert probabilities.shape == (4, NUM_CLASSES)
    assert not np.allclose(probabilities.sum(axis=-1), 1.0)  # independent sigmoids, not a softmax


# Errors raised before any training.

def test_model_without_backbone_layer_is_an_error():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(inputs), name="plain")
    with pytest.raises(ValueError, match=r"layer named 'backbone'.*Received: model='plain'"):
        tfxfer.fine_tune(model, _colour_data(8, seed=0))


def test_bad_fine_tune_at_fails_before_phase1_trains():
    model = _classifier()
    weights = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"No backbone layer is named 'conv_9'"):
        tfxfer.fine_tune(model, _colour_data(8, seed=0), config=_config(fine_tune_at="conv_9"))
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(weights, model.weights))



# Data that does not fit the model: ConfigErrors before any training.

def _weights_of(model):
    return [w.numpy().copy() for w in model.weights]


def _unchanged(model, weights):
    return all(np.array_equal(a, w.numpy()) for a, w in zip(weights, model.weights))


def test_images_of_another_size_fail_before_training_naming_both_shapes():
    model = _classifier()  # takes 32x32 images
    weights = _weights_of(model)
    labels = np.arange(8) % NUM_CLASSES
    data = tf.data.Dataset.from_tensor_slices((np.zeros((8, 48, 48, 3), "float32"), labels)).batch(4)
    expected = (r"The model takes 32x32x3 images but train_data's inputs are 48x48x3 images\. Resize them in the "
                r"loader to the model's size, e\.g\. load_image_folders\(\.\.\., image_size=\(32, 32\)\).*"
                r"Received: train_data's inputs of shape \(None, 48, 48, 3\), model input shape \(None, 32, 32, 3\)")
    with pytest.raises(ConfigError, match=expected):
        tfxfer.fine_tune(model, data, config=_config())
    assert _unchanged(model, weights)


def test_validation_data_of_another_size_fails_before_training():
    model = _classifier()
    weights = _weights_of(model)
    labels = np.arange(8) % NUM_CLASSES
    validation = tf.data.Dataset.from_tensor_slices((np.zeros((8, 64, 64, 3), "float32"), labels)).batch(4)
    with pytest.raises(ConfigError, match=r"but validation_data's inputs are 64x64x3 images"):
        tfxfer.fine_tune(model, _colour_data(8, seed=0), validation, config=_config())
    assert _unchanged(model, weights)


def test_grey_images_are_named_as_a_channel_mismatch():
    labels = np.arange(4) % NUM_CLASSES
    data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 1), "float32"), labels)).batch(2)
    with pytest.raises(ConfigError, match=r"images with 3 channels but train_data's inputs have 1; load them as RGB"):
        tfxfer.fine_tune(_classifier(), data, config=_config())


def test_an_unbatched_dataset_is_named_as_such():
    data = _colour_data(8, seed=0).unbatch()
    with pytest.raises(ConfigError, match=r"must be batched: dataset\.batch\(32\)\. Received: train_data's inputs "
                                          r"of shape \(32, 32, 3\)"):
        tfxfer.fine_tune(_classifier(), data, config=_config())


def test_a_label_past_the_head_fails_before_training():
    model = _classifier()  # 3 classes
    weights = _weights_of(model)
    labels = np.array([0, 7, 1, 2])
    data = tf.data.Dataset.from_tensor_slices((_colour_images(labels % 3, seed=0), labels)).batch(4)
    expected = (r"train_data has label 7, but the model's head has 3 classes \(labels 0 to 2\)\. Build the model with "
                r"num_classes equal to the number of classes in the data.*Received: labels \[0, 1, 2, 7\]")
    with pytest.raises(ConfigError, match=expected):
        tfxfer.fine_tune(model, data, config=_config())
    assert _unchanged(model, weights)


@pytest.mark.parametrize("cache_features", [True, False])
def test_a_label_past_the_head_in_a_later_batch_stops_training_at_that_batch(cache_features):
    # Sorted by class, as data often is: the first batch, which the checks before training read, is all in range.
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 3, 4, 3, 4])
    data = tf.data.Dataset.from_tensor_slices((_colour_images(labels % 3, seed=0), labels)).batch(4)
    # Phase 1 on cached features draws its batches shuffled: one of them holds one to four of the bad labels.
    expected = (r"A batch of the training data has labels that fit no class of the model's head.*Build the model "
                r"with num_classes equal to the number of classes in the data.*Received: [1-4] of the batch's 4 ")
    with pytest.raises(ConfigError, match=expected):
        tfxfer.fine_tune(_classifier(), data, config=_config(), cache_features=cache_features)


def test_a_label_past_the_head_in_a_later_validation_batch_is_refused():
    labels = np.array([0, 1, 2, 0, 1, 2, 5, 1])
    validation = tf.data.Dataset.from_tensor_slices((_colour_images(labels % 3, seed=1), labels)).batch(4)
    with pytest.raises(ConfigError, match=r"A batch of the validation data has labels.*Received: 1 of the batch's 4"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), validation, config=_config())


@pytest.mark.parametrize("kind, labels, invalid", [
    (HeadKind.MULTICLASS, [0, 2, 3, -1, 1.5], [0, 0, 1, 1, 1]),
    (HeadKind.BINARY, [0, 1, 2, -1, 0.25], [0, 0, 1, 1, 0]),  # a soft binary label is a probability
    (HeadKind.MULTILABEL, [[0, 1, 1], [1, 0, 2], [-1, 0, 0], [0.5, 0, 1], [0, 0, 0]], [0, 1, 1, 0, 0]),
])
def test_invalid_labels_marks_each_example_whose_label_fits_no_class(kind, labels, invalid):
    probabilities = tf.fill([5, 1 if kind is HeadKind.BINARY else 3], 0.5)
    np.testing.assert_array_equal(losses.invalid_labels(kind, tf.constant(labels, tf.float32), probabilities), invalid)


@pytest.mark.parametrize("cache_features", [True, False])
def test_a_nan_in_the_training_images_stops_training_at_its_batch(cache_features):
    labels = np.arange(12) % NUM_CLASSES
    images = _colour_images(labels, seed=0)
    images[9, 5, 5, 0] = np.nan  # the third batch's
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    # On cached features, phase 1 draws its batches shuffled: the NaN comes in one of the first epoch's three.
    where = r"batch 3 of epoch 1" if not cache_features else r"batch [1-3] of epoch 1"
    with pytest.raises(NonFiniteLossError, match=rf"The loss of {where} of the training data is nan: its inputs may "
                                                 r"hold NaN or infinite values.*Received: loss=nan"):
        tfxfer.fine_tune(_classifier(), data, config=_config(), cache_features=cache_features)


def test_a_nan_in_the_validation_images_stops_training_naming_the_validation_data():
    labels = np.arange(8) % NUM_CLASSES
    images = _colour_images(labels, seed=1)
    images[6] = np.inf
    validation = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    with pytest.raises(NonFiniteLossError, match=r"The loss of a pass over the validation data is nan"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), validation, config=_config(), cache_features=False)


def _bad_third_batch(bad):
    """Twelve examples in batches of 4; the third batch holds a NaN pixel or a label past the 3-class head (None:
    neither)."""
    labels = np.arange(12) % NUM_CLASSES
    images = _colour_images(labels, seed=0)
    if bad == "nan":
        images[9, 5, 5, 0] = np.nan
    elif bad == "label":
        labels[9] = 5
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)


@pytest.mark.parametrize("bad, error", [("nan", NonFiniteLossError), ("label", ConfigError)])
def test_a_bad_batch_in_phase1_leaves_the_model_as_it_was_built(bad, error):
    # Phase 1 had taken two steps before the bad batch; a NaN one would have made every weight NaN.
    model = _classifier()
    weights = _weights_of(model)
    with pytest.raises(error):
        tfxfer.fine_tune(model, _bad_third_batch(bad), config=_config(), cache_features=False)
    assert _unchanged(model, weights)


class _PoisonAfterPhase1(keras.callbacks.Callback):
    """Records the model's weights when phase 1 ends, then turns on `poisoned`, which the data reads."""

    def __init__(self, poisoned):
        super().__init__()
        self.poisoned, self.phase1_weights = poisoned, None

    def on_train_end(self, logs=None):
        if self.phase1_weights is None:
            self.phase1_weights = self.model.get_weights()
            self.poisoned.set()


@pytest.mark.parametrize("bad, error", [("nan", NonFiniteLossError), ("label", ConfigError)])
def test_a_bad_batch_in_phase2_leaves_phase1s_trained_model(bad, error):
    clean, poisoned = _bad_third_batch(None), _bad_third_batch(bad)
    flag = threading.Event()
    # Clean through phase 1, bad in phase 2: the data as it is when each pass starts.
    data = tf.data.Dataset.from_generator(
        lambda: (poisoned if flag.is_set() else clean).as_numpy_iterator(),
        output_signature=(tf.TensorSpec((None, 32, 32, 3), tf.float32), tf.TensorSpec((None,), tf.int64)))
    model, recorder = _classifier(), _PoisonAfterPhase1(flag)
    with pytest.raises(error):
        tfxfer.fine_tune(model, data, config=_config(), callbacks=[recorder])
    assert recorder.phase1_weights is not None
    for trained, now in zip(recorder.phase1_weights, model.get_weights()):
        np.testing.assert_array_equal(now, trained)
    assert all(np.isfinite(weights).all() for weights in model.get_weights())


@pytest.mark.parametrize("hidden_size", [False, True])
def test_empty_validation_data_is_refused_before_training(hidden_size):
    # Without this, a phase validated on nothing logged val_loss 0.0, and early stopping watched that constant.
    validation = _colour_data(8, seed=1).take(0)
    if hidden_size:  # a filter: the dataset's cardinality is unknown, and the first batch is what tells
        validation = _colour_data(8, seed=1).filter(lambda images, labels: False)
    model = _classifier()
    weights = _weights_of(model)
    with pytest.raises(ConfigError, match=r"validation_data is empty: pass at least one batch of \(inputs, labels\)\. "
                                          r"Received: validation_data of 0 batches"):
        tfxfer.fine_tune(model, _colour_data(8, seed=0), validation, config=_config(), cache_features=False)
    assert _unchanged(model, weights)


def test_a_binary_head_rejects_a_third_class():
    labels = np.array([0, 1, 2, 1])
    data = tf.data.Dataset.from_tensor_slices((_colour_images(labels, seed=0), labels)).batch(4)
    with pytest.raises(ConfigError, match=r"has label 2, but the model's head has 2 classes"):
        tfxfer.fine_tune(_classifier(num_classes=2), data, config=_config())


def test_soft_binary_labels_pass_both_label_checks_as_the_loss_takes_them():
    # A binary label is P(class 1): the check before training and the loop's count agree on it, in any batch.
    labels = np.array([0.0, 0.9, 1.0, 0.2, 1.0, 0.0, 0.75, 1.0], "float32")
    data = tf.data.Dataset.from_tensor_slices((_colour_images((labels > 0.5).astype(int), seed=0), labels)).batch(4)
    result = tfxfer.fine_tune(_classifier(num_classes=2), data, config=_config(fine_tune_epochs=0))
    assert len(result.phase1.history["loss"]) == 3 and np.isfinite(result.phase1.history["loss"]).all()
    with pytest.raises(ConfigError, match=r"has label 1\.5, but the model's head has 2 classes"):
        tfxfer.fine_tune(_classifier(num_classes=2), data.map(lambda x, y: (x, y + 0.5)), config=_config())


@pytest.mark.parametrize("class_counts, where", [
    (None, "the first 4 examples of train_data"),
    ([4, 4], r"4 examples \(made up: train_data was not read\)"),  # class counts vouch for the data: not read
])
def test_a_loss_that_does_not_fit_the_head_fails_before_training_naming_the_head_and_the_loss_that_fits(
        class_counts, where):
    # README's loss on a 2-class model, whose head is one sigmoid unit; the first examples are all of class 0.
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    data = tf.data.Dataset.from_tensor_slices((_colour_images(labels, seed=0), labels)).batch(8)
    model = _classifier(num_classes=2)
    weights = _weights_of(model)
    expected = (r"The loss does not fit the model's head, a binary head: one sigmoid unit, labels 0/1: called with "
                rf"labels the head takes \(1, 0, 1, 0\) and its probabilities for {where}, it raised "
                r"InvalidArgumentError: Received a label value of 1 which is outside the valid range of \[0, 1\)\. "
                r"Label values: 1 0 1 0\. Pass keras\.losses\.BinaryCrossentropy\(\) \(it takes such labels and the "
                r"head's probabilities, not logits\), or leave loss=None for the head's own loss\. "
                r"Received: loss=SparseCategoricalCrossentropy$")
    with pytest.raises(ConfigError, match=expected):
        tfxfer.fine_tune(model, data, config=_config(), class_counts=class_counts,
                         loss=keras.losses.SparseCategoricalCrossentropy())
    assert _unchanged(model, weights)


class _MeanLoss(keras.losses.Loss):
    """Returns the batch's mean instead of a loss per example, which the loop would weigh as one per example."""

    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, y_pred))


def test_a_loss_without_one_value_per_example_fails_before_training():
    with pytest.raises(ConfigError, match=r"a 3-class head: 3 softmax units, labels class indices 0 to 2: called "
                                          r"with labels the head takes \(2, 1, 0, 2\) .* it returned shape \(\), not "
                                          r"one loss per example \(4,\)\. Pass keras\.losses\."
                                          r"SparseCategoricalCrossentropy\(\) .*Received: loss=_MeanLoss$"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), config=_config(), loss=_MeanLoss())


@pytest.mark.parametrize("num_classes, loss", [(2, keras.losses.BinaryCrossentropy()),
                                               (3, keras.losses.SparseCategoricalCrossentropy())])
def test_a_loss_that_fits_the_head_trains_it(num_classes, loss):
    data = _colour_data(16, seed=0, num_classes=num_classes)
    result = tfxfer.fine_tune(_classifier(num_classes=num_classes), data, config=_config(fine_tune_epochs=0),
                              loss=loss)
    assert result.phase1.history["loss"][-1] < result.phase1.history["loss"][0]


def test_fractional_labels_are_not_class_indices():
    labels = np.array([0.0, 0.5, 1.0, 2.0], "float32")
    data = tf.data.Dataset.from_tensor_slices((_colour_images(np.array([0, 0, 1, 2]), seed=0), labels)).batch(4)
    with pytest.raises(ConfigError, match=r"class indices \(whole numbers\)\. Received: values \[0, 0\.5, 1, 2\]"):
        tfxfer.fine_tune(_classifier(), data, config=_config())


@pytest.mark.parametrize("width", [3, 5])
def test_one_hot_labels_for_a_single_label_head_fail_before_training(width):
    labels = np.eye(width, dtype="float32")[np.arange(6) % 3]
    data = tf.data.Dataset.from_tensor_slices((_colour_images(np.arange(6) % 3, seed=0), labels)).batch(3)
    expected = (rf"The model's 3-class head takes one class index per example \(labels of shape \(batch,\)\), but "
                rf"train_data's labels have {width} columns: one-hot or multi-hot rows\. Pass class indices "
                rf"\(tf\.argmax\(labels, axis=-1\) for one-hot\), or build the model with multi_label=True.*"
                rf"Received: train_data labels of shape \(None, {width}\)")
    with pytest.raises(ConfigError, match=expected):
        tfxfer.fine_tune(_classifier(), data, config=_config())


def test_multi_hot_labels_of_another_width_fail_before_training():
    labels = np.zeros((4, 5), "float32")
    data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), "float32"), labels)).batch(2)
    expected = (r"multi-label head has 3 classes but train_data's labels have 5 columns\. Build the model with "
                r"num_classes=5.*Received: train_data labels of shape \(None, 5\)")
    with pytest.raises(ConfigError, match=expected):
        tfxfer.fine_tune(_classifier(multi_label=True), data, config=_config())


def test_class_indices_for_a_multi_label_head_fail_before_training():
    with pytest.raises(ConfigError, match=r"multi-label head: it takes multi-hot labels of shape \(batch, 3\).*"
                                          r"multi_label=False\. Received: train_data labels of shape \(None,\)"):
        tfxfer.fine_tune(_classifier(multi_label=True), _colour_data(8, seed=0), config=_config())


def test_multi_hot_values_must_be_zero_or_one():
    labels = np.array([[0, 2, 1], [1, 0, 0]], "float32")
    data = tf.data.Dataset.from_tensor_slices((np.zeros((2, 32, 32, 3), "float32"), labels)).batch(2)
    with pytest.raises(ConfigError, match=r"must be 0 or 1 in every column\. Received: values \[0, 1, 2\]"):
        tfxfer.fine_tune(_classifier(multi_label=True), data, config=_config())


def test_string_labels_fail_before_training():
    data = tf.data.Dataset.from_tensor_slices((np.zeros((2, 32, 32, 3), "float32"), ["red", "blue"])).batch(2)
    with pytest.raises(ConfigError, match=r"not class names.*Received: train_data labels of dtype string"):
        tfxfer.fine_tune(_classifier(), data, config=_config())


def test_class_counts_of_another_number_of_classes_fail_before_training():
    expected = (r"class_counts counts 5 classes but the model's head has 3.*num_classes=5.*"
                r"Received: class_counts=\[1, 1, 1, 1, 1\]")
    with pytest.raises(ConfigError, match=expected):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), config=_config(), class_counts=[1] * 5)


@pytest.mark.parametrize("class_counts,expected", [
    ({"red": "3", "green": "3", "blue": "2"},
     r"class_counts is a list of training examples per class, in class_names order \(data\.train_class_counts\), not "
     r"a dict: turn \{name: count\} into one with \[counts\[name\] for name in data\.class_names\]\. "
     r"Received: class_counts=\{'red': '3', 'green': '3', 'blue': '2'\}"),
    (["3", "3", "2"], r"class_counts must be a list of numbers >= 0.*Received: class_counts=\['3', '3', '2'\]"),
    ([3, None, 2], r"class_counts must be a list of numbers >= 0.*Received: class_counts=\[3, None, 2\]"),
], ids=["dict_of_strings", "strings", "none"])
def test_class_counts_that_are_not_a_list_of_numbers_fail_before_training(class_counts, expected):
    record = _CountPhases()
    with pytest.raises(ConfigError, match=expected):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), callbacks=[record],
                         config=_config(class_weight="balanced"), class_counts=class_counts)
    assert (record.fits, record.epochs) == (0, 0)


def test_datasets_that_are_not_input_label_pairs_fail_before_training():
    data = tf.data.Dataset.from_tensor_slices(np.zeros((4, 32, 32, 3), "float32")).batch(2)
    with pytest.raises(ConfigError, match=r"batches of \(inputs, labels\).*Received: train_data with element_spec="):
        tfxfer.fine_tune(_classifier(), data, config=_config())


def test_an_image_size_the_spec_leaves_open_is_read_from_the_first_batch():
    def generate():
        for label in range(4):
            yield np.zeros((40, 40, 3), "float32"), label % NUM_CLASSES

    signature = (tf.TensorSpec((None, None, 3), tf.float32), tf.TensorSpec((), tf.int64))
    data = tf.data.Dataset.from_generator(generate, output_signature=signature).batch(2)
    with pytest.raises(ConfigError, match=r"takes 32x32x3 images but train_data's inputs are 40x40x3 images"):
        tfxfer.fine_tune(_classifier(), data, config=_config())

# Loss and metrics.

def test_label_smoothing_loss_matches_keras_categorical_crossentropy():
    rng = np.random.default_rng(0)
    labels = np.array([0, 2, 1, 2])
    probabilities = keras.ops.softmax(rng.normal(0, 2, (4, NUM_CLASSES)).astype("float32"))
    one_hot = keras.ops.one_hot(labels, NUM_CLASSES)
    expected = keras.ops.mean(keras.losses.categorical_crossentropy(one_hot, probabilities, label_smoothing=0.1))
    loss = losses.SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)
    np.testing.assert_allclose(loss(labels, probabilities), expected, rtol=1e-6)
    np.testing.assert_allclose(loss(labels[:, None], probabilities), expected, rtol=1e-6)  # (N, 1) labels


def test_label_smoothing_loss_by_hand():
    probabilities = np.array([[0.7, 0.2, 0.1]], "float32")
    # Smoothing 0.3 over 3 classes: targets [0.8, 0.1, 0.1].
    expected = -(0.8 * np.log(0.7) + 0.1 * np.log(0.2) + 0.1 * np.log(0.1))
    loss = losses.SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.3)
    np.testing.assert_allclose(loss(np.array([0]), probabilities), expected, rtol=1e-5)


def test_label_smoothing_zero_matches_sparse_categorical_crossentropy():
    rng = np.random.default_rng(1)
    labels = np.array([1, 0, 2])
    probabilities = keras.ops.softmax(rng.normal(0, 2, (3, NUM_CLASSES)).astype("float32"))
    expected = keras.losses.SparseCategoricalCrossentropy()(labels, probabilities)
    loss = losses.SparseCategoricalCrossentropyWithSmoothing()
    np.testing.assert_allclose(loss(labels, probabilities), expected, rtol=1e-6)


def test_label_smoothing_loss_config_round_trip():
    loss = losses.SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.2)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, losses.SparseCategoricalCrossentropyWithSmoothing)
    assert restored.label_smoothing == 0.2


@pytest.mark.parametrize("kind, loss_class, metric_class", [
    (HeadKind.MULTICLASS, losses.SparseCategoricalCrossentropyWithSmoothing, keras.metrics.SparseCategoricalAccuracy),
    (HeadKind.BINARY, keras.losses.BinaryCrossentropy, keras.metrics.BinaryAccuracy),
    (HeadKind.MULTILABEL, keras.losses.BinaryCrossentropy, keras.metrics.BinaryAccuracy),
])
def test_loss_and_metrics_for_each_head(kind, loss_class, metric_class):
    loss = losses.loss_for(kind, label_smoothing=0.1)
    assert type(loss) is loss_class
    assert loss.get_config()["label_smoothing"] == 0.1
    [metric] = losses.metrics_for(kind)
    assert type(metric) is metric_class
    assert metric.name == "accuracy"


# Class weights.

def test_balanced_class_weight_values():
    weights = balanced_class_weight([10, 30, 20])
    # total / (classes * count): 60 / 30, 60 / 90, 60 / 60.
    assert weights == pytest.approx({0: 2.0, 1: 2 / 3, 2: 1.0})


def test_balanced_class_weight_of_an_empty_class_is_an_error():
    with pytest.raises(ValueError, match=r"at least one training example\. Received: class_counts=\[4, 0, 2\]"):
        balanced_class_weight([4, 0, 2])


def test_count_labels_counts_every_batch():
    labels = np.array([0, 1, 1, 2, 2, 2, 1])
    data = tf.data.Dataset.from_tensor_slices((np.zeros((7, 1)), labels)).batch(3)
    assert count_labels(data, 3) == [1, 3, 3]


def test_count_labels_is_sized_by_the_number_of_classes():
    # Class 3 has no example: it must still get its (zero) entry.
    data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 1)), np.array([0, 1, 2, 1]))).batch(2)
    assert count_labels(data, 4) == [1, 2, 1, 0]


def test_count_labels_rejects_labels_outside_the_classes():
    data = tf.data.Dataset.from_tensor_slices((np.zeros((2, 1)), np.array([0, 3]))).batch(2)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)\. Received: labels=\[0, 3\]"):
        count_labels(data, 3)


def test_balanced_class_weight_weights_the_training_loss():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])  # 6 of class 0, 3 of class 1, 3 of class 2
    data = tf.data.Dataset.from_tensor_slices((_colour_images(labels, seed=0), labels)).batch(12)
    config = _config(epochs=1, fine_tune_epochs=0, learning_rate=1e-9)  # the weights barely move
    keras.utils.set_random_seed(0)
    unweighted = tfxfer.fine_tune(_classifier(), data, config=config)
    keras.utils.set_random_seed(0)
    model = _classifier()
    balanced = tfxfer.fine_tune(model, data, config=config.replace(class_weight="balanced"))
    # Per-example losses of the (almost) untrained model, weighted 12/18, 12/9, 12/9.
    example_losses = losses.loss_for(HeadKind.MULTICLASS).call(
        labels.astype("float32"), model.predict(data, verbose=0)).numpy()
    weights = np.array([12 / 18, 12 / 9, 12 / 9])[labels]
    assert balanced.phase1.history["loss"][0] == pytest.approx(np.mean(weights * example_losses), rel=1e-4)
    assert unweighted.phase1.history["loss"][0] == pytest.approx(np.mean(example_losses), rel=1e-4)


def test_balanced_class_weight_with_a_class_missing_from_the_data_is_an_error():
    model = _classifier()
    labels = np.array([0, 1, 0, 1])  # no example of class 2
    data = tf.data.Dataset.from_tensor_slices((_colour_images(labels, seed=0), labels)).batch(2)
    with pytest.raises(ValueError, match=r"at least one training example\. Received: class_counts=\[2, 2, 0\]"):
        tfxfer.fine_tune(model, data, config=_config(class_weight="balanced"))


def test_class_weight_leaving_out_classes_weighs_them_1_as_keras_fit_does():
    # Class 2, past the dict's largest key, once failed as an index error inside the training step.
    labels = np.array([0, 1, 2, 0, 1, 2])
    data = tf.data.Dataset.from_tensor_slices((_colour_images(labels, seed=0), labels)).batch(6)
    config = _config(epochs=1, fine_tune_epochs=0, learning_rate=1e-9)  # the weights barely move
    model = _classifier()
    result = tfxfer.fine_tune(model, data, config=config.replace(class_weight={1: 3.0}))
    example_losses = losses.loss_for(HeadKind.MULTICLASS).call(
        labels.astype("float32"), model.predict(data, verbose=0)).numpy()
    weights = np.array([1.0, 3.0, 1.0])[labels]
    assert result.phase1.history["loss"][0] == pytest.approx(np.mean(weights * example_losses), rel=1e-4)


def test_class_weight_of_class_names_fails_before_training():
    record = _CountPhases()
    with pytest.raises(ConfigError, match=r"not class names: turn names into ids with "
                                          r"\{data\.class_names\.index\(name\): weight"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), callbacks=[record],
                         config=_config(class_weight={"red": 2.0, "green": 1.0, "blue": 1.0}))
    assert (record.fits, record.epochs) == (0, 0)


def test_class_counts_of_the_wrong_length_are_an_error():
    with pytest.raises(ValueError, match=r"one count per class of the model \(3\)\. Received: class_counts=\[5, 5\]"):
        class_weights.resolve("balanced", HeadKind.MULTICLASS, [5, 5], None, 3)


def test_class_counts_given_skip_counting():
    # train_data=None: the counts given are used as they are.
    weights = class_weights.resolve("balanced", HeadKind.BINARY, [1, 3], None, 2)
    assert weights == pytest.approx({0: 2.0, 1: 2 / 3})


def test_unknown_class_weight_setting_is_an_error():
    with pytest.raises(ValueError, match=r"None, 'balanced' or a dict\. Received: class_weight='auto'"):
        class_weights.resolve("auto", HeadKind.MULTICLASS, None, None, 3)


def test_balanced_class_weight_for_multi_label_is_an_error():
    with pytest.raises(ValueError, match=r"does not apply to multi-label heads"):
        class_weights.resolve("balanced", HeadKind.MULTILABEL, [1, 1, 1], None, 3)


def test_explicit_class_weight_passes_through():
    assert class_weights.resolve({0: 1.0, 1: 5.0}, HeadKind.BINARY, None, None, 2) == {0: 1.0, 1: 5.0}


# Steps per epoch.

def test_steps_per_epoch_of_a_sized_dataset():
    assert steps_per_epoch(tf.data.Dataset.range(10).batch(3)) == 4


def test_steps_per_epoch_of_a_filtered_dataset_is_counted():
    data = tf.data.Dataset.range(10).filter(lambda x: x % 2 == 0).batch(2)
    assert int(data.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    assert steps_per_epoch(data) == 3


def test_steps_per_epoch_of_an_infinite_dataset_is_an_error():
    with pytest.raises(ValueError, match=r"infinite \(\.repeat\(\) without a count\)"):
        steps_per_epoch(tf.data.Dataset.range(4).batch(2).repeat())


def test_steps_per_epoch_of_an_empty_dataset_is_an_error():
    with pytest.raises(ValueError, match="training dataset is empty"):
        steps_per_epoch(tf.data.Dataset.range(4).filter(lambda x: x > 10).batch(2))


# Learning-rate schedules.

def test_warmup_cosine_rises_to_the_peak_then_decays_to_zero():
    schedule = schedules.warmup_cosine(1e-3, total_steps=100, warmup_fraction=0.1)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(5e-4)  # linear warmup
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(55)) == pytest.approx(5e-4, rel=1e-4)  # half-way through the cosine
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)


def test_warmup_cosine_without_warmup_starts_at_the_peak():
    schedule = schedules.warmup_cosine(1e-2, total_steps=20)
    assert float(schedule(0)) == pytest.approx(1e-2)
    assert float(schedule(20)) == pytest.approx(0.0, abs=1e-9)


def test_warmup_cosine_needs_a_step():
    with pytest.raises(ValueError, match=r"at least one step\. Received: total_steps=0"):
        schedules.warmup_cosine(1e-3, total_steps=0)


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_warmup_fraction_out_of_range_is_an_error(fraction):
    with pytest.raises(ValueError, match=rf"in \[0, 1\)\. Received: warmup_fraction={fraction}"):
        schedules.warmup_cosine(1e-3, total_steps=10, warmup_fraction=fraction)



# A moving average of the weights in phase 2.

def test_phase2_with_a_weight_average_ends_with_the_weights_it_validated():
    keras.utils.set_random_seed(3)
    train, validation = _colour_data(32, seed=0), _colour_data(16, seed=1)
    runs = {}
    for momentum in (None, 0.5):
        model = _classifier()
        keras.utils.set_random_seed(3)
        runs[momentum] = (model, tfxfer.fine_tune(model, train, validation, config=_config(
            epochs=1, fine_tune_epochs=3, fine_tune_ema_momentum=momentum, fine_tune_interpolation=1.0)))
    model, result = runs[0.5]
    # The last epoch's validation measured the average, and the model holds it.
    assert result.phase2.final_metrics["val_loss"] == pytest.approx(result.phase2.history["val_loss"][-1], rel=1e-5)
    model.compile(loss=losses.loss_for(HeadKind.MULTICLASS))
    assert model.evaluate(validation, verbose=0, return_dict=True)["loss"] == pytest.approx(result.phase2.history["val_loss"][-1], rel=1e-4)
    plain = runs[None][1].phase2.history["val_loss"][-1]
    assert result.phase2.history["val_loss"][-1] != pytest.approx(plain, rel=1e-4)


@pytest.mark.parametrize("momentum", [0, 1, 1.5, True, "0.9"])
def test_a_bad_weight_average_momentum_fails_before_training(momentum):
    model = _classifier()
    weights = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"fine_tune_ema_momentum must be None \(off\) or a float between 0 and 1"):
        tfxfer.fine_tune(model, _colour_data(8, seed=0), config=_config(fine_tune_ema_momentum=momentum))
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(weights, model.weights))


class _KillAfterEpoch(keras.callbacks.Callback):
    """Stands for a killed process: raises once phase `phase` (its fit: phase 2 unless given) has ended `epoch`."""

    def __init__(self, epoch, phase=2):
        super().__init__()
        self.epoch, self.phase, self.fits = epoch, phase, 0

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.fits == self.phase and epoch == self.epoch:
            raise KeyboardInterrupt("killed")


@pytest.mark.parametrize("killed_in_phase", [1, 2])
def test_resuming_from_another_run_s_backup_is_refused_naming_backup_dir(tmp_path, killed_in_phase, caplog):
    # Killed in phase 1, its Keras backup holds a 3-class head; killed in phase 2, phase 1's saved final weights do.
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        tfxfer.fine_tune(_classifier(), _colour_data(12, seed=0), config=_config(), backup_dir=backup,
                         callbacks=[_KillAfterEpoch(epoch=0, phase=killed_in_phase)])
    two_classes = _colour_data(12, seed=0, num_classes=2)
    with pytest.raises(ConfigError, match=r"backup_dir holds the backup of another run: its weights do not fit this "
                                          rf"model .*pass a new backup_dir.*Received: backup_dir='{backup}'"):
        with caplog.at_level("WARNING", logger="absl"):
            tfxfer.fine_tune(_classifier(num_classes=2), two_classes, config=_config(), backup_dir=backup)
    assert "stopped at a bad batch" not in caplog.text  # refused before any step: nothing to undo


@pytest.mark.parametrize("inside", [False, True])
def test_a_backup_dir_that_is_a_file_or_inside_one_fails_before_training(tmp_path, inside):
    # Unrefused, phase 1 trained an epoch, then Keras raised NotADirectoryError on "<file>/phase1".
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    backup_dir = afile / "run" if inside else afile
    counter = _CountPhases()
    where = f" \(its parent '{afile}' is a file\)" if inside else ""
    with pytest.raises(NotADirectoryError, match=rf"^backup_dir '{backup_dir}' is a file{where}; pass a folder: a run "
                                                 r"keeps a backup of each phase inside it \(it is created if missing\)\. "
                                                 rf"Received: backup_dir='{backup_dir}'$"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), config=_config(epochs=1, fine_tune_epochs=1),
                         backup_dir=backup_dir, callbacks=[counter])
    assert counter.epochs == 0 and afile.read_text() == "mine"


@pytest.mark.parametrize("killed_in_phase, resumed_with, differ", [
    # Unrefused: phase 1 "resumed" at epoch 2 of 1, trained nothing and reported epochs_run=0 and an empty history.
    (1, dict(epochs=1), r"backup of phase1 of a run with other settings: epochs 2 then, 1 now\."),
    # Unrefused: Keras warned that it skipped the optimizer's 9 variables, and the schedule's warmup began again.
    (2, dict(fine_tune_at=0), r"backup of phase2 of a run with other settings: trainable weights 4 \(1219 parameters\) "
                              r"then, 6 \(1443 parameters\) now\."),
])
def test_resuming_with_other_settings_than_the_backup_s_is_refused_before_training(tmp_path, killed_in_phase,
                                                                                  resumed_with, differ):
    backup, data = str(tmp_path / "backup"), _colour_data(8, seed=0)
    config = _config(epochs=2, fine_tune_epochs=2)
    with pytest.raises(KeyboardInterrupt):
        tfxfer.fine_tune(_classifier(), data, config=config, backup_dir=backup,
                         callbacks=[_KillAfterEpoch(epoch=1 if killed_in_phase == 1 else 0, phase=killed_in_phase)])
    counter, model = _CountPhases(), _classifier()
    weights = _weights_of(model)
    with pytest.raises(ConfigError, match=differ + r" A backup resumes only the run that wrote it, started again with "
                                          rf"the same arguments.*Received: backup_dir='{backup}'$"):
        tfxfer.fine_tune(model, data, config=config.replace(**resumed_with), backup_dir=backup, callbacks=[counter])
    assert counter.epochs == 0
    if killed_in_phase == 1:  # refused before the backup's weights load (phase 2 starts from phase 1's, restored)
        assert _unchanged(model, weights)


def test_a_keras_backup_callback_is_refused_naming_backup_dir(tmp_path):
    # Unrefused, a run killed in phase 2 and started again restored phase 2's epoch into phase 1, which then trained
    # no epoch (epochs_run 0), and phase 2 started again from its first epoch.
    counter = _CountPhases()
    folder = str(tmp_path / "keras_backup")
    with pytest.raises(ConfigError, match=r"fine_tune backs up each phase on its own .*pass "
                                          r"fine_tune\(\.\.\., backup_dir=<folder>\) instead of a "
                                          r"keras.callbacks.BackupAndRestore in callbacks. Received: callbacks item "
                                          rf"BackupAndRestore\(backup_dir='{folder}'\)$"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), config=_config(epochs=1, fine_tune_epochs=1),
                         callbacks=[counter, keras.callbacks.BackupAndRestore(folder)])
    assert counter.fits == 0


class _EpochLogs(keras.callbacks.Callback):
    """Every epoch's logs, by fit (phase)."""

    def __init__(self):
        super().__init__()
        self.fits = []

    def on_train_begin(self, logs=None):
        self.fits.append([])

    def on_epoch_end(self, epoch, logs=None):
        self.fits[-1].append(dict(logs))


@pytest.mark.parametrize("earlier_version", [False, True])
def test_a_resumed_phase_s_history_holds_the_epochs_before_the_kill(tmp_path, earlier_version):
    # Unmended, the resumed phase 2's history held only the 2 epochs after the restore while epochs_run said 3, so the
    # run's curves and metrics.json lost the epoch before the kill. A backup an earlier tfxfer wrote kept no logs:
    # its phase still resumes, with the epochs it has.
    backup, data = str(tmp_path / "backup"), _colour_data(8, seed=0)
    config = _config(epochs=1, fine_tune_epochs=3)
    killed = _EpochLogs()
    with pytest.raises(KeyboardInterrupt):
        tfxfer.fine_tune(_classifier(), data, data, config=config, backup_dir=backup,
                         callbacks=[killed, _KillAfterEpoch(epoch=0)])
    if earlier_version:
        os.remove(os.path.join(backup, "phase2", PHASE_STATE))
    resumed = _EpochLogs()
    result = tfxfer.fine_tune(_classifier(), data, data, config=config, backup_dir=backup, callbacks=[resumed])
    (before,), after = killed.fits[-1], resumed.fits[-1]  # Phase 2: 1 epoch before the kill, 2 after the resume.
    assert result.phase2.epochs_run == 3 and len(after) == 2
    epochs = after if earlier_version else [before, *after]
    assert result.phase2.history == {name: [logs[name] for logs in epochs] for name in before}
    assert set(before) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def _assert_a_run_killed_in_phase2_resumes_to_the_uninterrupted_weights(config, backup_dir):
    train, validation = _colour_data(32, seed=0), _colour_data(16, seed=1)

    def run(callbacks=()):
        keras.utils.set_random_seed(5)
        model = _classifier()
        tfxfer.fine_tune(model, train, validation, config=config, backup_dir=str(backup_dir),
                         callbacks=list(callbacks))
        return model

    expected = run()
    with pytest.raises(KeyboardInterrupt):
        run([_KillAfterEpoch(epoch=0)])
    resumed = run()  # the backup restores phase 1, then phase 2's first epoch
    for ours, theirs in zip(resumed.get_weights(), expected.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_a_killed_phase2_with_a_weight_average_resumes_to_the_uninterrupted_weights(tmp_path):
    # Phase 2's first epoch comes back with its weights and their average.
    _assert_a_run_killed_in_phase2_resumes_to_the_uninterrupted_weights(
        _config(epochs=1, fine_tune_epochs=3, fine_tune_ema_momentum=0.5), tmp_path / "backup")


# fine_tune_interpolation: phase 2 ends between phase 1's weights and its own (WiSE-FT).

class _WeightsAtPhase2Ends(keras.callbacks.Callback):
    """The model's weights when phase 2 (the second fit) starts and when its training ends, before any blend."""

    def __init__(self):
        super().__init__()
        self.fits, self.start, self.end = 0, None, None

    def on_train_begin(self, logs=None):
        self.fits += 1
        if self.fits == 2:
            self.start = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.fits == 2:
            self.end = self.model.get_weights()


def test_phase2_ends_halfway_between_its_start_and_its_trained_weights_and_reports_that_model():
    keras.utils.set_random_seed(3)
    model = _classifier()
    validation = _colour_data(16, seed=1)
    ends = _WeightsAtPhase2Ends()
    result = tfxfer.fine_tune(model, _colour_data(32, seed=0), validation,
                              config=_config(epochs=2, fine_tune_interpolation=0.5), callbacks=[ends])
    moved = 0
    for start, end, final in zip(ends.start, ends.end, model.get_weights()):
        np.testing.assert_allclose(final, (start + end) / 2, rtol=1e-6, atol=1e-7)
        moved += not np.allclose(start, end)
    assert moved == 4  # conv_2's kernel and bias, the head's kernel and bias; BatchNorm's statistics stay
    evaluated = model.evaluate(validation, verbose=0, return_dict=True)
    assert result.phase2.final_metrics["val_loss"] == pytest.approx(evaluated["loss"], rel=1e-5)


@pytest.mark.parametrize("alpha", [1.5, -0.1, True, "half", None])
def test_fine_tune_interpolation_outside_0_to_1_is_refused_before_training(alpha):
    counter = _CountPhases()
    with pytest.raises(ConfigError, match=r"fine_tune_interpolation must be a number from 0 to 1.*"
                                          rf"Received: fine_tune_interpolation={alpha!r}"):
        tfxfer.fine_tune(_classifier(), _colour_data(8, seed=0), config=_config(fine_tune_interpolation=alpha),
                         callbacks=[counter])
    assert counter.fits == 0


def test_a_killed_interpolated_phase2_resumes_to_the_uninterrupted_weights(tmp_path):
    # The blend moves back toward phase 1's weights, not toward the epoch the backup restores.
    _assert_a_run_killed_in_phase2_resumes_to_the_uninterrupted_weights(
        _config(epochs=1, fine_tune_epochs=3, fine_tune_interpolation=0.5), tmp_path / "backup")
