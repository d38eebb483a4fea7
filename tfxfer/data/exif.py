"""The EXIF Orientation of JPEG photos, read and applied with TensorFlow ops.

Phones save the pixels as the sensor saw them and record in the EXIF Orientation
tag (0x0112) how to turn them upright; every photo viewer applies it, but
`tf.io.decode_image` does not. The tag is read with graph ops rather than Pillow
so that the exported serving graph turns a request photo exactly as training
turned the same file.

Only the parts of the format that lead to the tag are parsed: the JPEG segments
before the image data, the APP1 segment starting with "Exif\\0\\0", its TIFF header
(either byte order) and the first image file directory (IFD0). Anything missing,
truncated or malformed gives orientation 1 (leave the pixels as they are).
"""

import tensorflow as tf

ORIENTATION_TAG = 0x0112
# An APP1 segment is at most 64 KB long and the Exif one comes first or after
# APP0, so IFD0 lies within the first 64 KB of a well-formed file.
_SEARCH_BYTES = 65536
# Zeros after the searched bytes: reads past the end of the data see zeros
# (no marker, no tag) instead of failing.
_PADDING = 16
# Segments before Exif in real files: APP0 (JFIF), sometimes APP2 (ICC) chunks.
_MAX_SEGMENTS = 32
# IFD0 of camera files holds 10-20 tags, sorted, with 0x0112 among the first.
_MAX_IFD_ENTRIES = 64
_START_OF_SCAN, _APP1 = 0xDA, 0xE1
_EXIF_HEADER = [ord(c) for c in "Exif"] + [0, 0]
_SHORT, _LONG = 3, 4


def jpeg_orientation(contents: tf.Tensor) -> tf.Tensor:
    """The EXIF Orientation (1-8) of encoded JPEG bytes, as an int32 scalar.

    1 (upright) for other formats, JPEGs without EXIF, and EXIF that is
    malformed or holds no valid orientation.

    contents: tf.Tensor. Scalar tf.string of encoded image bytes.
    """
    data = _padded_bytes(contents)
    tiff = _exif_tiff_start(data)
    orientation = tf.cond(tiff >= 0, lambda: _ifd0_orientation(data, tiff), lambda: tf.constant(1, tf.int64))
    valid = (orientation >= 1) & (orientation <= 8)
    return tf.cast(tf.where(valid, orientation, 1), tf.int32)


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Turns an `(H, W, C)` image upright as its EXIF `orientation` (1-8) says.

    Matches Pillow's `ImageOps.exif_transpose`. Orientations 5 to 8 swap height
    and width.

    image: tf.Tensor. `(H, W, C)` pixels as stored in the file.
    orientation: tf.Tensor. int32 scalar from `jpeg_orientation`.
    """
    branches = [  # Orientation i + 1, as the TIFF specification numbers them.
        lambda: image,
        lambda: tf.image.flip_left_right(image),
        lambda: tf.image.rot90(image, k=2),
        lambda: tf.image.flip_up_down(image),
        lambda: tf.image.transpose(image),
        lambda: tf.image.rot90(image, k=3),  # rot90 turns counter-clockwise; 6 needs 90 degrees clockwise.
        lambda: tf.image.rot90(tf.image.transpose(image), k=2),
        lambda: tf.image.rot90(image, k=1),
    ]
    upright = tf.switch_case(orientation - 1, branches)
    upright.set_shape([None, None, image.shape[-1]])
    return upright


def _padded_bytes(contents: tf.Tensor) -> tf.Tensor:
    """The first `_SEARCH_BYTES` bytes as int64 values, zero-padded to a fixed length."""
    head = tf.strings.substr(contents, 0, _SEARCH_BYTES)
    return tf.cast(tf.io.decode_raw(head, tf.uint8, fixed_length=_SEARCH_BYTES + _PADDING), tf.int64)


def _at(data: tf.Tensor, positions) -> tf.Tensor:
    # Clipped, so offsets read from garbage land in the zero padding, not out of bounds.
    return tf.gather(data, tf.clip_by_value(positions, 0, _SEARCH_BYTES + _PADDING - 1))


def _exif_tiff_start(data: tf.Tensor) -> tf.Tensor:
    """Where the TIFF header inside the Exif APP1 segment starts, or -1."""
    is_jpeg = (data[0] == 0xFF) & (data[1] == 0xD8)
    exif_header = tf.constant(_EXIF_HEADER, tf.int64)

    def keep_going(position, found, step):
        marker = _at(data, position + 1)
        return (
            (found < 0) & (step < _MAX_SEGMENTS) & (position + 10 < _SEARCH_BYTES)
            & (_at(data, position) == 0xFF) & (marker != _START_OF_SCAN)
        )

    def next_segment(position, found, step):
        # A segment is 0xFF, its marker, a big-endian length that counts itself, then its payload.
        length = _at(data, position + 2) * 256 + _at(data, position + 3)
        payload = _at(data, position + 4 + tf.range(len(_EXIF_HEADER), dtype=tf.int64))
        is_exif = (_at(data, position + 1) == _APP1) & tf.reduce_all(tf.equal(payload, exif_header))
        found = tf.where(is_exif, position + 4 + len(_EXIF_HEADER), found)
        return position + 2 + tf.maximum(length, 2), found, step + 1

    start = tf.where(is_jpeg, tf.constant(2, tf.int64), tf.constant(_SEARCH_BYTES, tf.int64))
    _, found, _ = tf.while_loop(
        keep_going, next_segment, (start, tf.constant(-1, tf.int64), tf.constant(0, tf.int64)))
    return found


def _ifd0_orientation(data: tf.Tensor, tiff: tf.Tensor) -> tf.Tensor:
    """The Orientation value in IFD0 of the TIFF structure at `tiff`, or 0 if absent."""
    little_endian = (_at(data, tiff) == ord("I")) & (_at(data, tiff + 1) == ord("I"))
    big_endian = (_at(data, tiff) == ord("M")) & (_at(data, tiff + 1) == ord("M"))

    def unsigned(offsets, size):
        # Offsets are relative to the TIFF header, as all TIFF offsets are.
        offsets = tiff + tf.convert_to_tensor(offsets, tf.int64)
        significance = tf.range(size, dtype=tf.int64)
        order = tf.where(little_endian, significance, size - 1 - significance)
        digits = _at(data, offsets[..., None] + tf.range(size, dtype=tf.int64))
        return tf.reduce_sum(digits * tf.bitwise.left_shift(tf.constant(1, tf.int64), 8 * order), axis=-1)

    ifd = unsigned(4, 4)
    count = unsigned(ifd, 2)
    index = tf.range(_MAX_IFD_ENTRIES, dtype=tf.int64)
    entries = ifd + 2 + 12 * index
    tags, types = unsigned(entries, 2), unsigned(entries + 2, 2)
    # A SHORT value sits in the first two bytes of the 4-byte value field in both byte orders.
    values = tf.where(tf.equal(types, _LONG), unsigned(entries + 8, 4), unsigned(entries + 8, 2))
    matches = (
        (index < count) & (tiff + entries + 12 <= _SEARCH_BYTES)
        & tf.equal(tags, ORIENTATION_TAG) & ((types == _SHORT) | (types == _LONG))
    )
    well_formed = (little_endian | big_endian) & tf.equal(unsigned(2, 2), 42)
    first = tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int64)
    return tf.where(well_formed & tf.reduce_any(matches), tf.gather(values, first), 0)
