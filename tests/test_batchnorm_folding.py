"""Tests for tfxfer.models.batchnorm_folding: BatchNorm merged into the convolution before it."""

import keras
import numpy as np
import pytest

import tfxfer
from tfxfer.models.batchnorm_folding import fold_batch_norms

CLEAR_SESSION_ONCE = True


def _randomise_statistics(model, seed=0):
    """Moving statistics, scales and offsets far from a fresh BatchNorm's (which is nearly identity)."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 2.0, size=w.shape) if w.name in ("gamma", "moving_variance")
                               else rng.normal(0.0, 0.5, size=w.shape) for w in layer.weights])
    return model


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _batch_norms(model):
    return [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def _block(inputs):
    """A Conv2D without bias, a DepthwiseConv2D with one, another Conv2D, each followed by a BatchNorm to fold."""
    x = keras.layers.Conv2D(6, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)  # with a bias, 12 channels
    x = keras.layers.BatchNormalization(epsilon=1e-3)(x)
    x = keras.layers.Conv2D(4, 1, use_bias=False)(x)
    return keras.layers.BatchNormalization(center=False, scale=False)(x)


def _inputs(shape=(2, 9, 9, 3), seed=1):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_folded_model_computes_what_the_model_does_in_inference_without_its_batch_norms():
    inputs = keras.Input((9, 9, 3))
    model = _randomise_statistics(keras.Model(inputs, _block(inputs)))
    folded, count = fold_batch_norms(model)
    assert count == 3
    assert _batch_norms(folded) == []
    images = _inputs()
    expected = model(images, training=False)
    np.testing.assert_allclose(folded(images, training=False), expected, rtol=1e-5, atol=1e-5)
    # The original keeps its BatchNorms and weights, and folds alike a second time.
    assert len(_batch_norms(model)) == 3
    np.testing.assert_array_equal(model(images, training=False), expected)
    assert fold_batch_norms(model)[1] == 3


def test_a_nested_backbone_is_folded_and_the_other_layers_are_shared():
    inner_inputs = keras.Input((9, 9, 3))
    backbone = keras.Model(inner_inputs, _block(inner_inputs), name="backbone")
    inputs = keras.Input((9, 9, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    dense = keras.layers.Dense(2)
    model = _randomise_statistics(keras.Model(inputs, dense(pooled)))
    folded, count = fold_batch_norms(model)
    assert count == 3
    assert dense in folded.layers  # shared, not copied
    np.testing.assert_allclose(folded(_inputs(), training=False), model(_inputs(), training=False),
                               rtol=1e-5, atol=1e-5)


def test_a_compiled_model_folds_into_an_uncompiled_copy():
    # A trained model is compiled; its inference copy needs no optimizer or loss, and Keras could not
    # always rebuild them (a model trained by fine_tune failed to clone with its compile config).
    inputs = keras.Input((9, 9, 3))
    model = _randomise_statistics(keras.Model(inputs, _block(inputs)))
    model.compile(optimizer="adam", loss="mse")
    folded, count = fold_batch_norms(model)
    assert count == 3 and model.compiled and not folded.compiled
    np.testing.assert_allclose(folded(_inputs(), training=False), model(_inputs(), training=False),
                               rtol=1e-5, atol=1e-5)


def test_a_real_backbone_folds_within_float_rounding():
    model = tfxfer.build_image_classifier("mobilenet_v2", 3, weights=None, image_size=(32, 32), alpha=0.35,
                                          seed=0)
    _randomise_statistics(model.get_layer("backbone"))
    folded, count = fold_batch_norms(model)
    assert count == len(_batch_norms(model)) == 52  # every MobileNetV2 BatchNorm follows a convolution
    images = np.random.default_rng(0).uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(folded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


@pytest.mark.parametrize("shape, convolutions", [
    ((12, 3), [keras.layers.Conv1D, keras.layers.DepthwiseConv1D]),
    ((5, 5, 5, 3), [keras.layers.Conv3D]),
])
def test_one_and_three_dimensional_convolutions_fold_too(shape, convolutions):
    inputs = keras.Input(shape)
    x = inputs
    for convolution in convolutions:
        layer = convolution(3) if convolution is keras.layers.DepthwiseConv1D else convolution(4, 3)
        x = keras.layers.BatchNormalization()(layer(x))
    model = _randomise_statistics(keras.Model(inputs, x))
    folded, count = fold_batch_norms(model)
    assert count == len(convolutions)
    data = _inputs((2, *shape))
    np.testing.assert_allclose(folded(data, training=False), model(data, training=False), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["activation", "two_consumers", "after_dense", "other_axis"])
def test_a_batch_norm_that_is_not_an_affine_map_of_a_convolutions_channels_stays(case):
    inputs = keras.Input((9, 9, 3))
    if case == "activation":  # the BatchNorm normalises the ReLU's output, not the convolution's
        x = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    elif case == "two_consumers":  # the convolution's unnormalised output is used too
        convolved = keras.layers.Conv2D(4, 3)(inputs)
        x = keras.layers.Add()([keras.layers.BatchNormalization()(convolved), convolved])
    elif case == "after_dense":
        x = keras.layers.BatchNormalization()(keras.layers.Dense(4)(inputs))
    else:  # normalising rows, not channels
        x = keras.layers.BatchNormalization(axis=1)(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, x)
    folded, count = fold_batch_norms(model)
    assert (folded, count) == (model, 0)


def test_models_without_graphs_are_returned_unchanged():
    sequential = keras.Sequential([keras.Input((9, 9, 3)), keras.layers.Conv2D(4, 3),
                                   keras.layers.BatchNormalization()])
    assert fold_batch_norms(sequential) == (sequential, 0)
