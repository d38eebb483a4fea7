"""What every image loader shares: the result type and the tf.data tail.

`load_image_folders` and `load_tfds_images` differ only in where the examples come
from. From decoded, resized uint8 `(image, label)` pairs on, both go through
`finish_dataset` (cache, shuffle, batch, cast to float32, prefetch), so a model
trained on a folder of JPEGs and one trained on a TFDS dataset see identically
built inputs. Where the cache lives (memory or files) is `tfxfer.data.image_cache`.
"""

import dataclasses
import hashlib
import os
from collections.abc import Sequence

import tensorflow as tf
from absl import logging

from tfxfer.data import datasets

# Share of `cache_memory_mb` the shuffle buffer's image copies may take by
# default; the chunk shuffle buffer of a file cache takes as much again, and the
# rest is left for the model and TensorFlow.
_SHUFFLE_BUFFER_SHARE = 0.25
# Size of a cached chunk of images (`chunk_size`).
_CHUNK_BYTES = 2**20


@dataclasses.dataclass
class ImageDatasets(datasets.Datasets):
    """Batched training and validation data for an image classifier.

    The fields of `tfxfer.data.Datasets`, where `train` holds batches of
    `(images, labels)`: float32 images `(B, H, W, 3)` in [0, 255] and int32
    labels `(B,)`, cached and prefetched; `train_size` counts training examples
    after dropping undecodable files. Multi-task data (`load_image_csv`) has
    `tasks` and dict labels, class names and counts (see `tfxfer.data.Datasets`).
    And:

    Attributes:
        skipped_files: list[str]. Files left out because they could not be
            decoded (truncated, corrupt, or not an image despite the extension);
            the log gives the reasons for the first few.
        decoded_cache: str. Where the decoded uint8 images are cached: "memory",
            "files" (over the `cache_memory_mb` budget, or `cache` was a path)
            or "none" (`cache=False`).
        skipped: dict[str, int] | None. CSV rows left out, by reason
            (`load_image_csv` only; None for other loaders).

    Example:

    ```python
    data = tfxfer.load_image_folders("photos", image_size=(224, 224), validation_split=0.2)
    print(data.class_names, data.train_size, data.validation_size, data.skipped_files)
    model.fit(data.train, validation_data=data.validation)
    ```
    """

    skipped_files: list[str]
    # Where the decoded images are cached: "memory", "files" or "none".
    decoded_cache: str = "memory"
    tasks: dict | None = dataclasses.field(default=None, kw_only=True)
    skipped: dict[str, int] | None = dataclasses.field(default=None, kw_only=True)

    def summary(self) -> dict:
        """JSON-ready facts about the data, for run reports and export metadata."""
        facts = {**super().summary(), "skipped_files": self.skipped_files, "decoded_cache": self.decoded_cache}
        if self.skipped is not None:
            facts["skipped"] = self.skipped
        return facts


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


