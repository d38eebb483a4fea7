"""What a training run tells its user: `fine_tune`'s verbose, the phase summaries, TensorBoard events."""

import glob
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import logging

import tfxfer
from tfxfer.errors import ConfigError
from tfxfer.training import console

EPOCHS = (2, 1)


def _model(top_batch_norm=False):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, name="conv_1")(inputs)
    x = keras.layers.BatchNormalization(name="conv_1_bn")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv_2")(x)
    if top_batch_norm:
        x = keras.layers.BatchNormalization(name="conv_2_bn")(x)
    backbone = keras.Model(inputs, x, name="tiny")
    return tfxfer.build_image_classifier(backbone, num_classes=2, preprocessing="tf", augmentation=False,
                                         dropout=0.0)


def _data(seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(24) % 2
    images = rng.normal(100, 30, (24, 16, 16, 3)).astype("float32")
    images[..., 0] += 80 * labels[:, None, None]
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


def _fine_tune(**kwargs):
    config = tfxfer.FineTuneConfig(epochs=EPOCHS[0], fine_tune_epochs=EPOCHS[1], fine_tune_at="conv_2",
                                   early_stopping_patience=None)
    return tfxfer.fine_tune(_model(), _data(0), _data(1), config=config, **kwargs)


@pytest.mark.parametrize("verbose, isatty, expected", [
    ("auto", True, 1), ("auto", False, 2), (0, True, 0), (1, False, 1), (2, True, 2)])
def test_auto_verbose_is_a_progress_bar_in_a_terminal_and_a_line_per_epoch_elsewhere(
        verbose, isatty, expected, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: isatty)
    assert console.resolve_verbose(verbose) == expected


@pytest.mark.parametrize("verbose", [3, -1, "yes", True, None])
def test_other_verbose_values_are_refused(verbose):
    with pytest.raises(ConfigError, match="verbose must be one of"):
        console.resolve_verbose(verbose)


def test_verbose_2_writes_one_line_per_epoch_and_0_writes_nothing(capsys):
    _fine_tune(verbose=2)
    lines = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in lines if "val_accuracy" in line]
    assert len(epoch_lines) == sum(EPOCHS)
    assert all(len(line) < 200 and "loss:" in line for line in epoch_lines)
    _fine_tune(verbose=0)
    assert capsys.readouterr().out == ""


def test_verbose_1_draws_a_progress_bar_inside_each_epoch(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    _fine_tune(verbose=1)
    output = capsys.readouterr().out
    assert output.count("3/3") >= sum(EPOCHS)  # each epoch's bar reaches its 3 steps
    assert "━" in output  # the bar itself, as fit draws it


def test_each_phase_is_summarised_with_what_trains(monkeypatch):
    messages = []
    monkeypatch.setattr(logging, "info", lambda message, *args: messages.append(message % args))
    model = _model()
    config = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=1, fine_tune_at="conv_2", learning_rate=0.01,
                                   fine_tune_learning_rate=1e-4, early_stopping_patience=None)
    tfxfer.fine_tune(model, _data(0), config=config, verbose=0)
    phase1, phase2 = (next(m for m in messages if m.startswith(f"phase {n}: ")) for n in (1, 2))
    head = model.get_layer("predictions").count_params()
    total = model.count_params()
    assert f"{head:,} trainable / {total - head:,} frozen parameters" in phase1
    assert "peak learning rate 0.01;" in phase1 and "backbone frozen" in phase1
    conv_2 = model.get_layer("backbone").get_layer("conv_2").count_params()
    assert f"{head + conv_2:,} trainable / {total - head - conv_2:,} frozen" in phase2
    assert "peak learning rate 0.0001, ending 0.5 of the way from its starting weights to its trained ones;" in phase2
    assert "backbone layers conv_2 (1 of " in phase2


def test_phase_summaries_count_epochs_and_steps_in_the_singular_for_one(monkeypatch):
    messages = []
    monkeypatch.setattr(logging, "info", lambda message, *args: messages.append(message % args))
    config = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=2, fine_tune_at="conv_2", early_stopping_patience=None)
    tfxfer.fine_tune(_model(), _data(0).take(1), config=config, verbose=0)
    assert any(m.startswith("phase 1: 1 epoch of 1 step, peak learning rate ") for m in messages), messages
    assert any(m.startswith("phase 2: 2 epochs of 1 step, peak learning rate ") for m in messages), messages


