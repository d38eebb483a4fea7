"""Images cropped or padded to the model's aspect ratio before resizing, for `choose_defaults.py`.

tfxfer's loaders and its serving graph resize every image to the model's input size
as it is (`tfxfer.data.image_ops.resize_uint8`), stretching a 3:2 photo into a square.
The two alternatives here were measured as candidates before building either into the
loaders and the export: `resizing(mode)` swaps them in for the loaders' resize while a
run loads and trains, so training, validation and scored images all go through it.
"""

import contextlib

import tensorflow as tf

from tfxfer.data import image_ops


def center_crop_resize(image: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """The largest central crop of `image` with the aspect ratio of `image_size`, resized to it (as
    `keras.preprocessing.image.smart_resize` and the loaders' `crop_to_aspect_ratio=True` in Keras)."""
    height, width = image_size
    shape = tf.shape(image)
    image_height, image_width = shape[-3], shape[-2]
    crop_height = tf.minimum(image_height, tf.cast(tf.cast(image_width, tf.float64) * height / width, tf.int32))
    crop_width = tf.minimum(image_width, tf.cast(tf.cast(image_height, tf.float64) * width / height, tf.int32))
    top, left = (image_height - crop_height) // 2, (image_width - crop_width) // 2
    return _STRETCH(image[..., top:top + crop_height, left:left + crop_width, :], image_size)


def pad_resize(image: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """`image` resized to fit inside `image_size` with its aspect ratio kept, then padded with black to it."""
    resized = tf.image.resize_with_pad(image, *image_size, method=image_ops.RESIZE_METHOD)
    return tf.saturate_cast(tf.round(resized), tf.uint8)


# tfxfer's own resize, captured at import: the crop stretches its centre with it even while `resizing` has
# swapped the loaders' resize for the crop itself.
_STRETCH = image_ops.resize_uint8
_RESIZES = {"center_crop": center_crop_resize, "pad": pad_resize}
MODES = tuple(_RESIZES)


@contextlib.contextmanager
def resizing(mode: str | None):
    """Within the block, the loaders resize by `mode` (one of `MODES`); None leaves them as they are."""
    if mode is None:
        yield
        return
    previous, image_ops.resize_uint8 = image_ops.resize_uint8, _RESIZES[mode]
    try:
        yield
    finally:
        image_ops.resize_uint8 = previous
