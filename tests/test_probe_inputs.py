"""`benchmarks/probe_inputs.py`: the pooled head inputs it screens, and how a probe scores a split."""

import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import probe_inputs  # noqa: E402


def test_the_last_map_is_pooled_every_way_and_every_block_averaged():
    # One photo; the last map is 2 x 2 with two channels, its top-left position (1, 0) and the rest (3, 0).
    last = np.array([[[[1.0, 0.0], [3.0, 0.0]], [[3.0, 0.0], [3.0, 0.0]]]])
    earlier = np.arange(8.0).reshape(1, 2, 2, 2)
    block_16 = np.array([[[[1.0, -2.0], [1.0, -2.0]], [[1.0, -2.0], [1.0, -2.0]]]])  # the same at every position
    features = probe_inputs.pooled([earlier, earlier + 1, block_16, last])
    assert list(features) == [*probe_inputs.BLOCKS, "max", "gem", "power_normalised", "pyramid", "bilinear"]
    np.testing.assert_allclose(features[probe_inputs.BLOCKS[0]], [[3.0, 4.0]])
    np.testing.assert_allclose(features[probe_inputs.BLOCKS[1]], [[4.0, 5.0]])
    np.testing.assert_allclose(features["out_relu"], [[2.5, 0.0]])
    np.testing.assert_allclose(features["max"], [[3.0, 0.0]])
    np.testing.assert_allclose(features["gem"], [[20.5 ** (1 / 3), 1e-6]], rtol=1e-6)  # cube root of the cubes' mean
    np.testing.assert_allclose(features["power_normalised"], [[1.0, 0.0]])  # sqrt(2.5), 0 at unit length
    # The whole map's average, then the quadrants': top left, top right, bottom left, bottom right.
    np.testing.assert_allclose(features["pyramid"], [[2.5, 0.0, 1.0, 0.0, 3.0, 0.0, 3.0, 0.0, 3.0, 0.0]])
    # The outer product's upper triangle, (1, -2, 4), signed-square-rooted, (1, -sqrt 2, 2), then at unit length.
    np.testing.assert_allclose(features["bilinear"], [[1.0, -np.sqrt(2.0), 2.0]] / np.sqrt(7.0), rtol=1e-6)


def test_the_backbone_s_blocks_have_mobilenet_v2_0_35_s_widths():
    images = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    features = probe_inputs.pooled_features(images, weights=None)
    # Block 13 expands block 12's 32 channels (96 x 0.35, to a multiple of 8) six times; blocks 15 and 16
    # put out 56 and 112; the last map has 1280, which its poolings keep, the pyramid five times over;
    # block 16's second-order pooling has 112 x 113 / 2 distinct products.
    assert [features[name].shape for name in features] == [(2, 192), (2, 56), (2, 112), (2, 1280), (2, 1280),
                                                           (2, 1280), (2, 1280), (2, 6400), (2, 6328)]


def test_recalibrated_batchnorm_statistics_are_those_of_the_images():
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    keras.utils.set_random_seed(0)
    recalibrated = probe_inputs.recalibrated_features(images, weights=None)
    keras.utils.set_random_seed(0)  # the same random weights
    base = keras.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None, input_shape=(32, 32, 3))
    inputs = images.astype("float32") / 127.5 - 1.0
    # In training mode every BatchNorm layer normalises with the batch's statistics: recalibrated on one
    # batch, the network's inference on that batch gives the same features, within float rounding over its
    # 52 layers (measured 6e-3, against 1.7 from the random weights' own statistics).
    np.testing.assert_allclose(recalibrated, keras.ops.convert_to_numpy(base(inputs, training=True)).mean(axis=(1, 2)),
                               rtol=0, atol=2e-2)
    assert np.abs(recalibrated - base.predict(inputs, verbose=0).mean(axis=(1, 2))).max() > 0.1


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


def test_recalibrated_statistics_are_the_mean_of_the_batches():
    inputs = np.array([[0.0], [2.0], [10.0], [20.0], [30.0]])
    model = keras.Sequential([keras.Input((1,)), keras.layers.BatchNormalization()])
    probe_inputs.recalibrate_batchnorm(model, inputs, batch_size=2)
    layer = model.layers[0]
    # Batches [0, 2], [10, 20], [30]: means 1, 15, 30; variances 1, 25, 0.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), [46.0 / 3], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), [26.0 / 3], rtol=1e-6)


def test_every_classifier_gets_the_separable_rows_right_and_the_swapped_rows_wrong():
    rows, labels = _separable()
    swapped = rows + 5.0 * (1 - 2 * labels[:, None])
    for classifier in probe_inputs.CLASSIFIERS:
        assert probe_inputs.photos_right([rows], rows, labels, seed=0, classifier=classifier) == 8, classifier
        assert probe_inputs.photos_right([rows], swapped, labels, seed=0, classifier=classifier) == 0, classifier


def test_the_five_crops_are_the_centre_then_the_corners_at_80_percent(tmp_path):
    # A 10 x 10 photo whose pixels hold their own row and column, as PNG (lossless): an 8 x 8 crop read at
    # 8 x 8 is not resampled, so each crop's top-left pixel tells where it was cut.
    rows, columns = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
    image = np.stack([rows, columns, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    path = str(tmp_path / "photo.png")
    keras.utils.save_img(path, image, scale=False)
    crops = probe_inputs.crops([path, path], size=8)
    assert [crop.shape for crop in crops] == [(2, 8, 8, 3)] * 5
    assert [tuple(crop[0, 0, 0, :2]) for crop in crops] == [(1, 1), (0, 0), (0, 2), (2, 0), (2, 2)]
    np.testing.assert_array_equal(crops[0][1], image[1:9, 1:9])
