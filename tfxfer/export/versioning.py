"""Integer version folders, written atomically, as TF Serving watches them.

TF Serving polls `<base>/<integer>/` and loads the highest version it finds. A
version is first written to a hidden temporary folder beside it and renamed
into place, so a poll never sees half a model; existing versions are never
overwritten.
"""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from absl import logging


def existing_versions(base_dir: str) -> list[int]:
    """Integer-named sub-folders of `base_dir`, ascending."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(name) for name in os.listdir(base_dir)
                  if name.isascii() and name.isdigit() and os.path.isdir(os.path.join(base_dir, name)))


def latest_version_dir(base_dir: str) -> str:
    """The highest version folder in `base_dir`, or `base_dir` itself if it is a SavedModel."""
    if os.path.exists(os.path.join(base_dir, "saved_model.pb")):
        return base_dir
    versions = existing_versions(base_dir)
    if not versions:
        raise FileNotFoundError(
            f"No SavedModel in {base_dir!r}: expected saved_model.pb there or integer "
            "version folders (1/, 2/, ...) holding one."
        )
    return os.path.join(base_dir, str(versions[-1]))


@contextlib.contextmanager
def staging_dir(base_dir: str) -> Iterator[str]:
    """A hidden temporary folder inside `base_dir`, removed unless `publish`ed."""
    os.makedirs(base_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-export-", dir=base_dir)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: str, base_dir: str) -> str:
    """Renames a finished staging folder to the next free version; returns its path."""
    version = 0
    while True:
        # max() with the number just tried: a taken name that is not a version
        # folder (e.g. a file named "1") must not be retried forever.
        version = max([version, *existing_versions(base_dir)]) + 1
        target = os.path.join(base_dir, str(version))
        try:
            # rename() onto an existing non-empty folder fails, so a concurrent
            # export that took this number makes us try the next one.
            os.rename(staging, target)
        except OSError:
            if os.path.exists(target):
                continue
            raise
        logging.info("Published version %d at %s", version, target)
        return target