def default_shuffle_buffer(num_examples: int, image_size: tuple[int, int], *, cache_memory_mb: int) -> int:
    """The shuffle buffer, in examples: the whole training set, or a quarter of `cache_memory_mb` of images.

    The buffer holds copies of uint8 images (unbatched from the cached chunks,
    see `finish_chunks`), so it is capped by the memory budget, and a large
    data set's memory does not grow with it. Chunks are shuffled too, so every
    epoch still draws from the whole data set.

    Args:
        num_examples: int. Training examples.
        image_size: tuple[int, int]. (height, width) of the cached images.
        cache_memory_mb: int. The loader's memory budget for decoded images.

    Example:

    ```python
    default_shuffle_buffer(100_000, (224, 224), cache_memory_mb=1024)  # 1783
    ```
    """
    budget = _SHUFFLE_BUFFER_SHARE * cache_memory_mb * 2**20
    return max(1, min(num_examples, int(budget // uint8_image_bytes(image_size))))


def uint8_image_bytes(image_size: tuple[int, int]) -> int:
    """Bytes of one cached RGB uint8 image of `image_size` (height, width)."""
    return image_size[0] * image_size[1] * 3


def chunk_size(image_size: tuple[int, int]) -> int:
    """Images per cached chunk: about 1 MB, between 8 and 64 images.

    Caching images one by one lets the many small tensors, allocated among the
    decoder's freed buffers, pin the C heap: 120 MB of 64x64 images were
    measured to hold 0.5-1.4 GB of resident memory. Chunks of about 1 MB are
    allocated apart, and the cache then takes its own size plus ~30%.
    """
    return int(min(64, max(8, _CHUNK_BYTES // uint8_image_bytes(image_size))))


def finish_dataset(
    examples: tf.data.Dataset,
    *,
    batch_size: int,
    cache: bool | str,
    shuffle_buffer: int | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Caches (in chunks), optionally shuffles, batches, casts to float32 and prefetches examples.

    examples: tf.data.Dataset. Unbatched `(uint8 image, int32 label)` pairs of
        known cardinality (or `(uint8 image, {task: label})` of multi-task data).
    batch_size: int. Examples per batch; the last batch may be smaller, so no
        example is dropped.
    cache: bool | str. True caches in memory, a str is a cache file path
        (already made split-specific, see `resolve_cache`), False does not cache.
    shuffle_buffer: int | None. Examples in the shuffle buffer (copies); None
        does not shuffle (validation data).
    seed: int. Seed of the per-epoch shuffle.
    """
    num_examples = int(examples.cardinality())
    chunk = chunk_size(tuple(examples.element_spec[0].shape[:2]))
    chunks = examples.batch(chunk)
    if cache is True:
        chunks = chunks.cache()
    elif cache:
        chunks = chunks.cache(cache)
    return finish_chunks(
        chunks, num_examples=num_examples, batch_size=batch_size, shuffle_buffer=shuffle_buffer, seed=seed,
        chunk_buffer=-(-num_examples // chunk) if cache is True else max(1, (shuffle_buffer or 1) // chunk),
    )


def finish_chunks(
    chunks: tf.data.Dataset,
    *,
    num_examples: int,
    batch_size: int,
    shuffle_buffer: int | None,
    seed: int,
    chunk_buffer: int,
    keep=None,
) -> tf.data.Dataset:
    """Shuffles cached chunks, then examples, then batches, casts to float32 and prefetches.

    Shuffling comes after the cache so every epoch draws a new order instead of
    replaying the first epoch's. Two levels keep memory bounded: the chunks'
    order is shuffled over the whole data set (from the in-memory cache the
    buffer holds references, not copies), then examples within a window of
    `shuffle_buffer`. Images stay uint8 (a quarter of float32's memory) until
    whole batches are cast, so float32 copies exist only for the batches in flight.

    chunks: tf.data.Dataset. Batches of `(image, label)`, or of `(position,
        image, label)` when `keep` is given.
    num_examples: int. Examples that come out (after `keep`).
    batch_size: int. Examples per batch; the last batch may be smaller.
    shuffle_buffer: int | None. Examples in the shuffle window; None does not shuffle.
    seed: int. Seed of the per-epoch shuffle.
    chunk_buffer: int. Chunks in the chunk shuffle buffer.
    keep: callable | None. Predicate on an unbatched `(position, image, label)`.
    """
    if shuffle_buffer is not None:
        chunks = chunks.shuffle(chunk_buffer, seed=seed, reshuffle_each_iteration=True)
    examples = chunks.unbatch()
    if keep is not None:
        examples = examples.filter(keep).map(lambda position, image, label: (image, label))
    examples = examples.apply(tf.data.experimental.assert_cardinality(num_examples))
    if shuffle_buffer is not None:
        examples = examples.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    return (
        examples.batch(batch_size)
        .map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def _to_float(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32), labels


def log_summary(datasets: ImageDatasets, *, source: str, batch_size: int) -> None:
    """Logs what was loaded, so a training log records which data it used."""
    if datasets.tasks:
        logging.info(
            "Loaded %s: tasks %s, classes %s; train %d examples (labelled per class %s), validation %s; "
            "batch size %d; skipped %s.", source, list(datasets.tasks), datasets.class_names, datasets.train_size,
            datasets.train_class_counts,
            f"{datasets.validation_size} examples" if datasets.validation is not None else "none",
            batch_size, datasets.skipped)
        return
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
