"""`benchmarks/probe_head.py`: the head set to the benchmark's linear probe, its standardisation folded into it."""

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import linear_probe  # noqa: E402
import probe_head  # noqa: E402


def _model(num_classes):
    """Four features in; a frozen 'backbone' (a fixed Dense map) feeds the `predictions` head."""
    inputs = keras.Input((4,))
    features = keras.layers.Dense(6, name="backbone", trainable=False)(inputs)
    outputs = keras.layers.Dense(1 if num_classes == 2 else num_classes, name="predictions",
                                 activation="sigmoid" if num_classes == 2 else "softmax")(features)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_the_head_predicts_what_the_standardised_probe_does(num_classes):
    rng = np.random.default_rng(0)
    inputs = rng.normal(3.0, 2.0, (60, 4)).astype("float32")  # features far from zero mean and unit scale
    labels = np.arange(60) % num_classes
    inputs[:, 0] += 1.5 * labels  # a learnable signal
    data = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(16)
    model = _model(num_classes)
    callback = probe_head.ConvergedProbeHead(data)
    callback.set_model(model)
    callback.on_train_end()

    features, read_labels = probe_head.head_inputs(model, data)
    np.testing.assert_array_equal(read_labels, labels)
    expected = linear_probe.linear_probe(standardise=True).fit(features, labels).predict_proba(features)
    predicted = model.predict(inputs, verbose=0)
    if num_classes == 2:
        predicted = np.concatenate([1 - predicted, predicted], axis=1)
    np.testing.assert_allclose(predicted, expected, atol=1e-5)

    head = model.get_layer("predictions")
    trained = [np.zeros_like(weights) for weights in head.get_weights()]  # as if phase 2 had moved the head
    head.set_weights(trained)
    callback.on_train_end()  # phase 2's end: the head stays as phase 2 left it
    for now, expected_now in zip(head.get_weights(), trained):
        np.testing.assert_array_equal(now, expected_now)
