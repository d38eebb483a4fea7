"""What every image loader shares: the result type, argument checks and the tf.data tail.

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

from tfxfer.errors import ConfigError

# The shuffle buffer holds decoded float32 images on top of the cache, so its
# default is capped by memory rather than by a number of examples.
_SHUFFLE_BUFFER_BYTES = 256 * 1024 * 1024


@dataclasses.dataclass
class ImageDatasets:
    """Batched training and validation data for an image classifier.

    Attributes:
        train: tf.data.Dataset. Batches of `(images, labels)`: float32 images
            `(B, H, W, 3)` in [0, 255] and int32 labels `(B,)`. Cached, reshuffled
            every epoch (seeded) and prefetched; its cardinality is known.
        validation: tf.data.Dataset | None. Batched like `train`, cached and
            prefetched, never shuffled. None when there is no validation data.
        class_names: list[str]. Label `i` means `class_names[i]`.
        train_size: int. Training examples (after dropping undecodable files).
        validation_size: int. Validation examples (0 when `validation` is None).
        skipped_files: list[str]. Files left out because they could not be
            decoded (truncated, corrupt, or not an image despite the extension);
            the log gives the reasons for the first few.
        train_class_counts: list[int]. Training examples per class, in
            `class_names` order (what `class_weight="balanced"` needs).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: list[str]
    train_size: int
    validation_size: int
    skipped_files: list[str]
    train_class_counts: list[int]

    def summary(self) -> dict:
        """JSON-ready facts about the data, for run reports and export metadata."""
        return {
            "class_names": self.class_names,
            "train_size": self.train_size,
            "validation_size": self.validation_size,
            "train_class_counts": self.train_class_counts,
            "skipped_files": self.skipped_files,
        }


def check_loader_args(
    *,
    image_size: tuple[int, int],
    batch_size: int,
    validation_split: float | None,
    cache: bool | str,
    shuffle_buffer: int | None = None,
) -> tuple[int, int]:
    """Validates the arguments both loaders share; returns `image_size` as a tuple.

    image_size: tuple[int, int]. (height, width), both positive.
    batch_size: int. Positive.
    validation_split: float | None. None, or strictly between 0 and 1.
    cache: bool | str. True, False, or a non-empty cache file path prefix.
    shuffle_buffer: int | None. None, or a positive number of examples.
    """
    if (
        not isinstance(image_size, Sequence)
        or len(image_size) != 2
        or not all(_is_positive_int(side) for side in image_size)
    ):
        raise ConfigError(
            "`image_size` must be (height, width) with two positive integers. "
            f"Received: image_size={image_size!r}"
        )
    if not _is_positive_int(batch_size):
        raise ConfigError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
        )
    if validation_split is not None and not (
        isinstance(validation_split, (int, float))
        and not isinstance(validation_split, bool)
        and 0.0 < validation_split < 1.0
    ):
        raise ConfigError(
            "`validation_split` must be None or a fraction strictly between 0 and 1, "
            f"e.g. 0.2. Received: validation_split={validation_split!r}"
        )
    if not isinstance(cache, (bool, str)) or cache == "":
        raise ConfigError(
            "`cache` must be True (in memory), False (no cache) or a cache file path "
            f"prefix. Received: cache={cache!r}"
        )
    if shuffle_buffer is not None and not _is_positive_int(shuffle_buffer):
        raise ConfigError(
            "`shuffle_buffer` must be None (automatic) or a positive number of "
            f"examples. Received: shuffle_buffer={shuffle_buffer!r}"
        )
    return int(image_size[0]), int(image_size[1])


def _is_positive_int(value) -> bool:
    # bool is an int subclass; `image_size=(True, 4)` is a bug, not a size.
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


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
