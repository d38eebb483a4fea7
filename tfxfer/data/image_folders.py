"""Image classification data from folders of image files, one sub-folder per class.

Two layouts are understood:

    data_dir/train/<class>/*.jpg   and   data_dir/val/<class>/*.jpg  (the split folders
                                   named as `layout.SPLIT_FOLDER_NAMES` says: also
                                   training/, valid/, validation/, in any case)
    data_dir/<class>/*.jpg         split by a seeded, stratified `validation_split`
                                   (`tfxfer.data.splits`)

Every file is decoded once, in one parallel pass before training that also fills
the cache of decoded images (`tfxfer.data.image_cache`: memory within a budget,
else files). Files that cannot be decoded are found by that pass and left out,
so a corrupt JPEG never ends an epoch halfway and the number of steps per epoch
is known in advance. The same pass fingerprints each file's bytes: exact copies
are counted in the log, copies with different labels or in both train/ and
val/ are warned of, and a `validation_split` keeps copies on one side
(`tfxfer.data.exact_copies`). Hidden files and folders (".DS_Store",
"._photo.jpg", ".ipynb_checkpoints/") are tool clutter, never images or classes.
"""

import dataclasses
import functools
import os
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.data import exact_copies, image_cache, image_ops, layout, pipeline, splits
from tfxfer.data.constants import IMAGE_EXTENSIONS
from tfxfer.data.loader_args import check_loader_args
from tfxfer.errors import ConfigError, MissingFileError

# How many skipped paths a warning shows; the full list is in `skipped_files`.
_PATHS_IN_WARNING = 5
# Where the loaders keep the full list of files they skipped, for the warning that names a few.
SKIPPED_FILES_LIST = "ImageDatasets.skipped_files"


