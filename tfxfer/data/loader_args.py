"""`check_loader_args`: the one check of the arguments the data loaders take.

Every loader (image folders, text files, TFDS images and texts) calls it with
the arguments it has, so the same bad value gets the same message everywhere.
"""

import os
from collections.abc import Sequence

from tfxfer.data.constants import MAX_TEXT_CHARS
from tfxfer.errors import ConfigError

# Marks an argument the calling loader does not take (None is a value some take).
_NOT_TAKEN = object()


def check_loader_args(
    *,
    batch_size: int,
    validation_split: float | None,
    image_size: tuple[int, int] = _NOT_TAKEN,
    cache: bool | str = _NOT_TAKEN,
    shuffle_buffer: int | None = None,
    max_text_chars: int = _NOT_TAKEN,
    cache_memory_mb: int = _NOT_TAKEN,
    spill_dir: str | None = None,
) -> None:
    """Raises a ConfigError, naming the argument and the value, for one that cannot work.

    Args left out are not checked: a loader passes the ones it takes.

    batch_size: int. Positive.
    validation_split: float | None. None, or strictly between 0 and 1.
    image_size: tuple[int, int]. (height, width), both positive.
    cache: bool | str. True, False, or a non-empty cache file path prefix.
    shuffle_buffer: int | None. None (automatic), or a positive number of examples.
    max_text_chars: int. Positive.
    cache_memory_mb: int. A positive number of MB.
    spill_dir: str | os.PathLike | None. None, or a non-empty folder path.
    """
    if not _is_positive_int(batch_size):
        raise ConfigError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    if validation_split is not None and not (
        isinstance(validation_split, (int, float))
        and not isinstance(validation_split, bool)
        and 0.0 < validation_split < 1.0
    ):
        raise ConfigError(
            "validation_split must be None or a fraction strictly between 0 and 1, e.g. 0.2. "
            f"Received: validation_split={validation_split!r}"
        )
    if image_size is not _NOT_TAKEN and not (
        isinstance(image_size, Sequence)
        and len(image_size) == 2
        and all(_is_positive_int(side) for side in image_size)
    ):
        raise ConfigError(
            "`image_size` must be (height, width) with two positive integers. "
            f"Received: image_size={image_size!r}"
        )
    if cache is not _NOT_TAKEN and (not isinstance(cache, (bool, str)) or cache == ""):
        raise ConfigError(
            "`cache` must be True (in memory), False (no cache) or a cache file path "
            f"prefix. Received: cache={cache!r}"
        )
    if shuffle_buffer is not None and not _is_positive_int(shuffle_buffer):
        raise ConfigError(
            "`shuffle_buffer` must be None (automatic) or a positive number of "
            f"examples. Received: shuffle_buffer={shuffle_buffer!r}"
        )
    if cache_memory_mb is not _NOT_TAKEN and not _is_positive_int(cache_memory_mb):
        raise ConfigError(
            "`cache_memory_mb` must be a positive whole number of MB: the most memory the "
            "decoded images may take before they are cached in files instead, e.g. 1024. "
            f"Received: cache_memory_mb={cache_memory_mb!r}"
        )
    if spill_dir is not None and (not isinstance(spill_dir, (str, os.PathLike)) or os.fspath(spill_dir) == ""):
        raise ConfigError(
            "`spill_dir` must be None (the system's temporary folder) or a folder path in "
            f"which to cache decoded images that exceed cache_memory_mb. Received: spill_dir={spill_dir!r}"
        )
    if max_text_chars is not _NOT_TAKEN and not _is_positive_int(max_text_chars):
        raise ConfigError(
            f"max_text_chars must be a positive integer, e.g. {MAX_TEXT_CHARS}. "
            f"Received: max_text_chars={max_text_chars!r}"
        )


def _is_positive_int(value) -> bool:
    # bool is an int subclass; `image_size=(True, 4)` is a bug, not a size.
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
