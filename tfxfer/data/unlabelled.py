"""Examples without labels, for a teacher to label (`tfxfer.distill(unlabelled_data=...)`).

`load_unlabelled_images`: every image file under a folder, decoded and resized
as the loaders decode the training images. `load_unlabelled_texts`: a text
file, one text per line. Both give batches of inputs only, the same every pass
(distillation finds each example's teacher probabilities again by its inputs).
An image that cannot be decoded is skipped, counted and logged, as the loaders
skip them.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import image_ops, layout, text_files
from tfxfer.data.constants import IMAGE_EXTENSIONS, MAX_TEXT_CHARS
from tfxfer.errors import ConfigError, MissingFileError


def load_unlabelled_images(folder: str | os.PathLike, *, image_size: tuple[int, int],
                           batch_size: int = 32) -> tf.data.Dataset:
    """Batches of float32 `(N, height, width, 3)` images of every image file under `folder` (any depth).

    Raises:
        MissingFileError: `folder` is not a folder.
        ConfigError: it holds no image files.

    Example:

    ```python
    unlabelled = tfxfer.load_unlabelled_images("photos/unsorted", image_size=(224, 224))
    tfxfer.distill(teacher, student, data.train, data.validation, unlabelled_data=unlabelled)
    ```
    """
    folder = os.fspath(folder)
    if not tf.io.gfile.isdir(folder):
        raise MissingFileError(f"The unlabelled images must be a folder of image files. Received: {folder!r}")
    paths = []
    for root, folders, names in tf.io.gfile.walk(folder):
        folders[:] = [name for name in folders if not layout.is_hidden(name)]  # not walked into, as os.walk
        paths += [os.path.join(root, name) for name in names
                  if not layout.is_hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)]
    paths.sort()
    if not paths:
        raise ConfigError(f"Found no image files ({', '.join(IMAGE_EXTENSIONS)}) under {folder!r}; pass a folder "
                          "that holds some.")

    def decode(path):
        return image_ops.decode_and_resize(tf.io.read_file(path), tuple(image_size))

    images = tf.data.Dataset.from_tensor_slices(paths).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    decodable = int(images.ignore_errors().reduce(0, lambda count, _: count + 1))
    if decodable < len(paths):
        logging.warning("Skipped %d of %d unlabelled image files that cannot be decoded as images.",
                        len(paths) - decodable, len(paths))
    logging.info("Unlabelled images: %d under %s.", decodable, folder)
    return images.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_unlabelled_texts(path: str | os.PathLike, *, batch_size: int = 32) -> tf.data.Dataset:
    """Batches of strings `(N,)`: the lines of a UTF-8 text file, blank lines left out.

    Raises:
        MissingFileError: `path` is not a file.
        ConfigError: it holds no text.

    Example:

    ```python
    unlabelled = tfxfer.load_unlabelled_texts("tickets_unlabelled.txt")
    tfxfer.distill(teacher, student, data.train, data.validation, unlabelled_data=unlabelled)
    ```
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise MissingFileError(f"The unlabelled texts must be a text file, one text per line. Received: {path!r}")
    lines = text_files.read_bytes(path).decode("utf-8", errors="replace").splitlines()
    texts = [line.strip()[:MAX_TEXT_CHARS] for line in lines if line.strip()]
    if not texts:
        raise ConfigError(f"{path!r} holds no text; pass a file with one text per line.")
    logging.info("Unlabelled texts: %d lines of %s.", len(texts), path)
    return tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object)).batch(batch_size)
