"""Tests for tfxfer.training.freezing: which backbone layers train in each phase.

Index/name/fraction resolution runs on a real (randomly initialised, 32x32,
alpha=0.35) MobileNetV2 backbone, built once: `unfreeze_top` resets every
layer's flag itself, and each test starts from `freeze_backbone`. The
BatchNorm-statistics check trains a tiny conv backbone, which compiles in
seconds.
"""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
import training_flags  # recipes/training_flags.py

import tfxfer
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError, UserError
from tfxfer.training.freezing import (
    first_trainable_index,
    freeze_backbone,
    unfreeze_top,
)


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(1234)
    return tfxfer.build_image_classifier(
        "mobilenet_v2", num_classes=3, weights=None, image_size=32, alpha=0.35, augmentation=False)


@pytest.fixture
def backbone(classifier):
    backbone = classifier.get_layer("backbone")
    freeze_backbone(backbone)
    return backbone


def _is_batch_norm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def _weight_count(layers):
    return sum(len(layer.weights) for layer in layers)


def _assert_trainable_from(backbone, start):
    """Layers before `start` and every BatchNorm are frozen; the others train."""
    for index, layer in enumerate(backbone.layers):
        expected = index >= start and not _is_batch_norm(layer)
        assert layer.trainable is expected, (index, layer.name)
    unfrozen = [layer for layer in backbone.layers[start:] if not _is_batch_norm(layer)]
    assert len(backbone.trainable_weights) == _weight_count(unfrozen)


# Phase 1.

def test_freeze_backbone_leaves_only_the_head_trainable(classifier, backbone):
    assert backbone.trainable_weights == []
    assert len(backbone.non_trainable_weights) == len(backbone.weights) > 0
    # MobileNetV2 ends in 1280 channels whatever alpha (below 1) is.
    assert [tuple(w.shape) for w in classifier.trainable_weights] == [(1280, 3), (3,)]


# Phase 2: where unfreezing starts.

def test_unfreeze_top_by_index(backbone):
    start = unfreeze_top(backbone, 100)
    assert start == 100
    _assert_trainable_from(backbone, 100)


def test_unfreeze_top_at_zero_unfreezes_every_layer_but_batch_norm(backbone):
    assert unfreeze_top(backbone, 0) == 0
    _assert_trainable_from(backbone, 0)
    non_bn = [layer for layer in backbone.layers if not _is_batch_norm(layer)]
    assert len(backbone.trainable_weights) == _weight_count(non_bn)


def test_unfreeze_top_by_layer_name(backbone):
    start = unfreeze_top(backbone, "block_16_expand")
    assert backbone.layers[start].name == "block_16_expand"
    assert not backbone.layers[start - 1].trainable
    # block_16_expand, block_16_depthwise, block_16_project and Conv_1: one
    # bias-free kernel each; their BatchNorms stay frozen.
    assert sorted(w.path.split("/")[0] for w in backbone.trainable_weights) == [
        "Conv_1", "block_16_depthwise", "block_16_expand", "block_16_project"]
    _assert_trainable_from(backbone, start)


@pytest.mark.parametrize("fraction", [0.3, 0.5, 1.0])
def test_unfreeze_top_by_fraction_counts_layers_from_the_top(backbone, fraction):
    num_layers = len(backbone.layers)
    start = unfreeze_top(backbone, fraction)
    assert num_layers - start == round(fraction * num_layers)
    _assert_trainable_from(backbone, start)


def test_unfreeze_top_tiny_fraction_unfreezes_at_least_the_last_layer(backbone):
    assert unfreeze_top(backbone, 1e-6) == len(backbone.layers) - 1


def test_unfreeze_top_keeps_every_batch_norm_frozen(backbone):
    unfreeze_top(backbone, 0)
    batch_norms = [layer for layer in backbone.layers if _is_batch_norm(layer)]
    assert len(batch_norms) == 52
    assert not any(layer.trainable for layer in batch_norms)
    bn_weights = {id(w) for layer in batch_norms for w in layer.weights}
    assert not bn_weights & {id(w) for w in backbone.trainable_weights}


