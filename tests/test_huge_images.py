"""Bad requests: an encoded image that declares an enormous size is rejected before decoding.

A 20000x20000 PNG of zeros is ~1 MB on the wire but would decode to 1.2 GB of
uint8 (4.8 GB as float32) pixels; the serving graph must answer InvalidArgument
instead of allocating that.
"""

import io
import struct
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.data import image_ops

HEIGHT, WIDTH = 16, 24


def _zeros_png(width, height):
    """A valid RGB PNG of zeros, compressed row by row (never held decoded in memory)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width * 3 + 1)  # filter byte + pixels
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge_png():
    return _zeros_png(20000, 20000)


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_huge_png_is_small_on_the_wire_and_declares_400_megapixels(huge_png):
    assert len(huge_png) < 2_000_000
    assert image_ops.image_pixels(tf.constant(huge_png)).numpy() == 400_000_000


@pytest.mark.parametrize("encode", ["png", "jpeg", "gif", "bmp", "png_gray"])
def test_image_pixels_reads_the_header_of_every_format(encode):
    pixels = _pixels((37, 53, 3))
    if encode == "png":
        contents = tf.io.encode_png(pixels).numpy()
    elif encode == "png_gray":
        contents = tf.io.encode_png(pixels[..., :1]).numpy()
    elif encode == "jpeg":
        contents = tf.io.encode_jpeg(pixels).numpy()
    else:
        image = pytest.importorskip("PIL.Image")
        buffer = io.BytesIO()
        image.fromarray(pixels).save(buffer, encode.upper())
        contents = buffer.getvalue()
    assert image_ops.image_pixels(tf.constant(contents)).numpy() == 37 * 53
    assert image_ops.decode_image(tf.constant(contents), max_pixels=37 * 53).shape == (37, 53, 3)


@pytest.mark.parametrize("contents", [b"", b"hi", b"not an image at all, just text"])
def test_image_pixels_of_unknown_bytes_is_minus_one(contents):
    assert image_ops.image_pixels(tf.constant(contents)).numpy() == -1


def test_decode_image_rejects_images_over_max_pixels_before_decoding(huge_png):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Image too large to decode: expected at most 50000000 pixels .*Resize it before"):
        image_ops.decode_image(tf.constant(huge_png), max_pixels=image_ops.MAX_SERVING_PIXELS)
    small = tf.io.encode_png(_pixels((10, 20, 3))).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected at most 199 pixels"):
        tf.function(lambda c: image_ops.decode_and_resize(c, (4, 4), max_pixels=199))(tf.constant(small))
    np.testing.assert_array_equal(image_ops.decode_image(tf.constant(small), max_pixels=200).numpy(),
                                  _pixels((10, 20, 3)).astype(np.float32))


def test_bytes_that_are_not_an_image_still_fail_in_the_decoder():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Unknown image file format"):
        image_ops.decode_image(tf.constant(b"hello"), max_pixels=100)


def test_exported_model_answers_a_huge_image_with_invalid_argument_and_keeps_serving(tmp_path, huge_png):
    inputs = keras.Input((HEIGHT, WIDTH, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs), name="tiny")
    model = tfxfer.build_image_classifier(backbone, num_classes=2, preprocessing="tf", augmentation=False)
    path = tfxfer.export_saved_model(model, tmp_path / "pets", class_names=["cat", "dog"])
    serve = tf.saved_model.load(path).signatures["serving_default"]
    small = tf.io.encode_png(_pixels((HEIGHT, WIDTH, 3))).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Image too large to decode: expected at most 50000000 pixels"):
        serve(image_bytes=tf.constant([small, huge_png]))
    # The same loaded model still answers ordinary requests, like the Keras model.
    outputs = serve(image_bytes=tf.constant([small]))
    expected = model.predict(image_ops.decode_and_resize(tf.constant(small), (HEIGHT, WIDTH))[None], verbose=0)
    np.testing.assert_allclose(outputs["probabilities"].numpy()[:, 1], expected[:, 0], atol=1e-5)