@pytest.mark.parametrize("count, noun, plural, expected", [
    (0, "step", None, "0 steps"), (1, "step", None, "1 step"), (2, "step", None, "2 steps"),
    (1, "batch", "batches", "1 batch"), (3, "batch", "batches", "3 batches")])
def test_counted_puts_the_noun_in_the_plural_unless_the_count_is_1(count, noun, plural, expected):
    assert console.counted(count, noun, plural) == expected


@pytest.mark.parametrize("top_batch_norm", [False, True])
def test_phase2s_summary_says_batch_norm_stays_frozen_only_where_it_trains(top_batch_norm, monkeypatch):
    messages = []
    monkeypatch.setattr(logging, "info", lambda message, *args: messages.append(message % args))
    config = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=1, fine_tune_at="conv_2", early_stopping_patience=None)
    tfxfer.fine_tune(_model(top_batch_norm), _data(0), config=config, verbose=0)
    phase2 = next(m for m in messages if m.startswith("phase 2: "))
    # conv_1_bn is below fine_tune_at, frozen with everything there: only conv_2_bn is news.
    layers = 5 if top_batch_norm else 4  # with the input layer
    assert f"backbone layers conv_2 (1 of {layers}{', BatchNorm frozen' * top_batch_norm})." in phase2


def test_each_phase_ends_with_the_time_its_result_records_naming_the_feature_extraction(monkeypatch):
    messages = []
    monkeypatch.setattr(logging, "info", lambda message, *args: messages.append(message % args))
    result = _fine_tune(verbose=0)
    phase1, phase2 = (next(m for m in messages if m.startswith(f"phase {n} done in ")) for n in (1, 2))
    # Phase 1 trained on cached features: its time counts their extraction, which the line names.
    # (A tiny model extracts in well under 0.05 s, so the extraction may read 0.0s.)
    match = re.fullmatch(r"phase 1 done in (\d+\.\d)s \((\d+\.\d)s of it computing the cached features\), "
                         r"val_loss .*", phase1)
    assert match, phase1
    assert match[1] == f"{result.phase1.seconds:.1f}" and float(match[2]) <= float(match[1])
    assert phase2.startswith(f"phase 2 done in {result.phase2.seconds:.1f}s, val_loss ")


def test_tensorboard_events_hold_each_phases_metrics_and_learning_rate(tmp_path):
    result = _fine_tune(verbose=0, tensorboard_dir=str(tmp_path))
    for phase, epochs, peak in (("phase1", EPOCHS[0], result.phase1.learning_rate),
                                ("phase2", EPOCHS[1], result.phase2.learning_rate)):
        scalars = _scalars(tmp_path / phase / "train")
        assert len(scalars["epoch_loss"]) == epochs
        np.testing.assert_allclose(scalars["epoch_loss"], result.histories()[int(phase[-1]) - 1]["loss"],
                                   rtol=1e-5)
        # Logged at each epoch's end: the cosine schedule decays from the peak to 0 over the phase.
        rates = scalars["epoch_learning_rate"]
        assert len(rates) == epochs and rates == sorted(rates, reverse=True)
        assert 0 <= rates[-1] < rates[0] <= peak if epochs > 1 else rates == [pytest.approx(0, abs=1e-9)]
        assert len(_scalars(tmp_path / phase / "validation")["epoch_accuracy"]) == epochs


def _scalars(folder):
    values = {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return values


def test_find_learning_rate_names_a_phase_that_runs():
    with pytest.raises(ConfigError, match="find_learning_rate must be 1 or 2"):
        _fine_tune(find_learning_rate=3)
    config = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=0)
    with pytest.raises(ConfigError, match="needs a phase 2"):
        tfxfer.fine_tune(_model(), _data(0), config=config, find_learning_rate=2)


class _ZeroLoss(keras.losses.Loss):
    """A loss that teaches nothing: with it (and no weight decay) no weight may move."""

    def call(self, y_true, y_pred):
        return keras.ops.sum(y_pred, axis=-1) * 0.0


def test_your_own_loss_replaces_the_heads_in_both_phases():
    model = _model()
    before = [weight.copy() for weight in model.get_weights()]
    config = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=1, fine_tune_at="conv_2", weight_decay=0.0,
                                   early_stopping_patience=None)
    result = tfxfer.fine_tune(model, _data(0), config=config, verbose=0, loss=_ZeroLoss())
    assert result.histories() == [{"loss": [0.0], "accuracy": result.phase1.history["accuracy"]},
                                  {"loss": [0.0], "accuracy": result.phase2.history["accuracy"]}]
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
