"""Image classification data from folders of image files, one sub-folder per class.

Two layouts are understood:

    data_dir/train/<class>/*.jpg   and   data_dir/val/<class>/*.jpg  (or validation/)
    data_dir/<class>/*.jpg         split by a seeded, stratified `validation_split`
                                   (`tfxfer.data.splits`)

Files that cannot be decoded are found in one parallel pass before training and
left out, so a corrupt JPEG never ends an epoch halfway and the number of steps
per epoch is known in advance. Hidden files and folders (".DS_Store",
"._photo.jpg", ".ipynb_checkpoints/") are tool clutter, never images or classes.
"""

import dataclasses
import os
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import image_ops, layout, pipeline, splits
from tfxfer.data.constants import IMAGE_EXTENSIONS
from tfxfer.data.loader_args import check_loader_args
from tfxfer.errors import ConfigError, MissingFileError

# How many skipped paths a warning shows; the full list is in `skipped_files`.
_PATHS_IN_WARNING = 5


def load_image_folders(
    data_dir: str | os.PathLike,
    *,
    image_size: tuple[int, int],
    batch_size: int = 32,
    validation_split: float | None = None,
    seed: int = 0,
    cache: bool | str = True,
    shuffle_buffer: int | None = None,
) -> pipeline.ImageDatasets:
    """Loads labelled images from class sub-folders into batched `tf.data` pipelines.

    Class names are the sorted names of the class sub-folders (hidden ones such as
    `.ipynb_checkpoints` are left out). Files are listed recursively under each
    class folder, skipping hidden files and folders; only `IMAGE_EXTENSIONS` (any
    case) count, other files are ignored and counted in the log. Images are decoded
    and resized with `tfxfer.data.image_ops.decode_and_resize`, the same function
    the exported serving graph uses (EXIF orientation, grayscale, alpha, CMYK and
    16-bit PNGs are handled as `image_ops.decode_image` says). Loading decodes
    every image once (in parallel) to find files that cannot be decoded (truncated,
    corrupt, or not an image despite the extension); they are left out, counted
    in the log with their reasons and listed in `skipped_files`.

    Args:
        data_dir: str | os.PathLike. Either holds `train/` plus `val/` (or
            `validation/`) folders of class folders, or the class folders themselves.
            A `train/` folder without a validation folder is treated as the latter.
        image_size: tuple[int, int]. (height, width) every image is resized to.
        batch_size: int. Examples per batch.
        validation_split: float | None. Fraction of each class held out for
            validation when `data_dir` has no validation folder, rounded as
            `tfxfer.data.splits` says. Must be None when it has one. None
            without a validation folder means no validation.
        seed: int. Seeds the train/validation split and the per-epoch shuffle.
        cache: bool | str. True caches decoded images in memory, a str caches them
            in files with that path prefix, False decodes every epoch.
        shuffle_buffer: int | None. Shuffle buffer in examples; None means the
            whole training set, capped at roughly 256 MB of decoded images.

    Returns:
        A `tfxfer.data.ImageDatasets`.

    Raises:
        MissingFileError: `data_dir` is not a folder.
        ConfigError: no class folders; a class folder without images, or whose
            images all fail to decode; train/ and val/ with different classes;
            both val/ and validation/; or invalid arguments.

    Example:

    ```python
    data = tfxfer.load_image_folders("hymenoptera", image_size=(224, 224), batch_size=16)
    model.fit(data.train, validation_data=data.validation, epochs=5)
    ```
    """
    check_loader_args(
        image_size=image_size,
        batch_size=batch_size,
        validation_split=validation_split,
        cache=cache,
        shuffle_buffer=shuffle_buffer,
    )
    image_size = (int(image_size[0]), int(image_size[1]))
    data_dir = os.fspath(data_dir)
    class_names, train_files, validation_files, skipped_files = _collect_files(
        data_dir, validation_split, seed
    )
    # The cache replays the first epoch's input order and the shuffle buffer may
    # be smaller than the data set; a seeded permutation up front keeps class-sorted
    # file lists from turning into single-class batches.
    train_files = train_files.take(
        np.random.default_rng(seed).permutation(len(train_files.paths))
    )
    if shuffle_buffer is None:
        shuffle_buffer = pipeline.default_shuffle_buffer(len(train_files.paths), image_size)

    batching = dict(image_size=image_size, batch_size=batch_size, cache=cache, seed=seed)
    datasets = pipeline.ImageDatasets(
        train=_batched(train_files, "train", shuffle_buffer=shuffle_buffer, **batching),
        validation=(
            _batched(validation_files, "validation", shuffle_buffer=None, **batching)
            if validation_files is not None
            else None
        ),
        class_names=class_names,
        train_size=len(train_files.paths),
        validation_size=0 if validation_files is None else len(validation_files.paths),
        skipped_files=skipped_files,
        train_class_counts=np.bincount(
            np.asarray(train_files.labels, np.int64), minlength=len(class_names)
        ).tolist(),
    )
    pipeline.log_summary(datasets, source=data_dir, batch_size=batch_size)
    return datasets


