"""RandomAffine: rotation, zoom and shift drawn within their ranges and applied in one resampling."""

import keras
import numpy as np
import pytest

import tfxfer


def _draws(layer, batch_size=2000, height=40, width=60):
    """The layer's `(batch_size, 8)` transforms, as (2x2 linear parts, offsets)."""
    transforms = keras.ops.convert_to_numpy(layer._transforms(batch_size, height, width))
    linear = transforms[:, [0, 1, 3, 4]].reshape(-1, 2, 2)
    np.testing.assert_array_equal(transforms[:, 6:], 0)  # affine: no perspective terms
    return linear, transforms[:, [2, 5]]


def test_draws_stay_within_the_ranges_and_cover_them():
    height, width = 40, 60
    linear, offset = _draws(tfxfer.RandomAffine(rotation=0.1, zoom=0.2, translation=0.1, seed=0),
                            height=height, width=width)
    scale = np.sqrt(np.linalg.det(linear))
    angle = np.arctan2(linear[:, 1, 0], linear[:, 0, 0]) / (2 * np.pi)  # in turns
    np.testing.assert_allclose(linear[:, 0, 0], linear[:, 1, 1], rtol=1e-6)  # a rotation times a scale
    np.testing.assert_allclose(linear[:, 0, 1], -linear[:, 1, 0], rtol=1e-6)
    assert 0.8 <= scale.min() < 0.81 and 1.19 < scale.max() <= 1.2
    assert -0.1 <= angle.min() < -0.099 and 0.099 < angle.max() <= 0.1
    # The centre is read from where the shift moved it, up to 10 % of each side away.
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    shift = centre - (np.einsum("bij,j->bi", linear, centre) + offset)
    assert np.abs(shift[:, 0]).max() <= 0.1 * width and np.abs(shift[:, 0]).max() > 0.099 * width
    assert np.abs(shift[:, 1]).max() <= 0.1 * height and np.abs(shift[:, 1]).max() > 0.099 * height


def test_only_zoom_keeps_a_centred_square_centred_and_scales_its_area():
    image = np.zeros((1, 41, 41, 1), "float32")
    image[0, 15:26, 15:26] = 1.0  # an 11x11 square at the centre
    # Two layers with one seed draw alike: the first says which scale the second applies.
    linear, _ = _draws(tfxfer.RandomAffine(zoom=0.2, seed=3), batch_size=1, height=41, width=41)
    layer = tfxfer.RandomAffine(zoom=0.2, seed=3, fill_mode="constant")
    out = keras.ops.convert_to_numpy(layer(image, training=True))[0, :, :, 0]
    scale = np.sqrt(np.linalg.det(linear[0]))
    rows, cols = np.indices(out.shape)
    np.testing.assert_allclose([(rows * out).sum() / out.sum(), (cols * out).sum() / out.sum()], [20, 20], atol=1e-3)
    np.testing.assert_allclose(out.sum(), 121 / scale**2, rtol=0.03)


def test_no_ranges_or_inference_leave_images_unchanged():
    images = np.random.default_rng(0).uniform(0, 255, (3, 16, 24, 3)).astype("float32")
    changing = tfxfer.RandomAffine(rotation=0.1, zoom=0.2, translation=0.1, seed=0)
    np.testing.assert_array_equal(changing(images, training=False), images)
    np.testing.assert_allclose(tfxfer.RandomAffine(seed=0)(images, training=True), images, atol=1e-3)
    assert np.abs(keras.ops.convert_to_numpy(changing(images, training=True)) - images).mean() > 10
    # One image without a batch axis, as in a tf.data map.
    assert changing(images[0], training=True).shape == images[0].shape


def test_same_seed_same_draws_and_config_round_trip():
    images = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    layer = tfxfer.RandomAffine(rotation=0.05, zoom=0.1, translation=0.2, fill_mode="nearest", seed=7)
    again = tfxfer.RandomAffine.from_config(layer.get_config())
    assert (again.rotation, again.zoom, again.translation, again.fill_mode, again.seed) == (0.05, 0.1, 0.2,
                                                                                             "nearest", 7)
    np.testing.assert_array_equal(layer(images, training=True), again(images, training=True))


@pytest.mark.parametrize("argument", ["rotation", "zoom", "translation"])
def test_a_range_outside_0_to_1_is_refused_naming_it(argument):
    with pytest.raises(ValueError, match=f"{argument} is a fraction in \\[0, 1\\). Received: {argument}=1.5"):
        tfxfer.RandomAffine(**{argument: 1.5})


def test_default_augmentation_flips_then_resamples_once():
    augmentation = tfxfer.default_image_augmentation(seed=0)
    assert [type(layer).__name__ for layer in augmentation.layers] == ["RandomFlip", "RandomAffine"]
    affine = augmentation.layers[1]
    assert (affine.rotation, affine.zoom, affine.translation, affine.fill_mode) == (0.1, 0.2, 0.1, "reflect")
    only_flip = tfxfer.default_image_augmentation(rotation=0, zoom=0, translation=0)
    assert [type(layer).__name__ for layer in only_flip.layers] == ["RandomFlip"]
