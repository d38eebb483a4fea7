"""`benchmarks/probe_inputs.py`: the pooled head inputs it screens, and how a probe scores a split."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import probe_inputs  # noqa: E402


def test_the_last_map_is_pooled_three_ways_and_every_block_averaged():
    last = np.array([[[[1.0, 0.0]], [[2.0, 0.0]]]])  # one photo, a 2 x 1 map, two channels
    earlier = np.arange(8.0).reshape(1, 2, 2, 2)
    features = probe_inputs.pooled([earlier, earlier + 1, earlier + 2, last])
    assert list(features) == [*probe_inputs.BLOCKS, "max", "gem"]
    np.testing.assert_allclose(features[probe_inputs.BLOCKS[0]], [[3.0, 4.0]])
    np.testing.assert_allclose(features[probe_inputs.BLOCKS[2]], [[5.0, 6.0]])
    np.testing.assert_allclose(features["out_relu"], [[1.5, 0.0]])
    np.testing.assert_allclose(features["max"], [[2.0, 0.0]])
    np.testing.assert_allclose(features["gem"], [[4.5 ** (1 / 3), 1e-6]], rtol=1e-6)  # cube root of the cubes' mean


def test_the_backbone_s_blocks_have_mobilenet_v2_0_35_s_widths():
    images = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    features = probe_inputs.pooled_features(images, weights=None)
    # Block 13 expands block 12's 32 channels (96 x 0.35, to a multiple of 8) six times; blocks 15 and 16
    # put out 56 and 112; the last map has 1280, which all three poolings of it keep.
    assert [features[name].shape for name in features] == [(2, 192), (2, 56), (2, 112), (2, 1280), (2, 1280),
                                                           (2, 1280)]


def _separable(count_per_class=20):
    labels = np.repeat([0, 1], count_per_class)
    rows = np.random.default_rng(1).normal(size=(len(labels), 4)) + 5.0 * labels[:, None]
    return rows, labels


def test_a_probe_on_separable_rows_gets_every_scored_photo_right_and_scores_the_rows_it_is_given():
    rows, labels = _separable()
    # 20 % of 40 photos score: 8.
    assert probe_inputs.photos_right([rows], rows, labels, seed=0) == 8
    assert probe_inputs.photos_right([rows, rows + 0.1], rows, labels, seed=0) == 8  # two copies of each photo
    swapped = rows + 5.0 * (1 - 2 * labels[:, None])  # each photo's rows moved to the other class's side
    assert probe_inputs.photos_right([rows], swapped, labels, seed=0) == 0


def test_with_an_early_stopping_split_the_probe_leaves_out_the_early_stopping_photos():
    rows, labels = _separable()
    fit, early_stopping, _ = probe_inputs.three_way_split.split_indices(labels, 0, early_stopping_split=0.25,
                                                                       scoring_split=probe_inputs.SCORING_SPLIT)
    assert (len(fit), len(early_stopping)) == (24, 8)  # of the 32 photos that do not score
    train_rows = rows.copy()
    train_rows[fit] = 0.0  # only the early-stopping photos tell the classes apart
    assert probe_inputs.photos_right([train_rows], rows, labels, seed=0) == 8
    # On the fit photos alone there is nothing to learn: at best one class's 4 of the 8.
    assert probe_inputs.photos_right([train_rows], rows, labels, seed=0, early_stopping_split=0.25) <= 4