def test_unfreeze_top_freezes_batch_norm_inside_nested_models():
    block = keras.Sequential(
        [keras.layers.Conv2D(4, 3, name="inner_conv"), keras.layers.BatchNormalization(name="inner_bn")],
        name="block")
    inputs = keras.Input((8, 8, 3))
    backbone = keras.Model(inputs, block(keras.layers.Conv2D(4, 3, name="outer_conv")(inputs)))
    unfreeze_top(backbone, 0)
    assert block.get_layer("inner_conv").trainable
    assert not block.get_layer("inner_bn").trainable
    assert len(backbone.trainable_weights) == 4  # two kernels, two biases


class _ConvBlock(keras.layers.Layer):
    """A custom layer (not a sub-model) holding a BatchNorm: `.layers` does not reach it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3, name="block_conv")
        self.batch_norm = keras.layers.BatchNormalization(name="block_bn")

    def call(self, inputs, training=None):
        return self.batch_norm(self.conv(inputs), training=training)


def test_unfreeze_top_freezes_batch_norm_inside_custom_layers_and_keeps_it_in_inference_mode(caplog):
    inputs = keras.Input((8, 8, 3))
    block = _ConvBlock(name="block")
    backbone = keras.Model(inputs, block(keras.layers.Conv2D(4, 3, name="outer_conv")(inputs)))
    with caplog.at_level(logging.INFO, logger="absl"):
        unfreeze_top(backbone, "block")
    assert caplog.messages == ["Fine-tuning 1 of 3 backbone layers (from 'block' on); BatchNorm stays frozen."]
    assert block.trainable and block.conv.trainable
    assert not block.batch_norm.trainable
    assert {id(w) for w in backbone.trainable_weights} == {id(block.conv.kernel), id(block.conv.bias)}
    # A training step's forward pass leaves the moving statistics as they were: the BatchNorm runs in inference mode.
    backbone(np.random.default_rng(0).normal(5.0, 3.0, (4, 8, 8, 3)).astype("float32"), training=True)
    assert np.array_equal(block.batch_norm.moving_mean.numpy(), np.zeros(4))
    assert np.array_equal(block.batch_norm.moving_variance.numpy(), np.ones(4))


def _dense_backbone(batch_norm_at=None, nested=False):
    """Three Dense layers, with a BatchNormalization after the one named `batch_norm_at` (in a nested model)."""
    inputs = keras.Input((4,))
    x = inputs
    for name in ("first", "second", "third"):
        x = keras.layers.Dense(4, name=name)(x)
        if name == batch_norm_at:
            batch_norm = keras.layers.BatchNormalization(name=f"{name}_bn")
            x = keras.Sequential([batch_norm], name=f"{name}_block")(x) if nested else batch_norm(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("batch_norm_at, nested, clause", [
    (None, False, ""),  # a transformer, say: no BatchNorm to keep frozen
    ("first", False, ""),  # only below the unfrozen layers, where everything stays frozen anyway
    ("second", False, "; BatchNorm stays frozen"),
    ("third", True, "; BatchNorm stays frozen"),
])
def test_unfreeze_top_says_batch_norm_stays_frozen_only_where_there_is_some(batch_norm_at, nested, clause, caplog):
    backbone = _dense_backbone(batch_norm_at, nested)
    with caplog.at_level(logging.INFO, logger="absl"):
        unfreeze_top(backbone, "second")
    unfrozen = len(backbone.layers) - [layer.name for layer in backbone.layers].index("second")
    assert caplog.messages == [
        f"Fine-tuning {unfrozen} of {len(backbone.layers)} backbone layers (from 'second' on){clause}."]


# Errors.

def test_unknown_layer_name_is_an_error_listing_the_last_layers(backbone):
    with pytest.raises(ValueError, match=r"No backbone layer is named 'block_99'.*'out_relu'.*"
                                         r"Received: fine_tune_at='block_99'"):
        unfreeze_top(backbone, "block_99")


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_fraction_out_of_range_is_an_error(backbone, fraction):
    with pytest.raises(ValueError, match=rf"must be in \(0, 1\]\. Received: fine_tune_at={fraction}"):
        unfreeze_top(backbone, fraction)


@pytest.mark.parametrize("index", [-1, 154, 1000])
def test_index_out_of_range_is_an_error(backbone, index):
    assert len(backbone.layers) == 154
    with pytest.raises(ValueError, match=rf"one of the backbone's 154 layers\. Received: fine_tune_at={index}"):
        unfreeze_top(backbone, index)


def test_index_past_the_layers_says_what_to_pass_instead(backbone):
    expected = (r"index of the first backbone layer to unfreeze: pass 0 to 153, a fraction of the layers such as "
                r"0\.3, or a layer name \(e\.g\. one of the last: \[.*'out_relu'\]\)\..*Received: fine_tune_at=5000")
    with pytest.raises(ConfigError, match=expected):
        first_trainable_index(backbone.layers, 5000)


@pytest.mark.parametrize("value", ["block_99", 1.5, 154])
def test_bad_fine_tune_at_is_a_user_error(backbone, value):
    # recipes/cli.py shows UserErrors as a message without a traceback.
    with pytest.raises(UserError, match=r"Received: fine_tune_at="):
        first_trainable_index(backbone.layers, value)


@pytest.mark.parametrize("value", [True, None, [3]])
def test_fine_tune_at_of_another_type_is_an_error(backbone, value):
    with pytest.raises(TypeError, match=r"must be an int, float or str\. Received: fine_tune_at="):
        unfreeze_top(backbone, value)


def test_failed_unfreeze_leaves_the_backbone_frozen(backbone):
    with pytest.raises(ValueError, match="No backbone layer"):
        unfreeze_top(backbone, "nope")
    assert backbone.trainable_weights == []


def test_first_trainable_index_needs_no_model():
    layers = [keras.layers.Dense(1, name=f"dense_{i}") for i in range(10)]
    assert first_trainable_index(layers, "dense_7") == 7
    assert first_trainable_index(layers, 0.25) == 8  # round(2.5) == 2 layers unfrozen
    assert first_trainable_index(layers, 9) == 9


# Flag parsing: the recipes' parse_fine_tune_at turns --fine_tune_at text into what freezing takes.

@pytest.mark.parametrize("text, expected", [
    ("100", 100), ("0", 0), ("-1", -1), ("0.3", 0.3), ("1.0", 1.0), ("1e-1", 0.1),
    ("block_16_expand", "block_16_expand"), ("Conv_1", "Conv_1"),
])
def test_parse_fine_tune_at(text, expected):
    parsed = training_flags.parse_fine_tune_at(text)
    assert parsed == expected
    assert type(parsed) is type(expected)  # "1" is an index, "1.0" the whole backbone


# What phase 2 does to the weights.

def _tiny_backbone():
    """Three conv blocks with BatchNorm, the last one a nested model."""
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for name in ("first", "second"):
        x = keras.layers.Conv2D(8, 3, strides=2, name=f"{name}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    block = keras.Sequential([
        keras.layers.Conv2D(8, 3, name="third_conv"),
        keras.layers.BatchNormalization(name="third_bn"),
        keras.layers.ReLU(name="third_relu"),
    ], name="third_block")
    return keras.Model(inputs, block(x), name="tiny")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def test_fine_tune_keeps_batch_norm_statistics_and_lower_layers_fixed():
    model = tfxfer.build_image_classifier(_tiny_backbone(), num_classes=3, preprocessing="tf", augmentation=False)
    backbone = model.get_layer("backbone")
    layers = {layer.name: layer for layer in _all_layers(backbone)}
    batch_norms = [layer for layer in layers.values() if _is_batch_norm(layer)]
    assert len(batch_norms) == 3
    # Pretrained-looking statistics, far from what the random data would give.
    rng = np.random.default_rng(0)
    for layer in batch_norms:
        layer.moving_mean.assign(rng.normal(0, 1, layer.moving_mean.shape))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
    before = {name: [w.numpy().copy() for w in layer.weights] for name, layer in layers.items()}

    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 3, 8)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    config = FineTuneConfig(epochs=1, fine_tune_epochs=1, fine_tune_at="second_conv",
                            fine_tune_learning_rate=1e-2, early_stopping_patience=None)
    result = tfxfer.fine_tune(model, data, config=config)
    assert result.phase2 is not None

    def unchanged(name):
        return all(np.array_equal(a, w.numpy()) for a, w in zip(before[name], layers[name].weights))

    # Moving mean/variance (and gamma/beta) of every BatchNorm, nested one included.
    for layer in batch_norms:
        assert unchanged(layer.name), layer.name
    assert unchanged("first_conv")  # below fine_tune_at
    assert not np.array_equal(before["second_conv"][0], layers["second_conv"].kernel.numpy())
    assert not np.array_equal(before["third_conv"][0], layers["third_conv"].kernel.numpy())
