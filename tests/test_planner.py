"""Tests for tfxfer.training.planner: the `Phase`s `fine_tune` runs."""

import dataclasses
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError
from tfxfer.models import layer_names
from tfxfer.models.heads import HeadKind
from tfxfer.training import feature_cache, planner


def _classifier(augmentation=False):
    inputs = keras.Input((5,))
    x = inputs
    if augmentation:  # stands for the image augmentation layer: only its name matters here
        x = keras.layers.Identity(name=layer_names.AUGMENTATION)(x)
    backbone_inputs = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(backbone_inputs)
    top = keras.layers.Dense(8, activation="relu", name="top")(hidden)
    backbone = keras.Model(backbone_inputs, top, name=layer_names.BACKBONE)
    return keras.Model(inputs, tfxfer.models.heads.classification_head(backbone(x), 3, dropout=0.0))


def _data(num_examples=12, batch_size=4):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(num_examples, 5)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((features, np.arange(num_examples) % 3)).batch(batch_size)


def _plan(model, config, train=None, validation=None, **kwargs):
    kwargs = {"callbacks": None, "class_counts": None, "cache_features": None, **kwargs}
    return planner.plan_phases(model, train or _data(), validation, config, **kwargs)


def test_two_phases_share_data_and_loss_and_differ_in_what_trains():
    train, validation = _data(), _data(6)
    callback = keras.callbacks.Callback()
    config = FineTuneConfig(epochs=4, fine_tune_epochs=2, learning_rate=1e-2, fine_tune_learning_rate=1e-4,
                            fine_tune_at="top", warmup_fraction=0.2, weight_decay=1e-3, label_smoothing=0.1,
                            global_clipnorm=1.0, early_stopping_patience=2, class_weight={0: 2.0})
    phase1, phase2 = _plan(_classifier(), config, train, validation, callbacks=[callback])
    for phase in (phase1, phase2):
        assert phase.train is train and phase.validation is validation and phase.steps == 3
        # The classes class_weight leaves out weigh 1.0, as in Keras' fit.
        assert (phase.kind, phase.loss.label_smoothing, phase.class_weight) == (
            HeadKind.MULTICLASS, 0.1, {0: 2.0, 1: 1.0, 2: 1.0})
        assert (phase.weight_decay, phase.global_clipnorm, phase.early_stopping_patience) == (1e-3, 1.0, 2)
        assert phase.callbacks == (callback,)
    assert (phase1.name, phase1.backup_slot, phase1.skip_when_done) == ("phase 1", "phase1", True)
    assert (phase1.epochs, phase1.learning_rate, phase1.warmup_fraction) == (4, 1e-2, 0.0)
    assert phase1.fine_tune_at is None and phase1.cache_features and phase1.lr_multipliers is None
    assert (phase2.name, phase2.backup_slot, phase2.skip_when_done) == ("phase 2", "phase2", False)
    assert (phase2.epochs, phase2.learning_rate, phase2.warmup_fraction) == (2, 1e-4, 0.2)
    assert phase2.fine_tune_at == "top" and not phase2.cache_features and phase2.lr_multipliers is None


def test_no_fine_tune_epochs_plans_phase1_only_and_leaves_fine_tune_at_unchecked():
    phases = _plan(_classifier(), FineTuneConfig(fine_tune_epochs=0, fine_tune_at="no_such_layer"))
    assert [phase.name for phase in phases] == ["phase 1"]


def test_planning_leaves_the_model_as_it_is():
    model = _classifier()
    _plan(model, FineTuneConfig())
    assert model.get_layer(layer_names.BACKBONE).trainable
    assert getattr(model, "optimizer", None) is None  # not compiled


@pytest.mark.parametrize("augmentation, cache_features, expected", [
    (False, None, True), (True, None, True), (False, False, False), (True, False, False), (True, True, True)])
def test_phase1_is_planned_on_cached_features_unless_turned_off(augmentation, cache_features, expected):
    phase1, phase2 = _plan(_classifier(augmentation), FineTuneConfig(), cache_features=cache_features)
    assert phase1.cache_features is expected
    assert phase2.cache_features is False  # the backbone trains: augmentation applies from here


def test_the_log_says_augmentation_starts_in_phase2_when_phase1_is_cached(caplog):
    with caplog.at_level("INFO", logger="absl"):
        _plan(_classifier(augmentation=True), FineTuneConfig(), cache_features=None)
    assert "features of the un-augmented images, computed once; augmentation runs in every step of phase 2" \
        in caplog.text


