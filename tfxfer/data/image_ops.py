"""Image decoding and resizing shared by the input pipelines and the serving graph.

Training data and serving requests must reach the model through exactly the same
ops, otherwise the exported model sees slightly different pixels than it was
trained on. Both `tfxfer.data` and `tfxfer.export` call these functions.
"""

import tensorflow as tf

from tfxfer.data import exif

# Bilinear without antialiasing is what `keras.utils.image_dataset_from_directory`
# does, so models trained elsewhere on Keras loaders see the same pixels here.
RESIZE_METHOD = "bilinear"


# Serving rejects images larger than this before decoding them. A 20000x20000 PNG
# of zeros is about 1 MB on the wire but decodes to 1.2 GB of uint8 and 4.8 GB of
# float32 pixels: enough to OOM a TF Serving process. 50 megapixels (e.g.
# 8660x5773) covers photos from current phone and DSLR cameras.
MAX_SERVING_PIXELS = 50_000_000

# Header fields are read as unsigned integers, so a PNG may declare sides up to
# 2**32 - 1, whose product passes 2**63 and wraps int64 to a negative count that
# any pixel cap lets through. No format decoded here allows a longer side than
# 2**31 - 1 (PNG's own limit, and BMP's signed 32-bit fields; JPEG and GIF stop
# at 65535, WebP at 2**24), so two allowed sides multiply to less than 2**62,
# and a longer side counts as IMPOSSIBLE_PIXELS: more than any cap.
MAX_SIDE = 2 ** 31 - 1
IMPOSSIBLE_PIXELS = 2 ** 63 - 1


def _header_bytes(contents: tf.Tensor, length: int) -> tf.Tensor:
    """The first `length` bytes as int64 values.

    Zero-padded, so that short inputs still parse (to nonsense, caught by the decoder).
    """
    header = tf.io.decode_raw(tf.strings.substr(contents, 0, length), tf.uint8, fixed_length=length)
    return tf.cast(header, tf.int64)


def _starts_with(b: tf.Tensor, prefix: bytes, at: int = 0) -> tf.Tensor:
    return tf.reduce_all(tf.equal(b[at:at + len(prefix)], tf.constant(list(prefix), tf.int64)))


def _area(width: tf.Tensor, height: tf.Tensor) -> tf.Tensor:
    impossible = (width > MAX_SIDE) | (height > MAX_SIDE)
    # Clamped before multiplying, so that not even the discarded product overflows.
    area = tf.minimum(width, MAX_SIDE) * tf.minimum(height, MAX_SIDE)
    return tf.where(impossible, tf.constant(IMPOSSIBLE_PIXELS, tf.int64), area)


