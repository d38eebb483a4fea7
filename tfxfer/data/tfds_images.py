"""Image classification data from a TensorFlow Datasets (TFDS) builder.

The examples go through the same decode, resize and cache/shuffle/batch/prefetch
tail as image folders (`tfxfer.data.pipeline`), so switching between a TFDS
dataset and a folder of JPEGs changes where the pixels come from, nothing else.
TFDS keeps the bytes of the source files, so its images are decoded here by
`tfxfer.data.image_ops` rather than by TFDS: grayscale, alpha, 16-bit and EXIF
orientation come out as the exported serving graph will treat them.
"""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from tfxfer.data import image_ops
from tfxfer.data import pipeline, tfds_builders
from tfxfer.errors import ConfigError

# Used when the builder has neither a validation nor a test split.
DEFAULT_VALIDATION_SPLIT = 0.1
# Labels are counted in large batches; they are scalars, so this is cheap.
_LABEL_COUNT_BATCH = 8192


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
) -> pipeline.ImageDatasets:
    """Loads a TFDS image classification dataset into batched `tf.data` pipelines.

    Validation data is, in order of preference: part of `train` when
    `validation_split` is given; else the builder's `validation` split; else its
    `test` split (with a warning, since that leaves no untouched test data); else
    `DEFAULT_VALIDATION_SPLIT` of `train`. The held-out part of `train` is a
    contiguous window of examples whose start is drawn from `seed` (TFDS
    already stored `train` in shuffled order), so it is deterministic per seed.

    `train_class_counts` comes from one pass over the training labels at load
    time, with image decoding skipped: it reads the records once but decodes none.

    Args:
        name: str. TFDS name, optionally with config and version, e.g.
            "tf_flowers" or "imagenette/160px:1.0.0".
        image_size: tuple[int, int]. (height, width) every image is resized to.
        batch_size: int. Examples per batch.
        data_dir: str | None. TFDS data folder; None uses the TFDS default
            (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`).
        validation_split: float | None. Fraction of `train` to hold out for
            validation instead of using the builder's validation/test split.
        seed: int. Seeds the held-out window and the per-epoch shuffle.
        cache: bool | str. True caches resized images in memory, a str caches them
            in files with that path prefix, False does not cache.
        download: bool. Whether to download and prepare the dataset when it is
            not already prepared in `data_dir`.

    Returns:
        A `tfxfer.data.ImageDatasets` (its `skipped_files` is always empty).

    Example:

    ```python
    data = load_tfds_images("tf_flowers", image_size=(224, 224), batch_size=32)
    model.fit(data.train, validation_data=data.validation, epochs=5)
    ```
    """
    image_size = pipeline.check_loader_args(
        image_size=image_size,
        batch_size=batch_size,
        validation_split=validation_split,
        cache=cache,
    )
    builder = tfds_builders.prepared_builder(
        name, data_dir, download, alternative="use load_image_folders with a folder of class sub-folders of images")
    image_key, label_key = _supervised_keys(name, builder.info)
    to_model_input = _model_input_fn(name, builder.info.features[image_key], image_size)
    train_spec, validation_spec = _choose_splits(
        name, builder.info.splits, validation_split, seed
    )
    (train_raw, validation_raw), info = tfds.load(
        name,
        split=[train_spec, validation_spec],
        data_dir=data_dir,
        as_supervised=True,
        with_info=True,
        download=download,
        decoders={image_key: tfds.decode.SkipDecoding()},  # Encoded bytes, for image_ops.
    )
    class_names = list(info.features[label_key].names)
    counts = _count_labels(name, train_spec, data_dir, image_key, len(class_names))

    batching = dict(batch_size=batch_size, seed=seed)
    fingerprint = [info.full_name, f"{image_size}"]
    train = pipeline.finish_dataset(
        train_raw.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE),
        cache=pipeline.resolve_cache(cache, "train", fingerprint + [train_spec]),
        shuffle_buffer=pipeline.default_shuffle_buffer(int(counts.sum()), image_size),
        **batching,
    )
    validation = pipeline.finish_dataset(
        validation_raw.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE),
        cache=pipeline.resolve_cache(cache, "validation", fingerprint + [validation_spec]),
        shuffle_buffer=None,
        **batching,
    )
    datasets = pipeline.ImageDatasets(
        train=train,
        validation=validation,
        class_names=class_names,
        train_size=int(counts.sum()),
        validation_size=_num_examples(validation_raw, info, validation_spec),
        skipped_files=[],
        train_class_counts=counts.tolist(),
    )
    pipeline.log_summary(
        datasets,
        source=f"TFDS {name!r} (train={train_spec!r}, validation={validation_spec!r})",
        batch_size=batch_size,
    )
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


def _choose_splits(
    name: str, splits, validation_split: float | None, seed: int
) -> tuple[str, str]:
    """Returns TFDS split strings (train, validation)."""
    if "train" not in splits:
        raise ConfigError(
            f"TFDS dataset {name!r} has no 'train' split to train on. "
            f"Received splits: {sorted(splits)}"
        )
    if validation_split is None:
        if "validation" in splits:
            return "train", "validation"
        if "test" in splits:
            logging.warning(
                "TFDS dataset %r has no validation split; validating on its test "
                "split, which then no longer gives an unbiased final score. Pass "
                "validation_split to hold out part of train instead.",
                name,
            )
            return "train", "test"
        validation_split = DEFAULT_VALIDATION_SPLIT
    return _slice_train(name, splits["train"].num_examples, validation_split, seed)


def _slice_train(
    name: str, num_examples: int, validation_split: float, seed: int
) -> tuple[str, str]:
    """Holds out a seeded, contiguous (wrapping) window of `train` for validation.

    Example counts rather than percents: percent slices must be whole numbers,
    and counts let the window start anywhere.
    """
    if num_examples < 2:
        raise ConfigError(
            f"TFDS dataset {name!r} has {num_examples} training examples; at least 2 "
            "are needed to hold some out for validation. Pick a dataset with more "
            f"training examples. Received: {num_examples} in split 'train'"
        )
    n_validation = min(max(int(num_examples * validation_split + 0.5), 1), num_examples - 1)
    start = int(np.random.default_rng(seed).integers(num_examples))
    end = start + n_validation
    if end > num_examples:  # The window wraps around the end of train.
        end -= num_examples
        return f"train[{end}:{start}]", f"train[{start}:]+train[:{end}]"
    train_parts = []
    if start > 0:
        train_parts.append(f"train[:{start}]")
    if end < num_examples:
        train_parts.append(f"train[{end}:]")
    return "+".join(train_parts), f"train[{start}:{end}]"


def _count_labels(
    name: str, split: str, data_dir: str | None, image_key: str, num_classes: int
) -> np.ndarray:
    """Counts examples per class in `split`, reading records without decoding images."""
    examples = tfds.load(
        name,
        split=split,
        data_dir=data_dir,
        as_supervised=True,
        download=False,
        decoders={image_key: tfds.decode.SkipDecoding()},
    )
    labels = examples.map(lambda _, label: label).batch(_LABEL_COUNT_BATCH)
    counts = np.zeros(num_classes, dtype=np.int64)
    for batch in labels.as_numpy_iterator():
        counts += np.bincount(batch, minlength=num_classes)
    return counts


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
        return image_ops.decode_and_resize(contents, image_size), tf.cast(label, tf.int32)

    return to_model_input


def _num_examples(
    examples: tf.data.Dataset, info: tfds.core.DatasetInfo, split: str
) -> int:
    cardinality = int(examples.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(info.splits[split].num_examples)
