"""Image classification data from a TensorFlow Datasets (TFDS) builder.

The examples go through the same decode, resize and cache/shuffle/batch/prefetch
tail as image folders (`tfxfer.data.pipeline`), so switching between a TFDS
dataset and a folder of JPEGs changes where the pixels come from, nothing else.
TFDS keeps the bytes of the source files, so its images are decoded here by
`tfxfer.data.image_ops` rather than by TFDS: grayscale, alpha, 16-bit and EXIF
orientation come out as the exported serving graph will treat them.
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfxfer.data import exact_copies, image_cache, image_ops, pipeline, splits, tfds_builders
from tfxfer.data.constants import DEFAULT_VALIDATION_SPLIT
from tfxfer.data.loader_args import check_loader_args
from tfxfer.errors import ConfigError

# Labels are read in large batches; they are scalars, so this is cheap.
_LABEL_READ_BATCH = 8192


def load_tfds_images(
    name: str,
    *,
    image_size: tuple[int, int],
    batch_size: int = 32,
    data_dir: str | None = None,
    validation_split: float | None = None,
    seed: int = 0,
    cache: bool | str = True,
    download: bool = True,
    cache_memory_mb: int = image_cache.DEFAULT_CACHE_MEMORY_MB,
    spill_dir: str | os.PathLike | None = None,
) -> pipeline.ImageDatasets:
    """Loads a TFDS image classification dataset into batched `tf.data` pipelines.

    Validation data is, in order of preference: part of `train` when
    `validation_split` is one; else the builder's `validation` split; else its
    `test` split (with a warning, since that leaves no untouched test data); else
    `DEFAULT_VALIDATION_SPLIT` of `train`, or none with `validation_split=0`
    (all of `train` is trained on, as `load_image_folders` does without
    `validation_split`). The held-out part of `train` is a seeded share of each
    class, as for image folders (`tfxfer.data.splits`).

    The training labels are read in one pass at load time, with image decoding
    skipped (it reads the records once but decodes none): they give
    `train_class_counts` and the per-class split. The same pass fingerprints
    each encoded image: exact copies are counted (`exact_copies`) and logged,
    and the held-out part of `train` keeps them on one side
    (`tfxfer.data.exact_copies`). The builder's validation (or test) split, when
    used, is fingerprinted in a pass of its own, and its copies of training
    images are counted and warned of.

    Args:
        name: str. TFDS name, optionally with config and version, e.g.
            "tf_flowers" or "imagenette/160px:1.0.0".
        image_size: tuple[int, int]. (height, width) every image is resized to.
        batch_size: int. Examples per batch.
        data_dir: str | None. TFDS data folder; None uses the TFDS default
            (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`).
        validation_split: float | None. Fraction of `train` to hold out for
            validation instead of using the builder's validation/test split;
            0 holds out none (no validation data when the builder has no
            labelled validation/test split); None holds out
            `DEFAULT_VALIDATION_SPLIT` only then.
        seed: int. Seeds the held-out share and the per-epoch shuffle.
        cache: bool | str. True caches the resized uint8 images in memory when
            they fit in `cache_memory_mb`, else in files in a new folder inside
            `spill_dir` (removed at process exit); a str caches them in files with
            that path prefix; False decodes every epoch. The cache fills in the
            first epoch (each image is decoded once) and is read after that.
        download: bool. Whether to download and prepare the dataset when it is
            not already prepared in `data_dir`.
        cache_memory_mb: int. Most MB the decoded training and validation images
            may take in memory, as in `load_image_folders` (default 1024).
        spill_dir: str | os.PathLike | None. Where the spill folder is made, as in
            `load_image_folders`; None uses the system's temporary folder.

    Returns:
        A `tfxfer.data.ImageDatasets` (its `skipped_files` is always empty; its
        `validation` None when there is no validation data).

    Example:

    ```python
    data = tfxfer.load_tfds_images("tf_flowers", image_size=(224, 224), batch_size=32)
    model.fit(data.train, validation_data=data.validation, epochs=5)
    ```
    """
    check_loader_args(image_size=image_size, batch_size=batch_size, cache=cache, cache_memory_mb=cache_memory_mb,
                      spill_dir=spill_dir,
                      validation_split=None if tfds_builders.holds_out_none(validation_split) else validation_split)
    image_size = (int(image_size[0]), int(image_size[1]))
    builder = tfds_builders.prepared_builder(
        name, data_dir, download, alternative="use load_image_folders with a folder of class sub-folders of images")
    image_key, label_key = _supervised_keys(name, builder.info)
    to_model_input = _model_input_fn(name, builder.info.features[image_key], image_size)
    class_names = list(builder.info.features[label_key].names)

    def read(split):
        # Encoded bytes, for image_ops; in the stored order, so indices are stable.
        return builder.as_dataset(
            split=split, as_supervised=True, shuffle_files=False,
            decoders={image_key: tfds.decode.SkipDecoding()})

    validation_name = tfds_builders.validation_split_name(builder, name, validation_split)
    train_labels, train_keys = _labels_and_fingerprints(read("train"))
    # The builder's own validation split is fingerprinted too (a pass over its records, none decoded).
    validation_keys = None if validation_name is None else _labels_and_fingerprints(read(validation_name))[1]
    copies = exact_copies.report_copies(
        train_keys, train_labels, "train[{}]".format, what="images", source=name, validation_keys=validation_keys,
        validation_names=None if validation_name is None else f"{validation_name}[{{}}]".format)
    validation_split = tfds_builders.held_out_share(validation_split, validation_name)
    if validation_split:
        train_idx, validation_idx = splits.split_per_class(train_labels, validation_split, seed, what="images",
                                                           copies=train_keys)
        train_raw = _take(read("train"), train_idx, len(train_labels))
        validation_raw = _take(read("train"), validation_idx, len(train_labels))
        train_counts = np.bincount(train_labels[train_idx], minlength=len(class_names))
        validation_size = len(validation_idx)
        train_spec = f"train less {validation_split:g} per class (seed {seed})"
        validation_name = f"{validation_split:g} of train per class (seed {seed})"
    else:  # all of train, validated on the builder's split, or on nothing (validation_split=0 without one)
        train_raw = read("train")
        validation_raw = None if validation_name is None else read(validation_name)
        train_counts = np.bincount(train_labels, minlength=len(class_names))
        validation_size = 0 if validation_keys is None else len(validation_keys)
        train_spec = "train"

    plan = image_cache.plan_cache(cache, cache_memory_mb=cache_memory_mb, spill_dir=spill_dir,
                                  num_examples=int(train_counts.sum()) + validation_size, image_size=image_size)
    batching = dict(batch_size=batch_size, seed=seed)
    fingerprint = [builder.info.full_name, f"{image_size} uint8"]
    train = pipeline.finish_dataset(
        train_raw.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE),
        cache=pipeline.resolve_cache(plan.cache, "train", fingerprint + [train_spec]),
        shuffle_buffer=pipeline.default_shuffle_buffer(int(train_counts.sum()), image_size,
                                                       cache_memory_mb=cache_memory_mb),
        **batching,
    )
    validation = None if validation_raw is None else pipeline.finish_dataset(
        validation_raw.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE),
        cache=pipeline.resolve_cache(plan.cache, "validation", fingerprint + [validation_name]),
        shuffle_buffer=None,
        **batching,
    )
    datasets = pipeline.ImageDatasets(
        train=train,
        validation=validation,
        class_names=class_names,
        train_size=int(train_counts.sum()),
        validation_size=validation_size,
        skipped_files=[],
        train_class_counts=train_counts.tolist(),
        decoded_cache=plan.kind,
        exact_copies=copies,
    )
    validation_source = tfds_builders.validation_source(validation_name, validation_split)
    source = f"TFDS {name!r} (train={train_spec!r}, validation={validation_source})"
    if validation is None:
        splits.warn_no_validation(source, missing=tfds_builders.NO_VALIDATION_SPLIT,
                                  example_split=DEFAULT_VALIDATION_SPLIT)
    pipeline.log_summary(datasets, source=source, batch_size=batch_size)
    return datasets


def _supervised_keys(name: str, info: tfds.core.DatasetInfo) -> tuple[str, str]:
    """Returns the (image, label) feature names, checking they are that."""
    keys = info.supervised_keys
    # Keys can also be nested or carry sample weights; only (image, label) fits.
    is_pair = isinstance(keys, (tuple, list)) and len(keys) == 2
    image_key, label_key = keys if is_pair else (None, None)
    if not (
        isinstance(image_key, str)
        and isinstance(label_key, str)
        and isinstance(info.features[image_key], tfds.features.Image)
        and isinstance(info.features[label_key], tfds.features.ClassLabel)
    ):
        raise ConfigError(
            f"TFDS dataset {name!r} is not an image classification dataset: expected "
            "supervised keys (image, label) with an Image and a ClassLabel feature. "
            f"Received: supervised_keys={keys!r}"
        )
    return image_key, label_key


def _labels_and_fingerprints(examples: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """`(labels, fingerprints of the encoded images)` of `(encoded image, label)` examples, in order; none decoded."""
    read = examples.map(lambda image, label: (label, exact_copies.fingerprint(image))).batch(_LABEL_READ_BATCH)
    batches = list(read.as_numpy_iterator())
    if not batches:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (np.concatenate([labels for labels, _ in batches]).astype(np.int64),
            np.concatenate([keys for _, keys in batches]))


def _take(examples: tf.data.Dataset, indices: np.ndarray, total: int) -> tf.data.Dataset:
    """The examples at `indices` (sorted) of `total`, in order, with a known cardinality."""
    keep = np.zeros(total, bool)
    keep[indices] = True
    keep = tf.constant(keep)
    taken = examples.enumerate().filter(lambda index, example: tf.gather(keep, index))
    taken = taken.map(lambda index, example: example)
    return taken.apply(tf.data.experimental.assert_cardinality(len(indices)))


def _model_input_fn(name: str, feature: tfds.features.Image, image_size: tuple[int, int]):
    """Returns a map function from TFDS `(encoded image bytes, label)` to model input.

    name: str. The dataset, for error messages.
    feature: tfds.features.Image. The dataset's image feature.
    image_size: tuple[int, int]. (height, width) of the model input.
    """
    # uint16 images are stored as 16-bit PNGs, which image_ops scales to [0, 255];
    # float32 ones are stored as bit patterns that only TFDS can read back, in no
    # known pixel range.
    if feature.np_dtype not in (np.uint8, np.uint16):
        raise ConfigError(
            f"TFDS dataset {name!r} has images that are not 8- or 16-bit: expected "
            "uint8 or uint16 pixels, which have a known range to scale to [0, 255]. "
            "Export the images as PNG files in class folders and use "
            f"load_image_folders instead. Received: dtype={np.dtype(feature.np_dtype).name}"
        )

    def to_model_input(contents, label):
        # uint8 for the cache; `pipeline.finish_dataset` casts batches to float32.
        return image_ops.decode_and_resize_uint8(contents, image_size), tf.cast(label, tf.int32)

    return to_model_input
