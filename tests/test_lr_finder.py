"""Tests for tfxfer.training.lr_finder: the learning-rate range test and its suggestion.

The task is generated and learnable: three Gaussian clusters in 32 dimensions
(10% of the labels flipped, so that overconfident weights cost loss), a small
own backbone (Dense, BatchNorm, Dense with 512 ReLU features, like the wide
features of a real image backbone) and tfxfer's classification head. A sweep of
100 steps takes about half a second.
"""

import dataclasses
import doctest
import json
import logging
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError
from tfxfer.training import feature_cache, layerwise_lr, lr_finder, planner
from tfxfer.training.lr_finder import (
    ExponentialSweepSchedule,
    find_learning_rate,
    steepest_descent,
    sweep_phase,
)

INPUT_SIZE = 32
FEATURES = 512
NUM_CLASSES = 3
CONFIG = FineTuneConfig(label_smoothing=0.0, fine_tune_at="dense_2")


def _model(seed=0, dropout=0.0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((INPUT_SIZE,))
    x = keras.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dense(FEATURES, activation="relu", name="dense_2")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    images = keras.Input((INPUT_SIZE,))
    outputs = tfxfer.models.heads.classification_head(backbone(images), NUM_CLASSES, dropout=dropout)
    return keras.Model(images, outputs)


def _data(seed=0, num_examples=96, batch_size=16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (NUM_CLASSES, INPUT_SIZE))
    labels = np.arange(num_examples) % NUM_CLASSES
    features = centres[labels] + rng.normal(0, 1.0, (num_examples, INPUT_SIZE))
    flipped = rng.random(num_examples) < 0.1
    labels = np.where(flipped, rng.integers(0, NUM_CLASSES, num_examples), labels)
    return tf.data.Dataset.from_tensor_slices((features.astype("float32"), labels.astype("int32"))).batch(batch_size)


def _trained_compiled_model(dropout=0.0):
    """A model whose optimizer has state (one step taken) and whose BatchNorm statistics moved."""
    model = _model(dropout=dropout)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    features, labels = next(iter(_data()))
    model.train_on_batch(features, labels)
    return model


def _state(model):
    return {
        # `variables` includes the dropout layer's random-seed state, which `weights` leaves out.
        "values": [v.numpy().copy() for v in model.variables],
        "variable_trainable": [v.trainable for v in model.variables],
        "layer_trainable": [(layer.name, layer.trainable) for layer in model._flatten_layers()],
        "optimizer": model.optimizer,
        "optimizer_values": [v.numpy().copy() for v in model.optimizer.variables],
        "optimizer_iterations": int(model.optimizer.iterations.numpy()),
    }


def _assert_same_state(model, before):
    after = _state(model)
    assert len(after["values"]) == len(before["values"])
    for old, new in zip(before["values"], after["values"]):
        assert np.array_equal(old, new)  # bitwise
    assert after["variable_trainable"] == before["variable_trainable"]
    assert after["layer_trainable"] == before["layer_trainable"]
    assert model.optimizer is before["optimizer"]
    assert after["optimizer_iterations"] == before["optimizer_iterations"] == 1
    for old, new in zip(before["optimizer_values"], after["optimizer_values"], strict=True):
        assert np.array_equal(old, new)


class _RecordingLoop(lr_finder.TrainLoop):
    """TrainLoop that notes, after each step of the sweep, what trained and the weights it left."""

    last = None

    def train_step(self, batch):
        sums = super().train_step(batch)
        _RecordingLoop.last = {
            "optimizer": self.optimizer,
            "trainable_paths": {v.path for v in self.model.trainable_variables},
            "values": {v.path: v.numpy().copy() for v in self.model.variables},
        }
        return sums


@pytest.fixture
def recording_loop(monkeypatch):
    monkeypatch.setattr(lr_finder, "TrainLoop", _RecordingLoop)
    _RecordingLoop.last = None
    return _RecordingLoop


# (1) The sweep leaves the model as it found it.

@pytest.mark.parametrize("phase, cache_features", [(1, True), (1, False), (2, None)])
def test_sweep_restores_weights_trainable_flags_and_optimizer(phase, cache_features, recording_loop):
    # Dropout makes training advance its random-seed state; the backbone is fully trainable
    # (as a user's model may be), so the sweep's freezing must be undone too.
    model = _trained_compiled_model(dropout=0.2)
    before = _state(model)
    sweep = find_learning_rate(model, _data(), phase=phase, config=CONFIG, cache_features=cache_features,
                               steps=30, max_learning_rate=1e-1)
    assert len(sweep.losses) == 30 and sweep.phase == phase
    # The sweep did train: the head's kernel moved before it was restored.
    kernel_path = model.get_layer("predictions").kernel.path
    assert not np.array_equal(recording_loop.last["values"][kernel_path],
                              before["values"][[v.path for v in model.variables].index(kernel_path)])
    _assert_same_state(model, before)
    assert not model.stop_training


def test_restores_the_model_when_the_sweep_fails(monkeypatch):
    model = _trained_compiled_model()
    before = _state(model)

    class _FailingLoop(lr_finder.TrainLoop):
        def train_step(self, batch):
            super().train_step(batch)
            raise RuntimeError("interrupted")

    monkeypatch.setattr(lr_finder, "TrainLoop", _FailingLoop)
    with pytest.raises(RuntimeError, match="interrupted"):
        find_learning_rate(model, _data(), config=CONFIG, steps=10)
    _assert_same_state(model, before)


# (2) The suggestion on a learnable task.

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_suggestion_lands_in_a_sensible_range(seed):
    model = _model(seed)
    # max_learning_rate=10 is fastai's default end: a linear head under Adam still learns at 1.0.
    sweep = find_learning_rate(model, _data(seed), config=CONFIG, max_learning_rate=10.0)
    # Adam moves every weight by about the learning rate each step, and a logit sums 512 ReLU
    # features of mean ~0.3, so one step moves the logits by ~150x the rate: at 1e-1 by ~15
    # (overshooting, the loss rises), at 1e-4 by ~0.015 (too slow to lower the loss within the
    # sweep's steps). The steepest descent lies between: seeds 0-11 give 8.5e-3 to 2.6e-2.
    assert 1e-4 <= sweep.suggestion <= 1e-1
    assert 1e-7 < sweep.suggestion < 10.0
    assert sweep.suggestion in sweep.learning_rates
    smoothed = np.array(sweep.smoothed_losses)
    lowest = int(np.argmin(smoothed))
    # Falls, then rises: the minimum lies inside the sweep, below the start and the end. (Over
    # seeds 0-11 the minimum is at step 82-96, 0.48-0.68 of the loss at step 10, and the last
    # smoothed loss 1.14-5.7 times the minimum.)
    assert 10 < lowest < len(smoothed) - 1
    assert smoothed[lowest] < 0.8 * smoothed[10]
    assert smoothed[-1] > 1.1 * smoothed[lowest]
    # The suggestion is on the way down, before the minimum.
    assert sweep.learning_rates.index(sweep.suggestion) < lowest


def test_smoothed_losses_are_fastais_bias_corrected_average():
    sweep = find_learning_rate(_model(), _data(), config=CONFIG, steps=20, max_learning_rate=1e-2)
    average, expected = 0.0, []
    for count, loss in enumerate(sweep.losses, start=1):
        average = 0.98 * average + 0.02 * loss
        expected.append(average / (1 - 0.98 ** count))
    np.testing.assert_allclose(sweep.smoothed_losses, expected, rtol=1e-12)
    assert sweep.smoothed_losses[0] == pytest.approx(sweep.losses[0])


def test_steepest_descent_finds_the_fastest_fall_and_ignores_noise_at_the_start():
    rates = list(np.geomspace(1e-7, 1.0, 100))
    log_rates = np.log10(rates)
    # A loss that falls fastest at 1e-3 and rises after 1e-1, with a one-step dip at the start
    # (what a noisy early average does) that a one-step difference would take for the descent.
    losses = 1.0 - 0.5 * np.tanh(2.0 * (log_rates + 3)) + 5 * np.maximum(log_rates + 1, 0) ** 2
    losses[12] -= 0.3
    suggestion = steepest_descent(rates, list(losses), skip_start=10, half_window=5)
    assert 10 ** -3.3 < suggestion < 10 ** -2.7
    assert steepest_descent(rates, list(losses), skip_start=10, half_window=1) == rates[11]


def test_steepest_descent_without_a_descent_warns_and_suggests_a_tenth_of_the_minimum(caplog):
    rates = [1e-3, 1e-2, 1e-1, 1.0]
    assert steepest_descent(rates, [1.0, 2.0, 3.0, 4.0]) == 1e-3
    assert steepest_descent(rates, [2.0, 2.0, 1.0, float("nan")], skip_start=2) == pytest.approx(1e-2)
    assert "no steepest descent" in caplog.text


# (3) The learning rate grows exponentially.

def test_learning_rates_grow_exponentially_from_the_minimum():
    sweep = find_learning_rate(_model(), _data(), config=CONFIG, min_learning_rate=1e-5, max_learning_rate=1e-1,
                               steps=21, divergence_factor=math.inf)
    rates = np.array(sweep.learning_rates)
    assert len(rates) == 21
    assert rates[0] == 1e-5
    np.testing.assert_allclose(rates[1:] / rates[:-1], 10 ** 0.2, rtol=1e-12)
    assert rates[-1] == pytest.approx(1e-1, rel=1e-12)


def test_schedule_is_what_the_optimizer_sees_and_serialises():
    schedule = ExponentialSweepSchedule(1e-6, 1e-2, steps=5)
    assert [float(schedule(step)) for step in range(6)] == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-2],
                                                                         rel=1e-5)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(copy, ExponentialSweepSchedule)
    assert copy.get_config() == schedule.get_config()


