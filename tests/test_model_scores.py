"""`benchmarks/model_scores.py`: accuracies along the line from phase 1's weights, flip-averaged, and of runs and
their ensembles."""

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import model_scores  # noqa: E402

# One feature; class 1 where it is positive.
_DATA = tf.data.Dataset.from_tensor_slices((np.array([[1.0], [2.0], [-1.0], [-2.0]]), np.array([1, 1, 0, 0]))).batch(2)


def _sigmoid_unit(weight):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([np.array([[weight]]), np.zeros(1)])
    return model


def test_other_mixings_extrapolate_from_the_run_s_own_and_leave_its_weights_as_they_were():
    # Phase 1 ended at -1 (every example wrong) and phase 2's own weights at +1; the run kept the halfway point, 0.
    model = _sigmoid_unit(0.0)
    phase1 = [np.array([[-1.0]]), np.zeros(1)]
    # 0.25 of the way from -1 to +1 is -0.5 (all wrong); 0.75 is +0.5 and 1 is +1 (all right).
    assert model_scores.other_interpolations(model, phase1, _DATA, run_interpolation=0.5) == {
        "0.25": 0.0, "0.75": 1.0, "1.0": 1.0}
    np.testing.assert_array_equal(model.get_weights()[0], [[0.0]])
    assert model_scores.other_interpolations(model, phase1, _DATA, run_interpolation=0.0) == {}


@pytest.mark.parametrize("mixing, expected", [(0.0, 0.0), (1.0, 1.0)])
def test_interpolated_accuracy_at_the_ends_is_phase_1_s_model_or_the_final_one(mixing, expected):
    model = _sigmoid_unit(1.0)
    assert model_scores.interpolated_accuracy(model, [np.array([[-1.0]]), np.zeros(1)], _DATA,
                                              mixing=mixing) == expected
    np.testing.assert_array_equal(model.get_weights()[0], [[1.0]])


def test_flip_averaging_averages_each_image_s_probabilities_with_its_mirror_image_s():
    # Two images, each the other's mirror image: flip-averaged, both get the same probability, so one is wrong.
    images = np.array([[[[1.0], [0.0]]], [[[0.0], [1.0]]]], dtype="float32")  # class 1: the left pixel is bright
    data = tf.data.Dataset.from_tensor_slices((images, np.array([1, 0]))).batch(2)
    model = keras.Sequential([keras.Input((1, 2, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([np.array([[1.0], [-3.0]]), np.zeros(1)])
    assert model_scores.accuracy(model, data) == 1.0
    assert model_scores.accuracy(model, data, flip_averaged=True) == 0.5


def test_runs_and_ensembles_of_the_first_runs_are_scored_by_their_averaged_probabilities():
    labels = np.array([1, 0, 1, 0])
    runs = [np.array([[0.9], [0.2], [0.4], [0.6]]),   # right on photos 0 and 1
            np.array([[0.8], [0.3], [0.8], [0.1]]),   # right on all four
            np.array([[0.1], [0.9], [0.2], [0.45]])]  # right on photo 3 only
    scores = model_scores.photos_right(runs, labels, [0, 1000, 2000])
    # Averages: the first two runs (0.85, 0.25, 0.6, 0.35) get all four right; all three
    # (0.6, 0.467, 0.467, 0.383) miss photo 2.
    assert scores == {"scored": 4, "member_0": 2, "member_1000": 4, "member_2000": 1,
                      "mean_member": 7 / 3, "ensemble_2": 4, "ensemble_3": 3}


def test_one_run_has_no_ensemble():
    scores = model_scores.photos_right([np.array([[0.7], [0.7]])], np.array([1, 0]), [0])
    assert scores == {"scored": 2, "member_0": 1, "mean_member": 1.0}
