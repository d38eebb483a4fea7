"""`benchmarks/linear_probe.py`: the probe the benchmarks measure against, standardised or not, and their comparison."""

import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import image_pair  # noqa: E402
import linear_probe  # noqa: E402


def _noisy_rows():
    # Noisy classes, so that the L2 penalty shapes the fit.
    labels = np.repeat([0, 1], 20)
    return np.random.default_rng(2).normal(size=(len(labels), 3)) + 0.5 * labels[:, None], labels


def test_the_standardised_probe_does_not_depend_on_the_features_scales_and_the_unscaled_one_does():
    # A feature in units 1,000 times smaller needs a weight 1,000 times larger, which the unscaled
    # regression's penalty all but forbids; the standardised one's sees the same feature.
    rows, labels = _noisy_rows()
    rescaled = rows * [1.0, 0.001, 1.0]
    probabilities = [probe.fit(x, labels).predict_proba(x)[:, 1]
                     for probe in (linear_probe.linear_probe(), linear_probe.linear_probe(standardise=False))
                     for x in (rows, rescaled)]
    np.testing.assert_allclose(probabilities[1], probabilities[0], rtol=1e-4)
    assert np.abs(probabilities[3] - probabilities[2]).max() > 0.05


def test_the_comparison_counts_each_probe_s_right_examples_and_the_splits_between_them():
    # Feature 0 separates the classes; feature 1, a thousand times smaller, carries the same signal again.
    rows, labels = _noisy_rows()
    rows[:, 1] = (labels + 0.1 * rows[:, 1]) * 0.001
    everything = np.arange(len(labels))
    splits = [(everything, everything), (everything[::2], everything[1::2])]
    result = linear_probe.compare_scalings(rows, labels, splits)
    expected = []
    for fit, scored in splits:
        expected.append([int((linear_probe.linear_probe(standardise).fit(rows[fit], labels[fit]).predict(rows[scored])
                              == labels[scored]).sum()) for standardise in (True, False)])
    expected = np.array(expected)
    assert result == {"splits": 2, "scored": 60, "standardised_right": int(expected[:, 0].sum()),
                      "unscaled_right": int(expected[:, 1].sum()),
                      "standardised_ahead": int((expected[:, 0] > expected[:, 1]).sum()),
                      "standardised_behind": int((expected[:, 0] < expected[:, 1]).sum())}
    # The scaled-down feature helps only the standardised probe: it gets every example right on both splits.
    assert result["standardised_right"] == 60 and result["unscaled_right"] < 60


def test_the_photos_are_decoded_and_resized_and_the_backbone_pools_its_last_map(tmp_path):
    image = np.zeros((6, 4, 3), np.uint8)
    image[:, :, 0] = 200  # a red photo, 6 high and 4 wide
    path = str(tmp_path / "photo.png")
    keras.utils.save_img(path, image, scale=False)
    photos = image_pair.photos([path, path], size=8)
    assert photos.shape == (2, 8, 8, 3) and photos.dtype == np.uint8
    np.testing.assert_array_equal(photos[0, :, :, 0], 200)
    np.testing.assert_array_equal(photos[0, :, :, 1:], 0)
    features = image_pair.average_pooled_features(np.zeros((2, 64, 64, 3), np.uint8), weights=None)
    assert features.shape == (2, 1280)  # MobileNetV2-0.35's last map has 1280 channels
