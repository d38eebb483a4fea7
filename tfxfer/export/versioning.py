"""Integer version folders, written atomically, as TF Serving watches them.

TF Serving polls `<base>/<integer>/` and loads the highest version it finds. A
version is first written to a hidden temporary folder beside it and renamed
into place, so a poll never sees half a model; existing versions are never
overwritten. A published version gets the permissions of any folder the user
creates (the umask decides), so a TF Serving container running as another user
can read it: the staging folder itself is private while it is being written.
"""

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

from absl import logging

from tfxfer.errors import ConfigError, MissingFileError, NotAFolderError


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
        raise MissingFileError(
            f"No SavedModel in {base_dir!r}: expected saved_model.pb there or integer "
            "version folders (1/, 2/, ...) holding one. Pass an export's version folder or its base "
            f"folder. Received: base_dir={base_dir!r}"
        )
    return os.path.join(base_dir, str(versions[-1]))


def check_base_dir(base_dir: str) -> None:
    """Raises if `base_dir`, or the nearest of its parents that exists, is a file rather than a folder.

    Called before anything is written, so a mistyped path fails at once instead
    of after a long export, and never leaves a half-created tree behind.

    base_dir: str. The export base folder (it may not exist yet).
    """
    blocking = file_in_the_way(base_dir)
    if blocking is not None:
        where = "" if blocking == os.path.abspath(base_dir) else f" (its parent {blocking!r} is a file)"
        raise NotAFolderError(
            f"export_dir {base_dir!r} is a file{where}; pass a folder: versions 1/, 2/, ... are "
            f"written inside it (it is created if missing). Received: export_dir={base_dir!r}"
        )


def file_in_the_way(path: str) -> str | None:
    """The file that stops a folder being made at `path`: `path` itself or its nearest
    existing parent, when that is a file. None when there is none, or `path` is remote.

    path: str. A folder that may not exist yet.
    """
    if not is_local(path):
        return None
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return None if os.path.isdir(existing) else existing


def check_folder_name(name: str, arg: str = "model_name") -> str:
    """Returns `name` if it is one plain folder name; raises if it could reach outside its parent.

    Names joined under a base folder (e.g. `<export_dir>/<model_name>`) must not
    hold a path separator, be `.`/`..`, or be absolute: `../../etc` or `/tmp/x`
    would write outside the folder the user chose.

    Args:
        name: str. The folder name to check.
        arg: str. The argument or flag it came from, for the error message.
    """
    separators = {"/", os.sep, os.altsep} - {None}
    if (not isinstance(name, str) or name in ("", ".", "..") or any(s in name for s in separators)
            or "\0" in name or os.path.isabs(name)):
        raise ConfigError(
            f"{arg} must be one folder name (no '/', not '.' or '..', not absolute), so that it "
            f"cannot write outside its base folder; pick a plain name such as 'flowers'. "
            f"Received: {arg}={name!r}"
        )
    return name


def model_dir(export_dir: str | os.PathLike, model_name: str) -> str:
    """`<export_dir>/<model_name>`, the base folder of one model's versions, with `model_name` checked.

    Args:
        export_dir: str. The folder that holds every model's folder.
        model_name: str. One folder name (see `check_folder_name`).
    """
    return os.path.join(os.fspath(export_dir), check_folder_name(model_name, "model_name"))


def is_local(path: str) -> bool:
    """Whether `path` is on the local filesystem (not `gs://`, `s3://`, ...)."""
    return "://" not in os.fspath(path)


@contextlib.contextmanager
def staging_dir(base_dir: str) -> Iterator[str]:
    """A hidden temporary folder inside `base_dir`, removed unless `publish`ed.

    It is private (0o700) while being written; `publish` opens it up.
    """
    check_base_dir(base_dir)
    os.makedirs(base_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-export-", dir=base_dir)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: str, base_dir: str) -> str:
    """Gives a finished staging folder the user's default permissions, renames it to the next free version.

    Returns the version folder's path.
    """
    share_like_user_folders(staging)
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


def share_like_user_folders(folder: str) -> None:
    """Sets the modes of `folder` and everything in it to those of a folder/file the user creates.

    `tempfile.mkdtemp` makes folders 0o700, and TensorFlow makes its own folders
    0o755 whatever the umask: a version published like that could not be read
    by a TF Serving container running as another user, or would ignore a
    stricter umask. Folders become 0o777 and files 0o666, both minus the umask.
    Symlinks are left alone (chmod would follow them out of the folder).
    Remote paths (`gs://`, ...) have no POSIX modes and are skipped.

    folder: str. A local folder, e.g. a staged version.
    """
    if not is_local(folder):
        return
    folder_mode = _default_folder_mode(folder)
    file_mode = folder_mode & 0o666
    os.chmod(folder, folder_mode)
    for root, folders, files in os.walk(folder):
        for name in folders:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, folder_mode)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, file_mode)


def _default_folder_mode(parent: str) -> int:
    """The mode a new folder in `parent` gets: 0o777 minus the umask (and any default ACL's mask).

    Made and measured rather than read with `os.umask(0)`: setting the umask,
    even briefly, is process-wide, and another thread creating a file then
    would make it world-writable.
    """
    probe = os.path.join(parent, f".mode-probe-{uuid.uuid4().hex}")
    os.mkdir(probe, 0o777)
    try:
        return os.stat(probe).st_mode & 0o777
    finally:
        os.rmdir(probe)