# (4) Divergence stops the sweep.

def test_divergence_stops_the_sweep_early():
    sweep = find_learning_rate(_model(), _data(), config=CONFIG, max_learning_rate=1e6)
    assert sweep.stopped_early
    assert len(sweep.losses) < 100
    assert len(sweep.learning_rates) == len(sweep.losses) == len(sweep.smoothed_losses)
    last = sweep.smoothed_losses[-1]
    assert not math.isfinite(last) or last > 4.0 * min(filter(math.isfinite, sweep.smoothed_losses))
    assert sweep.suggestion < sweep.learning_rates[-1]
    # JSON without NaN or Infinity, which strict parsers reject.
    record = json.loads(json.dumps(sweep.to_dict(), allow_nan=False))
    assert record["stopped_early"] is True and record["suggestion"] == sweep.suggestion
    assert len(record["losses"]) == len(sweep.losses)


def test_a_sweep_that_does_not_diverge_runs_every_step():
    sweep = find_learning_rate(_model(), _data(), config=CONFIG, steps=15, max_learning_rate=1e-3)
    assert not sweep.stopped_early
    assert len(sweep.losses) == 15
    assert sweep.to_dict()["losses"] == sweep.losses


# (5) Phase 2 trains the top of the backbone.

def test_phase2_sweep_trains_the_top_of_the_backbone_and_restores_it(recording_loop):
    model = _model()
    before = {v.path: v.numpy().copy() for v in model.variables}
    trainable_before = [(layer.name, layer.trainable) for layer in model._flatten_layers()]
    sweep = find_learning_rate(model, _data(), phase=2, config=CONFIG, steps=20, max_learning_rate=1e-2)
    assert sweep.phase == 2
    during = recording_loop.last
    backbone = model.get_layer("backbone")
    top, bottom, bn = (backbone.get_layer(name) for name in ("dense_2", "dense_1", "bn"))
    # fine_tune_at="dense_2": dense_2 trains, dense_1 and BatchNorm stay frozen.
    assert {top.kernel.path, top.bias.path} <= during["trainable_paths"]
    assert bottom.kernel.path not in during["trainable_paths"]
    assert not {v.path for v in bn.weights} & during["trainable_paths"]
    assert not np.array_equal(during["values"][top.kernel.path], before[top.kernel.path])
    assert np.array_equal(during["values"][bottom.kernel.path], before[bottom.kernel.path])
    assert isinstance(during["optimizer"], keras.optimizers.AdamW)
    assert not isinstance(during["optimizer"], layerwise_lr.LayerwiseAdamW)
    for variable in model.variables:
        assert np.array_equal(variable.numpy(), before[variable.path])
    assert [(layer.name, layer.trainable) for layer in model._flatten_layers()] == trainable_before


