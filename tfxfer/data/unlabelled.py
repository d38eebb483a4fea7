"""Examples without labels, for a teacher to label (`tfxfer.distill(unlabelled_data=...)`).

`load_unlabelled_images`: every image file under a folder, decoded once and
resized and cached as the loaders decode and cache the training images (in
memory within a budget, in a spill folder beyond it). `load_unlabelled_texts`:
a text file, one text per line. Both give batches of inputs only, the same every
pass (distillation finds each example's teacher probabilities again by its
inputs). An image that cannot be decoded is skipped, counted and logged, as the
loaders skip them.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import image_cache, image_folders, layout, loader_args, text_files
from tfxfer.data.constants import IMAGE_EXTENSIONS, MAX_TEXT_CHARS
from tfxfer.errors import ConfigError, MissingFileError


def load_unlabelled_images(folder: str | os.PathLike, *, image_size: tuple[int, int], batch_size: int = 32,
                           cache_memory_mb: int = image_cache.DEFAULT_CACHE_MEMORY_MB,
                           spill_dir: str | os.PathLike | None = None) -> tf.data.Dataset:
    """Batches of float32 `(N, height, width, 3)` images of every image file under `folder` (any depth).

    Every file is decoded once, here: the pass that finds the undecodable files
    fills the cache every later pass reads (uint8, in memory up to
    `cache_memory_mb`, else in files in a new folder inside `spill_dir`,
    removed at exit; as `tfxfer.load_image_folders`).

    Raises:
        MissingFileError: `folder` is not a folder.
        ConfigError: it holds no image files, or none that decodes; or an
            argument cannot work.

    Example:

    ```python
    unlabelled = tfxfer.load_unlabelled_images("photos/unsorted", image_size=(224, 224))
    tfxfer.distill(teacher, student, data.train, data.validation, unlabelled_data=unlabelled)
    ```
    """
    loader_args.check_loader_args(batch_size=batch_size, validation_split=None, image_size=image_size,
                                  cache_memory_mb=cache_memory_mb, spill_dir=spill_dir)
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

    image_size = tuple(image_size)
    plan = image_cache.plan_cache(True, cache_memory_mb=cache_memory_mb, spill_dir=spill_dir,
                                  num_examples=len(paths), image_size=image_size)
    # The decoder carries a label per file; unlabelled files all carry 0, dropped below.
    decoded = image_folders.decode_once(image_folders.Files(paths, [0] * len(paths)), image_size, plan,
                                        listed_in=None)
    if not decoded.decodable.any():
        raise ConfigError(f"None of the {len(paths)} image files under {folder!r} decodes (the warning above gives "
                          "the reasons); pass a folder of JPEG, PNG, GIF, BMP or WebP images.")
    logging.info("Unlabelled images: %d under %s.", int(decoded.decodable.sum()), folder)
    return (decoded.chunks.unbatch()
            .map(lambda position, image, label: tf.cast(image, tf.float32), num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


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