def test_the_logs_count_one_batch_and_one_augmented_pass_in_the_singular(caplog):
    one_batch = _data(4, 4).filter(lambda features, labels: True)  # its size unknown until counted
    model = _classifier(augmentation=True)
    with caplog.at_level("INFO", logger="absl"):
        phase1, _ = _plan(model, FineTuneConfig(augmented_feature_passes=1), one_batch)
        feature_cache.cache_phase(model, one_batch, None, augmented_passes=phase1.augmented_feature_passes)
    assert "Counted 1 batch per epoch in the training dataset." in caplog.messages
    assert "Phase 1 trains the head on features of 1 randomly augmented pass over the images, computed once" \
        in caplog.text
    assert re.search(r"Cached phase-1 features of 4 training examples \(\(8,\)\), 1 randomly augmented pass in ",
                     caplog.text)


@pytest.mark.parametrize("passes", [-1, 1.5, True])
def test_a_bad_number_of_augmented_feature_passes_fails_before_training(passes):
    with pytest.raises(ConfigError, match=r"augmented_feature_passes must be an int >= 0.*Received"):
        _plan(_classifier(augmentation=True), FineTuneConfig(augmented_feature_passes=passes))


def test_the_schedule_spans_the_phase_and_warms_up():
    _, phase2 = _plan(_classifier(), FineTuneConfig(epochs=1, fine_tune_epochs=2, fine_tune_learning_rate=1e-3,
                                                   warmup_fraction=0.5))
    schedule = phase2.schedule()  # 2 epochs x 3 steps, 3 of them warming up
    assert float(schedule(0)) == 0.0
    assert float(schedule(3)) == pytest.approx(1e-3)
    assert float(schedule(6)) == pytest.approx(0.0, abs=1e-9)


def test_a_phase_cannot_be_changed_in_place():
    phase1, _ = _plan(_classifier(), FineTuneConfig())
    with pytest.raises(dataclasses.FrozenInstanceError):
        phase1.epochs = 3


def test_balanced_class_weight_is_resolved_from_class_counts():
    phase1, _ = _plan(_classifier(), FineTuneConfig(class_weight="balanced"), class_counts=[1, 2, 3])
    assert phase1.class_weight == pytest.approx({0: 2.0, 1: 1.0, 2: 2 / 3})


def test_a_model_without_backbone_fails_to_plan():
    inputs = keras.Input((5,))
    model = keras.Model(inputs, tfxfer.models.heads.classification_head(inputs, 3, dropout=0.0), name="plain")
    with pytest.raises(ConfigError, match=r"layer named 'backbone'.*Received: model='plain'"):
        _plan(model, FineTuneConfig())


# FineTuneConfig fields and fine_tune arguments that would fail mid-run, or train nonsense without a word.

@pytest.mark.parametrize("class_weight, message", [
    ({0: 1.0, 5: 2.0}, r"keys must be class ids of the model's 3-class head, ints from 0 to 2 \(a class left out "
                       r"weighs 1\.0\); \[5\] is not one\. Received: class_weight=\{0: 1\.0, 5: 2\.0\}"),
    ({0: 1.0, 1.0: 2.0}, r"keys must be class ids .*; \[1\.0\] is not one"),
    ({True: 2.0}, r"keys must be class ids .*; \[True\] is not one"),
    ({"cat": 2.0, "dog": 1.0}, r"keys are class ids \(ints from 0 to 2\), not class names: turn names into ids with "
                               r"\{data\.class_names\.index\(name\): weight for name, weight in weights\.items\(\)\}\. "
                               r"Received: class_weight=\{'cat': 2\.0, 'dog': 1\.0\}"),
    ({0: -1.0, 1: 1, 2: 1}, r"weights must be numbers >= 0 .*Received: class_weight=\{0: -1\.0, 1: 1, 2: 1\}"),
    ({0: float("nan")}, r"weights must be numbers >= 0 .*Received: class_weight=\{0: nan\}"),
    ({0: "2"}, r"weights must be numbers >= 0"),
    ({0: 0.0, 1: 0, 2: 0.0}, r"weighs every class 0: the loss would be 0 and nothing would train.*Received"),
])
def test_a_bad_class_weight_fails_to_plan(class_weight, message):
    with pytest.raises(ConfigError, match=message):
        _plan(_classifier(), FineTuneConfig(class_weight=class_weight))


