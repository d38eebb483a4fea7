"""What every image loader shares: the result type and the tf.data tail.

`load_image_folders` and `load_tfds_images` differ only in where the examples come
from. From decoded, resized `(image, label)` pairs on, both go through
`finish_dataset` (cache, shuffle, batch, prefetch), so a model trained on a folder
of JPEGs and one trained on a TFDS dataset see identically built inputs.
"""

import dataclasses
import hashlib
import os
from collections.abc import Sequence

import tensorflow as tf
from absl import logging

from tfxfer.data import datasets

# The shuffle buffer holds decoded float32 images on top of the cache, so its
# default is capped by memory rather than by a number of examples.
_SHUFFLE_BUFFER_BYTES = 256 * 1024 * 1024


@dataclasses.dataclass
class ImageDatasets(datasets.Datasets):
    """Batched training and validation data for an image classifier.

    The fields of `tfxfer.data.Datasets`, where `train` holds batches of
    `(images, labels)`: float32 images `(B, H, W, 3)` in [0, 255] and int32
    labels `(B,)`, cached and prefetched; `train_size` counts training examples
    after dropping undecodable files. And:

    Attributes:
        skipped_files: list[str]. Files left out because they could not be
            decoded (truncated, corrupt, or not an image despite the extension);
            the log gives the reasons for the first few.

    Example:

    ```python
    data = tfxfer.load_image_folders("photos", image_size=(224, 224), validation_split=0.2)
    print(data.class_names, data.train_size, data.validation_size, data.skipped_files)
    model.fit(data.train, validation_data=data.validation)
    ```
    """

    skipped_files: list[str]

    def summary(self) -> dict:
        """JSON-ready facts about the data, for run reports and export metadata."""
        return {**super().summary(), "skipped_files": self.skipped_files}


def resolve_cache(cache: bool | str, split: str, fingerprint: Sequence[str]) -> bool | str:
    """Returns `cache` with a file prefix made specific to one split and its contents.

    A tf.data file cache is replayed blindly, whatever the pipeline upstream now
    says. Naming the file after a fingerprint of what was cached (files, image
    size, ...) makes a changed data set or image size write a fresh cache instead
    of silently training on the old one. The prefix's folder is created.

    cache: bool | str. The user's `cache` argument; booleans pass through.
    split: str. "train" or "validation"; the two splits must not share a file.
    fingerprint: Sequence[str]. Everything that determines the cached tensors.
    """
    if not isinstance(cache, str):
        return cache
    digest = hashlib.sha1("\n".join(fingerprint).encode("utf-8")).hexdigest()[:12]
    parent = os.path.dirname(cache)
    if parent:
        tf.io.gfile.makedirs(parent)
    return f"{cache}_{split}_{digest}"


def default_shuffle_buffer(num_examples: int, image_size: tuple[int, int]) -> int:
    """The whole data set when it is small, else as many images as fit in ~256 MB."""
    bytes_per_image = image_size[0] * image_size[1] * 3 * 4  # float32 RGB.
    return max(1, min(num_examples, _SHUFFLE_BUFFER_BYTES // bytes_per_image))


def finish_dataset(
    examples: tf.data.Dataset,
    *,
    batch_size: int,
    cache: bool | str,
    shuffle_buffer: int | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Caches, optionally shuffles, batches and prefetches `(image, label)` examples.

    Shuffling comes after the cache so every epoch draws a new order from the
    cached examples instead of replaying the first epoch's order.

    examples: tf.data.Dataset. Unbatched `(image, label)` pairs of known cardinality.
    batch_size: int. Examples per batch; the last batch may be smaller, so no
        example is dropped.
    cache: bool | str. True caches in memory, a str is a cache file path
        (already made split-specific, see `resolve_cache`), False does not cache.
    shuffle_buffer: int | None. None does not shuffle (validation data).
    seed: int. Seed of the per-epoch shuffle.
    """
    if cache is True:
        examples = examples.cache()
    elif cache:
        examples = examples.cache(cache)
    if shuffle_buffer is not None:
        examples = examples.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
    return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def log_summary(datasets: ImageDatasets, *, source: str, batch_size: int) -> None:
    """Logs what was loaded, so a training log records which data it used."""
    logging.info(
        "Loaded %s: %d classes %s; train %d examples (per class %s), "
        "validation %s; batch size %d.",
        source,
        len(datasets.class_names),
        datasets.class_names,
        datasets.train_size,
        datasets.train_class_counts,
        f"{datasets.validation_size} examples"
        if datasets.validation is not None
        else "none",
        batch_size,
    )