@dataclasses.dataclass
class _Files:
    """Image paths and their labels, kept in step."""

    paths: list[str]
    labels: list[int]

    def take(self, indices: Sequence[int]) -> "_Files":
        return _Files([self.paths[i] for i in indices], [self.labels[i] for i in indices])

    def without(self, skipped: list[str], root: str, class_names: list[str]) -> "_Files":
        """Drops `skipped` paths; raises if that leaves a class of `root` empty."""
        skipped = set(skipped)
        kept = self.take([i for i, path in enumerate(self.paths) if path not in skipped])
        counts = np.bincount(np.asarray(kept.labels, np.int64), minlength=len(class_names))
        empty = [os.path.join(root, class_names[i]) for i in np.flatnonzero(counts == 0)]
        if empty:
            undecodable = [path for path in self.paths if path in skipped]
            raise ConfigError(
                f"No decodable images left in class folders {empty}: every image "
                "there failed to decode (the warning above gives the reasons). Replace "
                "the files with JPEG, PNG, GIF, BMP or WebP images, or remove the class. "
                f"Received: {len(undecodable)} undecodable files, e.g. "
                f"{undecodable[:_PATHS_IN_WARNING]}"
            )
        return kept


def _collect_files(
    data_dir: str, validation_split: float | None, seed: int
) -> tuple[list[str], "_Files", "_Files | None", list[str]]:
    """Finds, checks and splits the images under `data_dir`.

    Returns (class names, training files, validation files or None, skipped files).
    """
    train_root, validation_root = _find_split_roots(data_dir, validation_split)
    class_names = _class_names(train_root, validation_root)
    train_files = _list_images(train_root, class_names)
    validation_files = None
    if validation_root is not None:
        validation_files = _list_images(validation_root, class_names)

    skipped_files = _find_undecodable(
        train_files.paths + (validation_files.paths if validation_files is not None else [])
    )
    train_files = train_files.without(skipped_files, train_root, class_names)
    if validation_files is not None:
        validation_files = validation_files.without(
            skipped_files, validation_root, class_names
        )

    if validation_split is not None:
        train_idx, validation_idx = splits.split_per_class(
            train_files.labels, validation_split, seed, what="images"
        )
        train_files, validation_files = train_files.take(train_idx), train_files.take(validation_idx)
    elif validation_files is None:
        logging.warning(
            "No validation data: %r has no val/ or validation/ folder and "
            "validation_split is None. Pass validation_split=0.2 (for example) to "
            "hold out part of each class.",
            data_dir,
        )
    return class_names, train_files, validation_files, skipped_files


def _find_split_roots(
    data_dir: str, validation_split: float | None
) -> tuple[str, str | None]:
    """Returns (folder of training class folders, folder of validation ones or None)."""
    if not tf.io.gfile.isdir(data_dir):
        raise MissingFileError(
            "`data_dir` must be an existing folder of class sub-folders (or of "
            "train/ and val/ folders of class sub-folders). "
            f"Received: data_dir={data_dir!r}"
        )
    train_root, validation_root = layout.train_and_validation_folders(data_dir)
    if validation_root is not None and validation_split is not None:
        raise ConfigError(
            f"{data_dir!r} already has a validation folder ({validation_root!r}), so "
            "`validation_split` cannot also carve one out of train/. Drop "
            "`validation_split`, or remove the validation folder to split train/ "
            f"instead. Received: validation_split={validation_split!r}"
        )
    return train_root, validation_root


def _subfolders(root: str) -> list[str]:
    return [name for name in layout.visible_names(root) if tf.io.gfile.isdir(os.path.join(root, name))]


def _class_names(train_root: str, validation_root: str | None) -> list[str]:
    names = _subfolders(train_root)
    if not names:
        entries = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(train_root))
        raise ConfigError(
            f"Found no class sub-folders in {train_root!r}. Expected one folder per "
            f"class, e.g. {os.path.join(train_root, 'cats', 'img1.jpg')!r} (hidden "
            "folders do not count). Move the images into class folders. Received: "
            f"{len(entries)} entries, e.g. {entries[:_PATHS_IN_WARNING]}"
        )
    if validation_root is None:
        return names
    validation_names = _subfolders(validation_root)
    if validation_names != names:
        only_train = sorted(set(names) - set(validation_names))
        only_validation = sorted(set(validation_names) - set(names))
        raise ConfigError(
            "Training and validation folders must hold the same class folders. "
            f"Only in {train_root!r}: {only_train}; only in {validation_root!r}: "
            f"{only_validation}. Add the missing class folders (with images) or "
            "remove the extra ones."
        )
    return names


