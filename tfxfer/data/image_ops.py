"""Image decoding and resizing shared by the input pipelines and the serving graph.

Training data and serving requests must reach the model through exactly the same
ops, otherwise the exported model sees slightly different pixels than it was
trained on. Both `tfxfer.data` and `tfxfer.export` call these functions.
"""

import tensorflow as tf

# Bilinear without antialiasing is what `keras.utils.image_dataset_from_directory`
# does, so models trained elsewhere on Keras loaders see the same pixels here.
RESIZE_METHOD = "bilinear"


# Serving rejects images larger than this before decoding them. A 20000x20000 PNG
# of zeros is about 1 MB on the wire but decodes to 1.2 GB of uint8 and 4.8 GB of
# float32 pixels: enough to OOM a TF Serving process. 50 megapixels (e.g.
# 8660x5773) covers photos from current phone and DSLR cameras.
MAX_SERVING_PIXELS = 50_000_000


def image_pixels(contents: tf.Tensor) -> tf.Tensor:
    """Width x height an encoded image declares in its header, as an int64 scalar, without decoding it.

    Reads the JPEG frame header (`tf.image.extract_jpeg_shape`), or the PNG
    IHDR, GIF logical screen or BMP info header fields. Bytes in none of these
    formats give -1 (decoding them fails later with its own error).

    contents: tf.Tensor. Scalar tf.string of encoded image bytes.
    """
    # 32 header bytes, zero-padded so that short inputs still parse (to nonsense, caught by the decoder).
    header = tf.strings.substr(tf.strings.join([tf.strings.substr(contents, 0, 32), "\0" * 32]), 0, 32)
    b = tf.cast(tf.io.decode_raw(header, tf.uint8), tf.int64)

    def big_endian(start, count):
        return sum(b[start + i] * (256 ** (count - 1 - i)) for i in range(count))

    def little_endian(start, count):
        return sum(b[start + i] * (256 ** i) for i in range(count))

    def bmp_pixels():
        height = little_endian(22, 4)
        height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)  # Negative height: a top-down BMP.
        return little_endian(18, 4) * height

    def jpeg_pixels():
        shape = tf.cast(tf.image.extract_jpeg_shape(contents), tf.int64)
        return shape[0] * shape[1]

    magic = tf.strings.substr(header, 0, 4)
    return tf.case([
        (tf.equal(tf.strings.substr(header, 0, 3), b"\xff\xd8\xff"), jpeg_pixels),
        (tf.equal(magic, b"\x89PNG"), lambda: big_endian(16, 4) * big_endian(20, 4)),
        (tf.equal(magic, b"GIF8"), lambda: little_endian(6, 2) * little_endian(8, 2)),
        (tf.equal(tf.strings.substr(header, 0, 2), b"BM"), bmp_pixels),
    ], default=lambda: tf.constant(-1, tf.int64), exclusive=False)


def check_image_size(contents: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """An assertion op that fails with `InvalidArgumentError` if the image declares more than `max_pixels` pixels.

    contents: tf.Tensor. Scalar tf.string of encoded image bytes.
    max_pixels: int. Largest width x height accepted.
    """
    return tf.debugging.assert_less_equal(
        image_pixels(contents), tf.constant(max_pixels, tf.int64),
        message=(f"Image too large to decode: expected at most {max_pixels} pixels (width x height). "
                 "Resize it before sending it. Received: an image declaring this many pixels"))


def decode_image(contents: tf.Tensor, max_pixels: int | None = None) -> tf.Tensor:
    """Decodes encoded JPEG/PNG/GIF/BMP bytes into a float32 `(H, W, 3)` tensor in [0, 255].

    Grayscale and RGBA inputs become RGB; an animated GIF gives its first frame.
    Bytes that are not an image raise `tf.errors.InvalidArgumentError`.

    Args:
        contents: tf.Tensor. Scalar tf.string of encoded image bytes.
        max_pixels: int | None. If set, an image whose header declares more
            pixels raises `tf.errors.InvalidArgumentError` before any pixel is
            decoded (serving uses `MAX_SERVING_PIXELS`; training data has no cap).
    """
    if max_pixels is not None:
        with tf.control_dependencies([check_image_size(contents, max_pixels)]):
            contents = tf.identity(contents)
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return tf.cast(image, tf.float32)


def resize_image(image: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """Resizes an `(H, W, 3)` or `(N, H, W, 3)` float image to `image_size` (height, width)."""
    return tf.image.resize(image, image_size, method=RESIZE_METHOD)


def decode_and_resize(contents: tf.Tensor, image_size: tuple[int, int], max_pixels: int | None = None) -> tf.Tensor:
    """`decode_image` (with its optional `max_pixels` cap) then `resize_image`: encoded bytes to a model-ready image."""
    return resize_image(decode_image(contents, max_pixels), image_size)