def test_class_weight_for_a_multi_label_head_fails_to_plan():
    # The loss weighs an example by its one class: a multi-label head would silently get no weights at all.
    inputs = keras.Input((5,))
    backbone = keras.Model(inputs, keras.layers.Dense(8, name="top")(inputs), name=layer_names.BACKBONE)
    model = keras.Model(inputs, tfxfer.models.heads.classification_head(backbone(inputs), 3, multi_label=True,
                                                                        dropout=0.0))
    rows = tf.data.Dataset.from_tensor_slices((np.zeros((4, 5), "float32"), np.eye(3, dtype="float32")[[0, 1, 2, 0]]))
    with pytest.raises(ConfigError, match=r"one label per example; it does not apply to multi-label heads\. Leave "
                                          r"class_weight=None\. Received: class_weight=\{0: 2\.0\}"):
        _plan(model, FineTuneConfig(class_weight={0: 2.0}), rows.batch(2))


@pytest.mark.parametrize("name, value, message", [
    ("warmup_fraction", 1.5, r"warmup_fraction must be a number from 0 \(no warmup\) up to, not including, 1: "
                             r"the share of phase 2's steps spent warming up, e\.g\. 0\.1\. "
                             r"Received: warmup_fraction=1\.5"),
    ("warmup_fraction", "0.1", r"warmup_fraction must be a number .*Received: warmup_fraction='0\.1'"),
    ("warmup_fraction", -0.1, r"Received: warmup_fraction=-0\.1"),
    ("early_stopping_patience", "3", r"early_stopping_patience must be an int >= 0, the epochs without a lower "
                                     r"val_loss before a phase stops .*or None to never stop early\. "
                                     r"Received: early_stopping_patience='3'"),
    ("early_stopping_patience", -1, r"Received: early_stopping_patience=-1"),
    ("early_stopping_patience", 2.0, r"Received: early_stopping_patience=2\.0"),
    ("global_clipnorm", -1.0, r"global_clipnorm must be a number > 0, the largest global norm of the gradients "
                              r"\(e\.g\. 1\.0\), or None to clip nothing\. Received: global_clipnorm=-1\.0"),
    ("global_clipnorm", 0.0, r"Received: global_clipnorm=0\.0"),
    ("global_clipnorm", float("inf"), r"Received: global_clipnorm=inf"),
    ("fine_tune_at", True, r"fine_tune_at must be where phase 2 starts unfreezing the backbone: a layer index "
                           r"\(int\), a fraction .*To train the head only, pass fine_tune_epochs=0\. "
                           r"Received: fine_tune_at=True"),
    ("fine_tune_at", None, r"Received: fine_tune_at=None"),
    ("layer_decay", "0.9", r"layer_decay must be a number in \(0, 1\].*Received: layer_decay='0\.9'"),
    ("layer_decay", 0.0, r"Received: layer_decay=0\.0"),
])
def test_a_config_field_of_the_wrong_type_or_range_fails_to_plan(name, value, message):
    with pytest.raises(ConfigError, match=message):
        _plan(_classifier(), FineTuneConfig(**{name: value}))


def test_one_callback_alone_is_taken_as_fit_takes_it():
    callback = keras.callbacks.History()
    phase1, phase2 = _plan(_classifier(), FineTuneConfig(), callbacks=callback)
    assert phase1.callbacks == phase2.callbacks == (callback,)


@pytest.mark.parametrize("callbacks, message", [
    ("csv", r"callbacks must be a list of keras\.callbacks\.Callback instances.*Received: callbacks of type str"),
    ([keras.callbacks.History], r"Every item of callbacks must be a keras\.callbacks\.Callback instance; one is the "
                                r"class itself, not an instance: call it\. Received: callbacks item <class"),
    ([print], r"one is not a callback\. Received: callbacks item <built-in function print>"),
])
def test_callbacks_that_are_not_callbacks_fail_to_plan(callbacks, message):
    with pytest.raises(ConfigError, match=message):
        _plan(_classifier(), FineTuneConfig(), callbacks=callbacks)


@pytest.mark.parametrize("cache_features", ["yes", "no", 1])
def test_cache_features_other_than_a_bool_or_none_fails_to_plan(cache_features):
    with pytest.raises(ConfigError, match=r"cache_features must be True, False .* or None \(the default: cache\)\. "
                                          rf"Received: cache_features={cache_features!r}"):
        _plan(_classifier(), FineTuneConfig(), cache_features=cache_features)