def test_phase1_sweep_trains_only_the_head(recording_loop):
    model = _model()
    find_learning_rate(model, _data(), config=CONFIG, steps=10, cache_features=False)
    head = model.get_layer("predictions")
    assert recording_loop.last["trainable_paths"] == {head.kernel.path, head.bias.path}


def test_sweep_uses_the_phase_optimizer_settings(recording_loop):
    model = _model()
    config = CONFIG.replace(weight_decay=0.05, global_clipnorm=1.0)
    phase2 = planner.plan_phases(model, _data(), None, config, callbacks=None, class_counts=None,
                                 cache_features=None)[1]
    multipliers = {v.path: 0.5 for v in model.get_layer("backbone").weights}
    sweep_phase(model, dataclasses.replace(phase2, lr_multipliers=multipliers), steps=5)
    optimizer = recording_loop.last["optimizer"]
    assert isinstance(optimizer, layerwise_lr.LayerwiseAdamW)
    assert optimizer.lr_multipliers == multipliers
    assert optimizer.weight_decay == 0.05 and optimizer.global_clipnorm == 1.0
    assert isinstance(optimizer._learning_rate, ExponentialSweepSchedule)  # Keras keeps the schedule there


# (6) Bad arguments.

@pytest.mark.parametrize("arguments, message", [
    ({"min_learning_rate": 0.0}, r"min_learning_rate must be a finite number > 0.*Received: min_learning_rate=0.0"),
    ({"max_learning_rate": float("inf")}, r"max_learning_rate must be a finite number > 0"),
    ({"min_learning_rate": "1e-7"}, r"min_learning_rate must be a finite number > 0.*'1e-7'"),
    ({"min_learning_rate": 1e-2, "max_learning_rate": 1e-3},
     r"min_learning_rate must be below max_learning_rate.*Received: min_learning_rate=0.01, max_learning_rate=0.001"),
    ({"steps": 1}, r"steps must be an int >= 2.*Received: steps=1"),
    ({"steps": 50.0}, r"steps must be an int >= 2.*Received: steps=50.0"),
    ({"steps": True}, r"steps must be an int >= 2"),
    ({"divergence_factor": 1.0}, r"divergence_factor must be a number > 1.*Received: divergence_factor=1.0"),
    ({"divergence_factor": float("nan")}, r"divergence_factor must be a number > 1"),
    ({"phase": 3}, r"phase is the fine_tune phase to sweep: 1 .* or 2 .*Received: phase=3"),
    ({"phase": 2, "config": FineTuneConfig(fine_tune_epochs=0)},
     r"config.fine_tune_epochs is 0.*fine_tune_epochs > 0.*or phase=1"),
])
def test_bad_arguments_are_config_errors(arguments, message):
    with pytest.raises(ConfigError, match=message):
        find_learning_rate(_model(), _data(), **arguments)