def load_image_folders(
    data_dir: str | os.PathLike,
    *,
    image_size: tuple[int, int],
    batch_size: int = 32,
    validation_split: float | None = None,
    seed: int = 0,
    cache: bool | str = True,
    shuffle_buffer: int | None = None,
    cache_memory_mb: int = image_cache.DEFAULT_CACHE_MEMORY_MB,
    spill_dir: str | os.PathLike | None = None,
) -> pipeline.ImageDatasets:
    """Loads labelled images from class sub-folders into batched `tf.data` pipelines.

    Class names are the sorted names of the class sub-folders (hidden ones such as
    `.ipynb_checkpoints` are left out). Files are listed recursively under each
    class folder, skipping hidden files and folders; only `IMAGE_EXTENSIONS` (any
    case) count, other files are ignored and counted in the log. Images are decoded,
    resized and rounded to uint8 with `tfxfer.data.image_ops.decode_and_resize_uint8`,
    the function the exported serving graph uses too (EXIF orientation, grayscale,
    alpha, CMYK and 16-bit PNGs are handled as `image_ops.decode_image` says).

    Loading decodes every file once, in parallel, into the cache: files that
    cannot be decoded (truncated, corrupt, or not an image despite the extension)
    are left out, counted in the log with their reasons and listed in
    `skipped_files`, and training and validation then read only the cache. The
    cache holds uint8 images (H x W x 3 bytes each, a quarter of float32); the
    datasets cast each batch to float32 after the cache and the shuffle.

    Args:
        data_dir: str | os.PathLike. Either holds `train/` plus `val/` folders
            of class folders (also spelled `training/`; `valid/`,
            `validation/`; in any case), or the class folders themselves. A
            `train/` folder without a validation folder is treated as the latter.
        image_size: tuple[int, int]. (height, width) every image is resized to.
        batch_size: int. Examples per batch.
        validation_split: float | None. Fraction of each class held out for
            validation when `data_dir` has no validation folder, rounded as
            `tfxfer.data.splits` says (exact copies of a file go to the same
            side). Must be None when it has one. None without a validation
            folder means no validation.
        seed: int. Seeds the train/validation split and the per-epoch shuffle.
        cache: bool | str. True caches the decoded images in memory when they fit
            in `cache_memory_mb`, else in files in a new folder inside `spill_dir`
            (removed at process exit). A str caches them in files with that path
            prefix, named after a fingerprint of the files and image size (kept:
            a later run on the same files replays them instead of decoding).
            False decodes every epoch.
        shuffle_buffer: int | None. Shuffle window in examples; None means the
            whole training set, capped at a quarter of `cache_memory_mb` of
            images. The cache is shuffled in chunks of images too, so a capped
            window still draws every batch from the whole data set.
        cache_memory_mb: int. Most MB (2**20 bytes) the decoded training and
            validation images may take in memory: examples x H x W x 3 bytes,
            known before decoding. The default, 1024, holds about 7,000 images of
            224x224; beyond it, the images spill to files and memory stays flat
            however large the data set.
        spill_dir: str | os.PathLike | None. Where the spill folder is made when
            `cache=True` exceeds `cache_memory_mb`, e.g. the run folder; None uses
            the system's temporary folder.

    Returns:
        A `tfxfer.data.ImageDatasets`.

    Raises:
        MissingFileError: `data_dir` is not a folder.
        ConfigError: no class folders; a class folder without images, or whose
            images all fail to decode; train/ and val/ with different classes;
            two validation folders (val/ and validation/), or two training
            folders; class folders that are all split folders holding folders
            (val/<class>/ without train/); or invalid arguments.

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
        cache_memory_mb=cache_memory_mb,
        spill_dir=spill_dir,
    )
    image_size = (int(image_size[0]), int(image_size[1]))
    data_dir = os.fspath(data_dir)
    listing = _list_files(data_dir, validation_split)
    order = _cache_order(listing, validation_split, seed)
    plan = image_cache.plan_cache(
        cache, cache_memory_mb=cache_memory_mb, spill_dir=spill_dir,
        num_examples=len(order.paths), image_size=image_size,
    )
    decoded = decode_once(order, image_size, plan)
    train_files, validation_files, copies = _split_decodable(listing, decoded, validation_split, seed, data_dir)
    if shuffle_buffer is None:
        shuffle_buffer = pipeline.default_shuffle_buffer(
            len(train_files.paths), image_size, cache_memory_mb=cache_memory_mb
        )

    batching = dict(batch_size=batch_size, seed=seed)
    datasets = pipeline.ImageDatasets(
        train=decoded.select(train_files, shuffle_buffer=shuffle_buffer, **batching),
        validation=(
            decoded.select(validation_files, shuffle_buffer=None, **batching)
            if validation_files is not None
            else None
        ),
        class_names=listing.class_names,
        train_size=len(train_files.paths),
        validation_size=0 if validation_files is None else len(validation_files.paths),
        skipped_files=decoded.skipped,
        train_class_counts=np.bincount(
            np.asarray(train_files.labels, np.int64), minlength=len(listing.class_names)
        ).tolist(),
        decoded_cache=plan.kind,
        exact_copies=copies,
    )
    pipeline.log_summary(datasets, source=data_dir, batch_size=batch_size)
    return datasets


@dataclasses.dataclass
class Files:
    """Image paths and their labels, kept in step."""

    paths: list[str]
    labels: list[int]

    def take(self, indices: Sequence[int]) -> "Files":
        return Files([self.paths[i] for i in indices], [self.labels[i] for i in indices])

    def without(self, skipped: list[str], root: str, class_names: list[str]) -> "Files":
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


@dataclasses.dataclass
class _Listing:
    """The image files found under `data_dir`, before any is decoded."""

    class_names: list[str]
    train_root: str
    train_files: Files
    validation_root: str | None
    validation_files: "Files | None"


def _list_files(data_dir: str, validation_split: float | None) -> _Listing:
    """Finds the class folders and their image files under `data_dir`."""
    train_root, validation_root = _find_split_roots(data_dir, validation_split)
    class_names = _class_names(train_root, validation_root)
    for root in filter(None, (train_root, validation_root)):
        layout.warn_files_beside_classes(root)
    validation_files = None
    if validation_root is not None:
        validation_files = _list_images(validation_root, class_names)
    return _Listing(class_names, train_root, _list_images(train_root, class_names), validation_root, validation_files)


def _cache_order(listing: _Listing, validation_split: float | None, seed: int) -> Files:
    """Every listed file, in the order the cache holds them: validation files first, then training ones.

    The training part is a seeded permutation: the cache replays its order and
    the shuffle buffer may be smaller than the data set, so class-sorted file
    lists must not turn into single-class batches. With `validation_split`, the
    split of the listed files is a guess of the split that is made after
    decoding (on the decodable files only, keeping exact copies together); it is
    right whenever every file decodes and no file has a copy, and then
    validation reads only the start of the cache.
    """
    train, validation = listing.train_files, listing.validation_files
    if validation_split is not None:
        try:
            train_idx, validation_idx = splits.split_per_class(train.labels, validation_split, seed, what="images")
            train, validation = train.take(train_idx), train.take(validation_idx)
        except ConfigError:
            pass  # The split after decoding raises it, or finds a split with fewer files.
    train = train.take(np.random.default_rng(seed).permutation(len(train.paths)))
    if validation is None:
        return train
    return Files(validation.paths + train.paths, validation.labels + train.labels)


def _split_decodable(
    listing: _Listing, decoded: "_Decoded", validation_split: float | None, seed: int, data_dir: str
) -> tuple[Files, "Files | None", dict[str, int]]:
    """Drops the undecodable files and splits the rest, copies on one side.

    Returns (training files, validation files or None, the counts of `exact_copies.report_copies`).
    """
    skipped = decoded.skipped
    train_files = listing.train_files.without(skipped, listing.train_root, listing.class_names)
    validation_files = listing.validation_files
    if validation_files is not None:
        validation_files = validation_files.without(skipped, listing.validation_root, listing.class_names)

    keys = decoded.content_keys(train_files)
    copies = exact_copies.report_copies(
        keys, np.asarray(train_files.labels), train_files.paths, what="images", source=listing.train_root,
        validation_keys=None if validation_files is None else decoded.content_keys(validation_files),
        validation_names=None if validation_files is None else validation_files.paths)
    if validation_split is not None:
        train_idx, validation_idx = splits.split_per_class(
            train_files.labels, validation_split, seed, what="images", copies=keys
        )
        train_files, validation_files = train_files.take(train_idx), train_files.take(validation_idx)
    elif validation_files is None:
        test = layout.test_folder(data_dir)
        splits.warn_no_validation(
            data_dir, missing=f"no {layout.split_folder_spellings('validation')} folder (any case)",
            note="" if test is None else f" Its {os.path.basename(test)}/ folder is not read: training leaves it "
            "for evaluation (rename it val/ to validate on it instead).",
        )
    return train_files, validation_files, copies


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
    if validation_root is not None:
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
    if len(names) == 1:
        raise ConfigError(
            f"A classifier needs images of at least 2 classes, one folder each; {train_root!r} has one class "
            f"folder. Add a folder of images for every other class beside it, e.g. "
            f"{os.path.join(train_root, 'other_class', 'img1.jpg')!r}. Received: class folders {names}")
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


def _list_images(root: str, class_names: list[str]) -> Files:
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
    return Files(files, labels)


@dataclasses.dataclass
class _Decoded:
    """The decodable files of one `_cache_order`, decoded once, and how to read them.

    `chunks` holds chunks (`pipeline.chunk_size`) of `(position in the order,
    uint8 image, int32 label)` of the decodable files, read from the cache the
    decoding pass filled; without a cache it is None and `select` decodes the
    files again every epoch. `fingerprints` holds a 64-bit fingerprint of each
    file's bytes, by position (0 for the undecodable), to find exact copies.
    """

    order: Files
    decodable: np.ndarray  # bool per position in `order`.
    chunks: tf.data.Dataset | None
    plan: image_cache.CachePlan
    image_size: tuple[int, int]
    fingerprints: np.ndarray  # int64 per position in `order`.

    @functools.cached_property
    def position_of(self) -> dict[str, int]:
        """Each file's position in the order."""
        return {path: i for i, path in enumerate(self.order.paths)}

    def content_keys(self, files: Files) -> np.ndarray:
        """The fingerprints of `files` (files of the order), in their order."""
        return self.fingerprints[[self.position_of[path] for path in files.paths]]

    @property
    def skipped(self) -> list[str]:
        return sorted(path for path, ok in zip(self.order.paths, self.decodable) if not ok)

    def select(self, files: Files, *, batch_size: int, shuffle_buffer: int | None, seed: int) -> tf.data.Dataset:
        """The batched pipeline of `files` (decodable files of the order), in cache order when not shuffled."""
        positions = np.sort([self.position_of[path] for path in files.paths]).astype(np.int64)
        if self.chunks is None:
            return pipeline.finish_dataset(
                _decode_files(self.order.take(positions), self.image_size),
                batch_size=batch_size, cache=False, shuffle_buffer=shuffle_buffer, seed=seed,
            )
        chunk = pipeline.chunk_size(self.image_size)
        # The chunks holding `positions`: the cache holds only decodable files, so
        # a position's index in it counts the decodable positions before it.
        # Skipping to the first and stopping after the last spares reading the
        # rest of a file cache (validation is at its start).
        index_in_cache = np.cumsum(self.decodable) - 1
        first, last = index_in_cache[positions[0]] // chunk, index_in_cache[positions[-1]] // chunk
        wanted = np.zeros(len(self.decodable), bool)
        wanted[positions] = True
        wanted = tf.constant(wanted)
        in_memory = self.plan.in_memory
        return pipeline.finish_chunks(
            self.chunks.skip(int(first)).take(int(last - first + 1)),
            num_examples=len(positions), batch_size=batch_size, shuffle_buffer=shuffle_buffer, seed=seed,
            # From memory the chunk buffer holds references; from files, copies.
            chunk_buffer=int(last - first + 1) if in_memory else max(1, (shuffle_buffer or 1) // chunk),
            keep=lambda position, image, label: tf.gather(wanted, position),
        )


def decode_once(order: Files, image_size: tuple[int, int], plan: image_cache.CachePlan, *,
                listed_in: str | None = SKIPPED_FILES_LIST) -> _Decoded:
    """Decodes every file of `order` once, in parallel, into the cache `plan` says; finds the undecodable ones.

    `listed_in` names where the caller keeps the full list of undecodable files,
    for the warning (None: nowhere).

    The failures are dropped by `ignore_errors`: the positions that do not come
    out of the pass are the bad files. The cache is filled by this one pass, so
    training and validation never read or decode the files again, and their
    datasets keep a known, exact cardinality. The pass also fingerprints each
    file's bytes (kept in the cache, so a replayed file cache has them too).
    """
    def decode(position, contents, label):
        image = image_ops.decode_and_resize_uint8(contents, image_size)
        return position, image, label, exact_copies.fingerprint(contents)

    chunks = (
        _read_files(
            tf.data.Dataset.from_tensor_slices(
                (np.arange(len(order.paths), dtype=np.int64), order.paths, np.asarray(order.labels, np.int32))
            )
        )
        # Deterministic: the cache's order, which the shuffle starts from, is then seeded.
        .map(decode, num_parallel_calls=decode_parallelism(), deterministic=True)
        .ignore_errors()
        .batch(pipeline.chunk_size(image_size))
    )
    if plan.cache is True:
        chunks = chunks.cache()
    elif plan.cache:
        files = [f"{image_size} uint8 chunks with fingerprints"] + [
            f"{p}\t{y}" for p, y in zip(order.paths, order.labels)]
        chunks = chunks.cache(pipeline.resolve_cache(plan.cache, "decoded", files))
    decodable = np.zeros(len(order.paths), bool)
    fingerprints = np.zeros(len(order.paths), np.int64)
    # Reading the positions to the end fills the cache (a partly read cache is discarded).
    for positions, keys in chunks.map(lambda position, image, label, key: (position, key)).as_numpy_iterator():
        decodable[positions] = True
        fingerprints[positions] = keys
    images = chunks.map(lambda position, image, label, key: (position, image, label)) if plan.cache else None
    decoded = _Decoded(order, decodable, images, plan, image_size, fingerprints)
    warn_skipped(decoded.skipped, len(order.paths), listed_in=listed_in)
    return decoded


def _decode_files(files: Files, image_size: tuple[int, int]) -> tf.data.Dataset:
    """`(uint8 image, int32 label)` of `files`, decoded anew on every pass (`cache=False`)."""
    def decode(contents, label):
        return image_ops.decode_and_resize_uint8(contents, image_size), label

    examples = tf.data.Dataset.from_tensor_slices((files.paths, np.asarray(files.labels, dtype=np.int32)))
    return _read_files(examples).map(decode, num_parallel_calls=decode_parallelism())


def _read_files(examples: tf.data.Dataset) -> tf.data.Dataset:
    """`examples` (`(..., path, label)`) with each path replaced by the file's bytes.

    Reading is I/O: autotuned, many files may be in flight (a remote filesystem
    answers slowly), holding only encoded bytes.
    """
    def read(*fields):
        return (*fields[:-2], tf.io.read_file(fields[-2]), fields[-1])

    return examples.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def decode_parallelism() -> int:
    """Images decoded at once: one per CPU this process may run on.

    Decoding is CPU-bound, so more at once gains no speed, while each decode
    holds a whole photo's pixels (192 MB of uint8 for an 8000x8000 photo):
    autotuned parallelism was seen decoding four at once on two CPUs.
    """
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def warn_skipped(skipped: list[str], total: int, *, listed_in: str | None = SKIPPED_FILES_LIST) -> None:
    """Logs the undecodable files, with the reasons of the first few, and where the full list is kept."""
    if not skipped:
        return
    # Only the failures are decoded again, one by one, to learn why.
    reasons = [f"{path} ({_decode_error(path)})" for path in skipped[:_PATHS_IN_WARNING]]
    logging.warning(
        "Skipping %d files (of %d) that cannot be decoded as images (truncated, "
        "corrupt, or not an image despite the extension), e.g. %s.%s",
        len(skipped),
        total,
        "; ".join(reasons),
        f" The full list is in {listed_in}." if listed_in else "",
    )


def _decode_error(path: str) -> str:
    """Why `path` does not decode: TensorFlow's message without its op and device prefix."""
    try:
        image_ops.decode_uint8(tf.io.read_file(path))
    except tf.errors.OpError as error:
        message = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]|\bname:\s*$", "", error.message)
        return " ".join(message.split())
    return "it decodes now; it may have changed while loading"