@dataclasses.dataclass
class _ClassFolder:
    """What one class folder holds: image paths, and the other entries left out."""

    images: list[str]
    others: list[str]  # Files without an image extension.
    hidden: list[str]  # Hidden files and folders (a hidden folder counts once).


def _scan_class_folder(class_dir: str) -> _ClassFolder:
    """Walks `class_dir` recursively, not descending into hidden folders."""
    found = _ClassFolder([], [], [])
    for folder, subfolders, names in tf.io.gfile.walk(class_dir):
        found.hidden += [os.path.join(folder, name) for name in subfolders if layout.is_hidden(name)]
        subfolders[:] = [name for name in subfolders if not layout.is_hidden(name)]  # walk() follows this list.
        for name in names:
            path = os.path.join(folder, name)
            if layout.is_hidden(name):
                found.hidden.append(path)
            elif name.lower().endswith(IMAGE_EXTENSIONS):
                found.images.append(path)
            else:
                found.others.append(path)
    return found


def _list_images(root: str, class_names: list[str]) -> _Files:
    """Lists image files under `root/<class>/` recursively, in a stable order."""
    files, labels, others, hidden = [], [], 0, 0
    for label, name in enumerate(class_names):
        class_dir = os.path.join(root, name)
        found = _scan_class_folder(class_dir)
        if not found.images:
            left_out = sorted(os.path.basename(p) for p in found.others + found.hidden)
            raise ConfigError(
                f"Class folder {class_dir!r} holds no images. Expected files ending "
                f"in {', '.join(IMAGE_EXTENSIONS)} (any case, not hidden); add images, "
                "or remove the class (from both train/ and val/ if there are both). "
                f"Received: {len(left_out)} other entries, e.g. {left_out[:_PATHS_IN_WARNING]}"
            )
        files.extend(sorted(found.images))
        labels.extend([label] * len(found.images))
        others += len(found.others)
        hidden += len(found.hidden)
    if others or hidden:
        logging.info(
            "Ignored %d files under %r that are not images (%s), and %d hidden files "
            "and folders.",
            others,
            root,
            ", ".join(IMAGE_EXTENSIONS),
            hidden,
        )
    return _Files(files, labels)


def _find_undecodable(paths: Sequence[str]) -> list[str]:
    """Returns, sorted, the paths that `image_ops.decode_image` cannot decode (or read).

    One parallel tf.data pass decodes every file and drops the failures; the
    indices that do not come out are the bad files. This costs one extra decode
    per image, but lets the training pipeline keep a known, exact cardinality.
    """
    if not paths:
        return []

    def decode(index, path):
        # uint8, as training decodes it before resizing; the shape keeps the
        # decode from being pruned as dead code.
        return index, tf.shape(image_ops.decode_uint8(tf.io.read_file(path)))

    decoded = (
        tf.data.Dataset.from_tensor_slices((tf.range(len(paths)), list(paths)))
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
    )
    good = {int(index) for index, _ in decoded.as_numpy_iterator()}
    skipped = sorted(path for i, path in enumerate(paths) if i not in good)
    if skipped:
        # Only the failures are decoded again, one by one, to learn why.
        reasons = [f"{path} ({_decode_error(path)})" for path in skipped[:_PATHS_IN_WARNING]]
        logging.warning(
            "Skipping %d files (of %d) that cannot be decoded as images (truncated, "
            "corrupt, or not an image despite the extension), e.g. %s. The full list "
            "is in ImageDatasets.skipped_files.",
            len(skipped),
            len(paths),
            "; ".join(reasons),
        )
    return skipped


def _decode_error(path: str) -> str:
    """Why `path` does not decode: TensorFlow's message without its op and device prefix."""
    try:
        image_ops.decode_uint8(tf.io.read_file(path))
    except tf.errors.OpError as error:
        message = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]|\bname:\s*$", "", error.message)
        return " ".join(message.split())
    return "it decodes now; it may have changed while loading"


def _batched(
    files: _Files,
    split: str,
    *,
    image_size: tuple[int, int],
    batch_size: int,
    cache: bool | str,
    shuffle_buffer: int | None,
    seed: int,
) -> tf.data.Dataset:
    def decode(path, label):
        return image_ops.decode_and_resize(tf.io.read_file(path), image_size), label

    examples = tf.data.Dataset.from_tensor_slices(
        (files.paths, np.asarray(files.labels, dtype=np.int32))
    ).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    fingerprint = [f"{image_size}"]
    fingerprint += [f"{p}\t{label}" for p, label in zip(files.paths, files.labels)]
    return pipeline.finish_dataset(
        examples,
        batch_size=batch_size,
        cache=pipeline.resolve_cache(cache, split, fingerprint),
        shuffle_buffer=shuffle_buffer,
        seed=seed,
    )
