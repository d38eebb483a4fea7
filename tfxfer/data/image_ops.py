"""Image decoding and resizing shared by the input pipelines and the serving graph.

Training data and serving requests must reach the model through exactly the same
ops, otherwise the exported model sees slightly different pixels than it was
trained on. Both `tfxfer.data` and `tfxfer.export` call these functions.
"""

import tensorflow as tf

# Bilinear without antialiasing is what `keras.utils.image_dataset_from_directory`
# does, so models trained elsewhere on Keras loaders see the same pixels here.
RESIZE_METHOD = "bilinear"


def decode_image(contents: tf.Tensor) -> tf.Tensor:
    """Decodes encoded JPEG/PNG/GIF/BMP bytes into a float32 `(H, W, 3)` tensor in [0, 255].

    Grayscale and RGBA inputs become RGB; an animated GIF gives its first frame.
    Bytes that are not an image raise `tf.errors.InvalidArgumentError`.
    """
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return tf.cast(image, tf.float32)


def resize_image(image: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """Resizes an `(H, W, 3)` or `(N, H, W, 3)` float image to `image_size` (height, width)."""
    return tf.image.resize(image, image_size, method=RESIZE_METHOD)


def decode_and_resize(contents: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """`decode_image` then `resize_image`: encoded bytes to a model-ready float image."""
    return resize_image(decode_image(contents), image_size)