def image_pixels(contents: tf.Tensor) -> tf.Tensor:
    """Width x height an encoded image declares in its header, as an int64 scalar, without decoding it.

    Reads the JPEG frame header (`tf.image.extract_jpeg_shape`), or the PNG
    IHDR, GIF logical screen, BMP info header or WebP (VP8, VP8L, VP8X) frame
    header fields. A side longer than `MAX_SIDE` (2**31 - 1), which no format
    allows, gives `IMPOSSIBLE_PIXELS` (2**63 - 1): never a product that wraps
    around. Bytes in none of these formats give -1 (decoding them fails later
    with its own error; JPEG XL is refused by `check_image_size`).

    contents: tf.Tensor. Scalar tf.string of encoded image bytes.
    """
    b = _header_bytes(contents, 32)

    def big_endian(start, count):
        return sum(b[start + i] * (256 ** (count - 1 - i)) for i in range(count))

    def little_endian(start, count):
        return sum(b[start + i] * (256 ** i) for i in range(count))

    def bmp_pixels():
        height = little_endian(22, 4)
        height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)  # Negative height: a top-down BMP.
        return _area(little_endian(18, 4), height)

    def jpeg_pixels():
        shape = tf.cast(tf.image.extract_jpeg_shape(contents), tf.int64)
        return _area(shape[1], shape[0])

    def webp_lossless_pixels():
        # 14 bits of width - 1, then 14 bits of height - 1, after the 0x2F signature byte.
        bits = little_endian(21, 4)
        return _area(bits % 2 ** 14 + 1, bits // 2 ** 14 % 2 ** 14 + 1)

    is_webp = _starts_with(b, b"RIFF") & _starts_with(b, b"WEBP", at=8)
    return tf.case([
        (_starts_with(b, b"\xff\xd8\xff"), jpeg_pixels),
        (_starts_with(b, b"\x89PNG"), lambda: _area(big_endian(16, 4), big_endian(20, 4))),
        (_starts_with(b, b"GIF8"), lambda: _area(little_endian(6, 2), little_endian(8, 2))),
        (_starts_with(b, b"BM"), bmp_pixels),
        (is_webp & _starts_with(b, b"VP8 ", at=12),
         lambda: _area(little_endian(26, 2) % 2 ** 14, little_endian(28, 2) % 2 ** 14)),
        (is_webp & _starts_with(b, b"VP8L", at=12), webp_lossless_pixels),
        (is_webp & _starts_with(b, b"VP8X", at=12),
         lambda: _area(little_endian(24, 3) + 1, little_endian(27, 3) + 1)),
    ], default=lambda: tf.constant(-1, tf.int64), exclusive=False)


def _is_jpeg_xl(contents: tf.Tensor) -> tf.Tensor:
    b = _header_bytes(contents, 12)
    return _starts_with(b, b"\xff\x0a") | _starts_with(b, b"\0\0\0\x0cJXL \r\n\x87\n")


def check_image_size(contents: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """An assertion op that fails with `InvalidArgumentError` if the image declares more than `max_pixels` pixels.

    So does a header declaring a side longer than `MAX_SIDE`, with its own
    message. JPEG XL images fail it too: `tf.io.decode_image` decodes them, but
    their size is not read here, so they could bypass the cap.

    contents: tf.Tensor. Scalar tf.string of encoded image bytes.
    max_pixels: int. Largest width x height accepted.
    """
    not_jpeg_xl = tf.debugging.assert_equal(
        _is_jpeg_xl(contents), False,
        message=("JPEG XL images are not accepted here: their size cannot be checked before decoding. "
                 "Send JPEG, PNG, GIF, BMP or WebP instead. Received: JPEG XL bytes"))
    pixels = image_pixels(contents)
    possible = tf.debugging.assert_less(
        pixels, tf.constant(IMPOSSIBLE_PIXELS, tf.int64),
        message=(f"Image header declares an impossible size: its width x height overflows 64 bits or a side is "
                 f"longer than {MAX_SIDE} pixels, more than any image format allows. Expected an image of at "
                 f"most {max_pixels} pixels; send a valid image. Received: a header declaring a side longer "
                 f"than {MAX_SIDE}"))
    with tf.control_dependencies([not_jpeg_xl, possible]):
        return tf.debugging.assert_less_equal(
            pixels, tf.constant(max_pixels, tf.int64),
            message=(f"Image too large to decode: expected at most {max_pixels} pixels (width x height). "
                     "Resize it before sending it. Received: an image declaring this many pixels"))


def _is_16_bit_png(b: tf.Tensor) -> tf.Tensor:
    return _starts_with(b, b"\x89PNG") & tf.equal(b[24], 16)  # IHDR's bit depth.


def _is_webp_with_alpha(b: tf.Tensor) -> tf.Tensor:
    """The alpha flag of a VP8X (extended) or VP8L (lossless) WebP header; VP8 has no alpha."""
    is_webp = _starts_with(b, b"RIFF") & _starts_with(b, b"WEBP", at=8)
    extended_alpha = _starts_with(b, b"VP8X", at=12) & tf.equal(b[20] // 16 % 2, 1)
    lossless_alpha = _starts_with(b, b"VP8L", at=12) & tf.equal(b[24] // 16 % 2, 1)  # Bit 28 after the signature.
    return is_webp & (extended_alpha | lossless_alpha)


def _decode_webp_with_alpha(contents: tf.Tensor) -> tf.Tensor:
    # TensorFlow refuses to drop a WebP's alpha itself (channels=3 fails), and
    # channels=0 corrupts its heap on an animated WebP without alpha: ask for
    # exactly the channels the header declares.
    return tf.io.decode_image(contents, channels=4, expand_animations=False)[..., :3]


def _decode_16_bit_png(contents: tf.Tensor) -> tf.Tensor:
    pixels = tf.io.decode_png(contents, channels=3, dtype=tf.uint16)
    # round(v * 255 / 65535): dividing by 257 exactly undoes the usual 8-to-16-bit
    # expansion v * 257. `tf.io.decode_image` keeps only the high byte (65280
    # becomes 255, not 254) and Pillow's convert("RGB") clips everything above 255.
    return tf.cast(tf.round(tf.cast(pixels, tf.float32) / 257.0), tf.uint8)


def decode_uint8(contents: tf.Tensor, max_pixels: int | None = None) -> tf.Tensor:
    """`decode_image` before the cast to float32: uint8 `(H, W, 3)` pixels.

    A quarter of the memory of the float32 image: an 8000x8000 photo is 192 MB
    here and 768 MB as float32, so resize these pixels rather than the float ones
    (`tf.image.resize` gives the same float32 result from either).

    Args:
        contents: tf.Tensor. Scalar tf.string of encoded image bytes.
        max_pixels: int | None. As in `decode_image`.
    """
    if max_pixels is not None:
        with tf.control_dependencies([check_image_size(contents, max_pixels)]):
            contents = tf.identity(contents)
    header = _header_bytes(contents, 32)
    image = tf.case([
        (_is_16_bit_png(header), lambda: _decode_16_bit_png(contents)),
        (_is_webp_with_alpha(header), lambda: _decode_webp_with_alpha(contents)),
    ], default=lambda: tf.io.decode_image(contents, channels=3, expand_animations=False), exclusive=False)
    image.set_shape([None, None, 3])
    return exif.apply_orientation(image, exif.jpeg_orientation(contents))


def decode_image(contents: tf.Tensor, max_pixels: int | None = None) -> tf.Tensor:
    """Decodes encoded JPEG/PNG/GIF/BMP/WebP bytes into a float32 `(H, W, 3)` tensor in [0, 255].

    Conversions, the same for training data and serving requests:
    - grayscale becomes RGB (the gray value in all three channels);
    - alpha is dropped, keeping the stored colour of transparent pixels, as
      `keras.utils.image_dataset_from_directory` and Pillow's `convert("RGB")`
      do (compositing on a background would make a model trained here see
      other pixels than one trained with those loaders);
    - CMYK JPEGs become RGB (libjpeg's conversion, within 1 of Pillow's);
    - 16-bit PNGs are scaled to [0, 255] (`round(v * 255 / 65535)`);
    - an animated GIF gives its first frame;
    - a JPEG's EXIF Orientation (1-8) is applied, as photo viewers and
      Pillow's `ImageOps.exif_transpose` do (see `tfxfer.data.exif`).
    Bytes that are not an image, or a truncated or corrupt one, raise
    `tf.errors.InvalidArgumentError`.

    Args:
        contents: tf.Tensor. Scalar tf.string of encoded image bytes.
        max_pixels: int | None. If set, an image whose header declares more
            pixels raises `tf.errors.InvalidArgumentError` before any pixel is
            decoded (serving uses `MAX_SERVING_PIXELS`; training data has no
            cap). JPEG XL, whose size is not read from its header, then raises too.
    """
    return tf.cast(decode_uint8(contents, max_pixels), tf.float32)


def resize_image(image: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """Resizes an `(H, W, 3)` or `(N, H, W, 3)` image of pixels in [0, 255] to `image_size` (height, width).

    Returns float32 pixels rounded to whole grey levels: `resize_uint8` cast to
    float32, so resizing here gives exactly the pixels the loaders cache.

    Args:
        image: tf.Tensor. uint8 or float pixels in [0, 255].
        image_size: tuple[int, int]. (height, width).
    """
    return tf.cast(resize_uint8(image, image_size), tf.float32)


def resize_uint8(image: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """Resizes like `resize_image`, returning the rounded uint8 pixels.

    Bilinear resizing gives non-integer values. Rounding them (half to even)
    lets the data loaders cache uint8 images, a quarter of the memory of
    float32 ones, and moves each pixel by at most 0.5 grey levels from what
    `keras.utils.image_dataset_from_directory` gives. Training and serving both
    round here (`decode_and_resize_uint8`), so their pixels stay exactly equal.

    Args:
        image: tf.Tensor. uint8 or float pixels in [0, 255].
        image_size: tuple[int, int]. (height, width).
    """
    resized = tf.image.resize(image, image_size, method=RESIZE_METHOD)
    # Saturating: a float input slightly outside [0, 255] must not wrap around.
    return tf.saturate_cast(tf.round(resized), tf.uint8)


def decode_and_resize_uint8(
    contents: tf.Tensor, image_size: tuple[int, int], max_pixels: int | None = None
) -> tf.Tensor:
    """Encoded bytes to the uint8 `(height, width, 3)` image the loaders cache.

    The one function that decodes, resizes and rounds pixels for both the data
    loaders (`tfxfer.data`) and the exported serving graph (through
    `decode_and_resize`), so a model is served exactly the pixels it was
    trained on. Rounding is explained in `resize_uint8`.

    Args:
        contents: tf.Tensor. Scalar tf.string of encoded image bytes.
        image_size: tuple[int, int]. (height, width) of the result.
        max_pixels: int | None. As in `decode_image`.
    """
    return resize_uint8(decode_uint8(contents, max_pixels), image_size)


def decode_and_resize(contents: tf.Tensor, image_size: tuple[int, int], max_pixels: int | None = None) -> tf.Tensor:
    """`decode_and_resize_uint8` as float32 in [0, 255]: encoded bytes to a model-ready image."""
    return tf.cast(decode_and_resize_uint8(contents, image_size, max_pixels), tf.float32)