def test_a_non_phase_is_a_type_error():
    with pytest.raises(TypeError, match=r"takes a Phase .*find_learning_rate. Received: phase of type int"):
        sweep_phase(_model(), 1)


def test_data_that_does_not_fit_the_model_fails_as_in_fine_tune():
    features = tf.zeros((4, INPUT_SIZE + 1))
    with pytest.raises(ConfigError):
        find_learning_rate(_model(), tf.data.Dataset.from_tensor_slices((features, tf.zeros(4, tf.int32))).batch(2))


# (7) Cached features give the same sweep.

def test_cached_features_give_the_losses_of_the_full_model():
    # One batch of every example: the cache's reshuffling then changes only the order within it.
    data = _data(num_examples=48, batch_size=48)
    arguments = {"config": CONFIG, "steps": 30, "max_learning_rate": 1e-1}
    cached = find_learning_rate(_model(), data, cache_features=True, **arguments)
    full = find_learning_rate(_model(), data, cache_features=False, **arguments)
    np.testing.assert_allclose(cached.losses, full.losses, rtol=1e-4)
    assert cached.suggestion == pytest.approx(full.suggestion)


def test_features_cached_by_the_caller_are_used():
    model, data = _model(), _data()
    phase1 = planner.plan_phases(model, data, None, CONFIG, callbacks=None, class_counts=None, cache_features=True)[0]
    own = sweep_phase(model, phase1, steps=20)
    model.get_layer("backbone").trainable = False  # cache_phase needs the frozen backbone, as in the engine
    given = sweep_phase(model, phase1, steps=20, cached=feature_cache.cache_phase(model, data, None))
    assert given.losses == own.losses


# The docstrings' examples run.

def test_docstring_examples_run():
    failed, attempted = doctest.testmod(lr_finder, extraglobs={"tfxfer": tfxfer},
                                        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert attempted >= 5 and failed == 0


def test_the_suggestion_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="absl")
    sweep = find_learning_rate(_model(), _data(), config=CONFIG, steps=10, max_learning_rate=1e-2)
    assert f"suggested learning rate {sweep.suggestion:.3g}" in caplog.text
    # Its own time, which the phase's seconds do not count, in the log and in the record metrics.json gets.
    assert 0 < sweep.seconds < 60 and sweep.to_dict()["seconds"] == sweep.seconds
    assert (f"Learning-rate sweep of phase 1 in {sweep.seconds:.1f}s: 10 of 10 steps from 1e-07 to 0.01"
            in caplog.text)


# fine_tune(find_learning_rate=...): the phase trains at the sweep's suggestion.

@pytest.mark.parametrize("phase_number", [1, 2])
def test_fine_tune_trains_the_phase_it_is_asked_for_at_the_suggestion(phase_number):
    config = CONFIG.replace(epochs=2, fine_tune_epochs=1, learning_rate=0.5, fine_tune_learning_rate=0.5)
    result = tfxfer.fine_tune(_model(), _data(), _data(seed=1), config=config, verbose=0,
                              find_learning_rate=phase_number)
    swept, other = (result.phase1, result.phase2) if phase_number == 1 else (result.phase2, result.phase1)
    sweep = swept.learning_rate_sweep
    assert sweep["phase"] == phase_number and len(sweep["losses"]) == len(sweep["learning_rates"]) > 10
    assert swept.learning_rate == sweep["suggestion"] != 0.5
    assert other.learning_rate == 0.5 and other.learning_rate_sweep is None
    assert result.metrics()[f"phase{phase_number}"]["learning_rate_suggestion"] == sweep["suggestion"]
    json.dumps(result.metrics(), allow_nan=False)
