"""`benchmarks/aspect_ratio.py`: the crop and pad candidates, and that the loaders stretch again afterwards."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfxfer.data import image_ops

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import aspect_ratio  # noqa: E402


def _columns(height, width):
    """uint8 image whose every pixel holds its column's index."""
    return tf.cast(tf.tile(tf.range(width)[None, :, None], (height, 1, 3)), tf.uint8)


def test_center_crop_keeps_the_central_square_of_a_wide_image():
    image = _columns(6, 9)
    cropped = aspect_ratio.center_crop_resize(image, (6, 6)).numpy()
    # The central 6 of 9 columns (1 to 6: the odd column is cut on the right), at their own size.
    np.testing.assert_array_equal(cropped[0, :, 0], [1, 2, 3, 4, 5, 6])
    tall = tf.transpose(image, (1, 0, 2))
    np.testing.assert_array_equal(aspect_ratio.center_crop_resize(tall, (6, 6)).numpy()[:, 0, 0], [1, 2, 3, 4, 5, 6])


def test_pad_keeps_the_whole_image_between_black_bands():
    image = tf.fill((4, 8, 3), tf.constant(200, tf.uint8))
    padded = aspect_ratio.pad_resize(image, (8, 8)).numpy()
    assert padded.shape == (8, 8, 3) and padded.dtype == np.uint8
    np.testing.assert_array_equal(padded[:2], 0)
    np.testing.assert_array_equal(padded[2:6], 200)
    np.testing.assert_array_equal(padded[6:], 0)


@pytest.mark.parametrize("mode", aspect_ratio.MODES)
def test_resizing_swaps_the_loaders_resize_only_within_the_block(mode):
    contents = tf.io.encode_png(_columns(6, 9))
    stretched = image_ops.decode_and_resize_uint8(contents, (6, 6)).numpy()
    with aspect_ratio.resizing(mode):
        inside = image_ops.decode_and_resize_uint8(contents, (6, 6)).numpy()
    assert not np.array_equal(inside, stretched)
    np.testing.assert_array_equal(image_ops.decode_and_resize_uint8(contents, (6, 6)).numpy(), stretched)


def test_resizing_restores_the_loaders_resize_after_an_error():
    with pytest.raises(RuntimeError), aspect_ratio.resizing("pad"):
        raise RuntimeError("the run failed")
    assert image_ops.resize_uint8 is not aspect_ratio.pad_resize
