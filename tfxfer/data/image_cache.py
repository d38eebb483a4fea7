"""Where the image loaders cache decoded images: in memory within a budget, else in files.

Decoded images are cached as uint8 `(H, W, 3)` tensors, so their size is known
before any file is decoded: examples x H x W x 3 bytes. When that fits in the
loader's `cache_memory_mb`, they stay in memory (tf.data's in-memory cache, in
chunks of about 1 MB: see `pipeline.chunk_size`); otherwise they spill to
tf.data's file cache, which reads with file I/O, so the process's resident
memory does not grow with the data set (the operating system's page cache may
hold the files, but gives that memory back when needed).
"""

import atexit
import dataclasses
import os
import shutil
import tempfile
import uuid

import tensorflow as tf
from absl import logging

from tfxfer.data import pipeline

# The default budget: 1 GB of uint8 images is about 7,000 images at 224x224
# (150 KB each) or 28,000 at 112x112; the hymenoptera-sized data sets most
# transfer learning starts from stay in memory, and a machine with 8 GB or
# more keeps room for the model and TensorFlow. Larger data sets spill to files.
DEFAULT_CACHE_MEMORY_MB = 1024

# Name prefix of the spill folders made here (and removed at process exit).
SPILL_FOLDER_PREFIX = "tfxfer_cache_"

_MB = 2**20


@dataclasses.dataclass(frozen=True)
class CachePlan:
    """Where one loader caches its decoded images.

    Attributes:
        cache: bool | str. For `pipeline.finish_dataset` and `pipeline.resolve_cache`:
            True (memory), False (no cache) or a file path prefix.
        kind: str. "memory", "files" or "none", as `ImageDatasets.decoded_cache`.
    """

    cache: bool | str
    kind: str

    @property
    def in_memory(self) -> bool:
        return self.kind == "memory"


def plan_cache(
    cache: bool | str,
    *,
    cache_memory_mb: int,
    spill_dir: str | os.PathLike | None,
    num_examples: int,
    image_size: tuple[int, int],
) -> CachePlan:
    """Chooses memory, files or no cache for `num_examples` decoded images, and logs why.

    Args:
        cache: bool | str. The loader's `cache`: True caches in memory within
            `cache_memory_mb` and in a spill folder beyond it, a str is a file
            path prefix (always files), False caches nothing.
        cache_memory_mb: int. Largest size of the in-memory cache, in MB (2**20 bytes).
        spill_dir: str | os.PathLike | None. Folder in which the spill folder is
            made; None uses the system's temporary folder.
        num_examples: int. Images to cache (training plus validation).
        image_size: tuple[int, int]. (height, width) of the cached images.

    Returns:
        A `CachePlan`.

    Example:

    ```python
    plan = plan_cache(True, cache_memory_mb=1024, spill_dir=None, num_examples=500, image_size=(224, 224))
    plan.kind  # "memory": 500 x 150,528 bytes = 72 MB
    ```
    """
    size_mb = num_examples * pipeline.uint8_image_bytes(image_size) / _MB
    facts = (f"{num_examples} images of {image_size[0]}x{image_size[1]}x3 uint8 = {size_mb:.1f} MB, "
             f"cache_memory_mb={cache_memory_mb}")
    if cache is False:
        logging.info("Not caching decoded images (cache=False): every epoch decodes the files again (%s).", facts)
        return CachePlan(False, "none")
    if isinstance(cache, str):
        logging.info("Caching decoded images in files with the prefix %r (the `cache` argument): %s.", cache, facts)
        return CachePlan(cache, "files")
    if size_mb <= cache_memory_mb:
        logging.info("Caching decoded images in memory: %s.", facts)
        return CachePlan(True, "memory")
    folder = make_spill_folder(spill_dir)
    log = logging.info if spill_dir is not None else logging.warning
    log("Caching decoded images in files under %r, removed at process exit: %s, more than the budget. Pass "
        "cache_memory_mb=%d or more (--cache_memory_mb in the image recipe) to keep them in memory, or, in "
        "Python, cache='folder/name' to choose where the files go (kept, and replayed by later runs on the same "
        "files).", folder, facts, int(size_mb) + 1)
    return CachePlan(os.path.join(folder, "images"), "files")


def make_spill_folder(spill_dir: str | os.PathLike | None) -> str:
    """Makes a new folder for a file cache, removed (with what it holds) at process exit.

    Args:
        spill_dir: str | os.PathLike | None. Parent folder, on any filesystem
            TensorFlow supports; None uses the system's temporary folder.

    Returns:
        The new folder's path.

    Example:

    ```python
    folder = make_spill_folder("runs/photos")  # runs/photos/tfxfer_cache_1f2e...
    ```
    """
    if spill_dir is None:
        folder = tempfile.mkdtemp(prefix=SPILL_FOLDER_PREFIX)
    else:
        folder = os.path.join(os.fspath(spill_dir), SPILL_FOLDER_PREFIX + uuid.uuid4().hex[:12])
        tf.io.gfile.makedirs(folder)
    atexit.register(remove_folder, folder)
    return folder


def remove_folder(folder: str) -> None:
    """Removes `folder` and what it holds if it exists; failures are logged, never raised (it runs at exit)."""
    try:
        if "://" in folder:
            if tf.io.gfile.exists(folder):
                tf.io.gfile.rmtree(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    except (OSError, tf.errors.OpError) as error:
        logging.warning("Could not remove the decoded-image cache folder %r: %s", folder, error)
