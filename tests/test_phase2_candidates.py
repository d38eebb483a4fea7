"""`benchmarks/mixup.py`, `benchmarks/sharpness.py` and `benchmarks/discriminative.py`: phase-2 candidates swapped
into the training loop's step or its plan."""

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.errors import ConfigError
from tfxfer.models.heads import HeadKind
from tfxfer.training import layerwise_lr, loop, losses, planner

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import discriminative  # noqa: E402
import mixup  # noqa: E402
import sharpness  # noqa: E402

_KIND = HeadKind.MULTICLASS


def _model_and_data(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 4, 3))
    hidden = keras.layers.Dense(6, activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, tfxfer.models.heads.classification_head(hidden, 3, dropout=0.0))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses.loss_for(_KIND), metrics=losses.metrics_for(_KIND))
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, size=(8, 4, 4, 3)).astype("float32")
    labels = (np.arange(8) % 3).astype("int32")
    return model, tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


def _one_step(model, data):
    loop.TrainLoop(model, _KIND, losses.loss_for(_KIND)).fit(data, epochs=1, steps=1)
    return model.get_weights()


def test_cutmix_pastes_a_box_of_the_partner_over_the_share_it_reports():
    first, partner = tf.zeros([2, 20, 30, 3]), tf.ones([2, 20, 30, 3])
    for seed in range(5):
        tf.random.set_seed(seed)
        mixed, kept = mixup._cutmix(first, partner, mixup._beta(1.0))
        assert float(tf.reduce_mean(mixed)) == pytest.approx(1.0 - float(kept))
        assert 0.0 <= float(kept) <= 1.0


def test_mixup_blends_images_by_its_share():
    mixed, lam = mixup._mixup(tf.zeros([1, 2, 2, 3]), tf.fill([1, 2, 2, 3], 10.0), tf.constant(0.25))
    np.testing.assert_allclose(mixed.numpy(), 7.5)
    assert float(lam) == 0.25


@pytest.mark.parametrize("mode", mixup.MODES)
def test_a_mixed_step_pairs_each_partner_image_with_its_own_label(mode, monkeypatch):
    # With a share of 0 every example is its partner alone, image and label: the batch is the same examples in
    # another order, so the step must equal an unmixed one. A label paired with the wrong image would not.
    monkeypatch.setattr(mixup, "_beta", lambda alpha: tf.constant(0.0))
    if mode == "cutmix":  # a box over the whole image
        monkeypatch.setattr(mixup, "_MIXERS", {"cutmix": lambda images, partners, lam: (partners, lam)})
    model, data = _model_and_data()
    expected = _one_step(model, data)
    model, data = _model_and_data()
    with mixup.mixing(mode):
        mixed = _one_step(model, data)
    for ours, theirs in zip(mixed, expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_mixing_leaves_the_loop_as_it_was_after_the_block():
    step, example_losses = loop.TrainLoop._train_replica, loop.TrainLoop._example_losses
    with mixup.mixing("mixup"):
        assert loop.TrainLoop._train_replica is not step
    assert (loop.TrainLoop._train_replica, loop.TrainLoop._example_losses) == (step, example_losses)


def test_a_sharpness_aware_step_applies_the_gradient_of_the_moved_weights_to_the_weights_as_they_were():
    rho, rate = 0.05, 0.1
    model, data = _model_and_data()
    images, labels = next(iter(data))
    loss = losses.loss_for(_KIND)

    def gradients():
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss.call(tf.cast(labels, tf.float32), model(images, training=True)))
        return tape.gradient(value, model.trainable_variables)

    start = [variable.numpy() for variable in model.trainable_variables]
    first = gradients()
    norm = tf.linalg.global_norm(first)
    for variable, gradient in zip(model.trainable_variables, first):
        variable.assign_add(gradient * rho / norm)
    expected = [weight - rate * gradient.numpy() for weight, gradient in zip(start, gradients())]

    model, data = _model_and_data()
    with sharpness.sharpness_aware(rho):
        _one_step(model, data)
    for variable, weight in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(variable.numpy(), weight, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, block", [("Conv1", 0), ("expanded_conv_project_BN", 0), ("block_1_expand", 1),
                                         ("block_16_project_BN", 16), ("Conv_1", 17), ("out_relu", 17)])
def test_mobilenet_v2_layers_belong_to_their_blocks(name, block):
    assert discriminative.block_index(name) == block


def test_block_rates_spread_phase_2_rates_from_the_top_block_down_to_a_hundredth_at_the_stem():
    model = tfxfer.build_image_classifier("mobilenet_v2", 3, weights=None, image_size=32, alpha=0.35)
    images = np.zeros((4, 32, 32, 3), "float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(4) % 3)).batch(2)
    config = tfxfer.FineTuneConfig(fine_tune_at=1.0, layer_decay=discriminative.DECAY)
    with discriminative.block_rates(True):
        rates = planner.plan_phases(model, data, None, config, callbacks=None, class_counts=None,
                                    cache_features=True)[1].lr_multipliers
    assert rates["Conv1/kernel"] == pytest.approx(0.01)
    assert rates["block_16_project/kernel"] == pytest.approx(discriminative.DECAY)
    assert rates["Conv_1/kernel"] == rates["predictions/kernel"] == 1.0
    # Outside the block, layer_decay is the transformer blocks' again, which a conv net has none of.
    assert layerwise_lr.layer_learning_rate_multipliers is not discriminative.multipliers
    with pytest.raises(ConfigError, match="transformer"):
        planner.plan_phases(model, data, None, config, callbacks=None, class_counts=None, cache_features=True)
