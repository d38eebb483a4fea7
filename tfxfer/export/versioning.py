"""Integer version folders, written atomically, as TF Serving watches them.

TF Serving polls `<base>/<integer>/` and loads the highest version it finds. A
version is first written to a hidden temporary folder beside it and renamed
into place, so a poll never sees half a model; existing versions are never
overwritten. A published version gets the permissions of any folder the user
creates (the umask decides), so a TF Serving container running as another user
can read it: the staging folder itself is private while it is being written.

Every folder is read and written through `tf.io.gfile`, so a base folder may
be on any filesystem TensorFlow supports (`gs://...`, `ram://...`). Permissions
and the atomic rename are local-disk features; what remote paths get instead
is said where it happens (`publish`, `share_like_user_folders`).
"""

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError, MissingFileError, NotAFolderError
from tfxfer.export.layout import SAVED_MODEL_FILE

STAGING_PREFIX = ".tmp-export-"


def existing_versions(base_dir: str) -> list[int]:
    """Integer-named sub-folders of `base_dir`, ascending."""
    return sorted(_version_folders(base_dir))


def _version_folders(base_dir: str) -> dict[int, str]:
    """`{version: folder name}` of the integer-named sub-folders of `base_dir`.

    The number is not always the name: TF Serving reads `007/` as version 7, as `int` does, so a
    zero-padded folder (a naming scheme some pipelines use) is found under its own name. If two
    names give one number (`7/` and `007/`), the plain one is kept.
    """
    if not tf.io.gfile.isdir(base_dir):
        return {}
    folders = {}
    # Object stores list sub-folders with a trailing "/" (e.g. "3/"). Longest first: the plain name, shortest, wins.
    for name in sorted((name.rstrip("/") for name in tf.io.gfile.listdir(base_dir)), key=len, reverse=True):
        if name.isascii() and name.isdigit() and tf.io.gfile.isdir(os.path.join(base_dir, name)):
            folders[int(name)] = name
    return folders


def latest_version_dir(base_dir: str) -> str:
    """The highest version folder in `base_dir`, or `base_dir` itself if it is a SavedModel.

    Args:
        base_dir: str. An export's base folder (holding `1/`, `2/`, ...) or a
            SavedModel folder; a local path or a URL (`gs://...`).

    Raises:
        MissingFileError: neither a SavedModel nor a folder of version folders.

    Example:

    ```python
    tfxfer.export_saved_model(model, "saved_models/photos", class_names=data.class_names)
    serving_dir = tfxfer.latest_version_dir("saved_models/photos")  # e.g. "saved_models/photos/3", the newest
    reloaded = tf.saved_model.load(serving_dir)
    ```
    """
    if tf.io.gfile.exists(os.path.join(base_dir, SAVED_MODEL_FILE)):
        return base_dir
    versions = _version_folders(base_dir)
    if not versions:
        raise MissingFileError(
            f"No SavedModel in {base_dir!r}: expected saved_model.pb there or integer "
            "version folders (1/, 2/, ...) holding one. Pass an export's version folder or its base "
            f"folder. Received: base_dir={base_dir!r}"
        )
    return os.path.join(base_dir, versions[max(versions)])


def check_base_dir(base_dir: str) -> None:
    """Raises if `base_dir`, or the nearest of its parents that exists, is a file rather than a folder, or if
    `base_dir` is itself a SavedModel (a version folder).

    Called before anything is written, so a mistyped path fails at once instead
    of after a long export, and never leaves a half-created tree behind.
    Remote paths (`gs://`, ...) are not checked here, where a check is a network request (a recipe calls this
    before training, maybe offline): `staging_dir` checks them for a version folder when the export begins.

    base_dir: str. The export base folder (it may not exist yet).

    Raises:
        NotAFolderError: `base_dir`, or a parent of it, is a file.
        ConfigError: `base_dir` is empty, or holds saved_model.pb, e.g. the path a previous export returned.
    """
    check_folder_path(base_dir, "export_dir", "versions 1/, 2/, ... are written inside it")
    if is_local(base_dir):
        check_not_a_version(base_dir)


def check_folder_path(path: str, argument: str, contents: str) -> None:
    """Raises unless a folder can be made at `path`: it is empty (which `os.makedirs` fails on with a bare
    FileNotFoundError), or it or its nearest existing parent is a file.

    path: str. A folder that may not exist yet.
    argument: str. The argument that named it, for the messages.
    contents: str. What is written inside it, for the messages.

    Raises:
        ConfigError: `path` is empty.
        NotAFolderError: `path`, or a parent of it, is a file.
    """
    if not path:
        raise ConfigError(f"{argument} is empty; pass a folder: {contents} (it is created if missing). "
                          f"Received: {argument}={path!r}")
    blocking = file_in_the_way(path)
    if blocking is not None:
        where = "" if blocking == os.path.abspath(path) else f" (its parent {blocking!r} is a file)"
        raise NotAFolderError(
            f"{argument} {path!r} is a file{where}; pass a folder: {contents} (it is created if missing). "
            f"Received: {argument}={path!r}"
        )


def check_not_a_version(base_dir: str) -> None:
    """Raises a ConfigError if `base_dir` is a SavedModel: its next version would nest inside it (`.../1/1`),
    where neither TF Serving nor `latest_version_dir` (which stops at the first saved_model.pb) would find it.

    base_dir: str. The export base folder, on any filesystem (it may not exist yet).
    """
    if tf.io.gfile.exists(os.path.join(base_dir, SAVED_MODEL_FILE)):
        # Not normpath: it would turn "gs://b/m/1" into "gs:/b/m".
        base = os.path.dirname(os.path.abspath(base_dir) if is_local(base_dir) else base_dir.rstrip("/"))
        raise ConfigError(
            f"export_dir holds a SavedModel ({SAVED_MODEL_FILE}): it is a version folder, such as the path an "
            f"export returns, and a new version would be nested inside it. Pass the base folder that holds the "
            f"versions, e.g. export_dir={base!r}. Received: export_dir={base_dir!r}"
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


def make_folders(path: str) -> None:
    """Creates folder `path` and its missing parents, on any filesystem; fine if it exists.

    Local folders are made by `os.makedirs`, so they get the modes of any folder
    the user creates (TensorFlow's own are 0o755 whatever the umask).

    path: str. A local path or a `scheme://` URL TensorFlow can write.
    """
    if is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        tf.io.gfile.makedirs(path)


@contextlib.contextmanager
def staging_dir(base_dir: str) -> Iterator[str]:
    """A hidden temporary folder inside `base_dir`, removed unless `publish`ed.

    On a local disk it is private (0o700) while being written; `publish` opens it up.
    """
    check_base_dir(base_dir)
    if not is_local(base_dir):  # check_base_dir checked a local one
        check_not_a_version(base_dir)
    make_folders(base_dir)
    if is_local(base_dir):
        staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base_dir)
    else:  # No modes to keep private there; the random name keeps concurrent exports apart.
        staging = os.path.join(base_dir, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
        tf.io.gfile.makedirs(staging)
    try:
        yield staging
    finally:
        _remove_folder(staging)


def _remove_folder(folder: str) -> None:
    """Removes `folder` and everything in it if it is still there (a published one is gone); never raises.

    A leftover hidden folder must not hide the export's own error.
    """
    if is_local(folder):
        # shutil, not tf.io.gfile.rmtree: TensorFlow's would follow a symlink to a
        # folder and empty the folder it points to.
        shutil.rmtree(folder, ignore_errors=True)
        return
    try:
        if tf.io.gfile.exists(folder):
            tf.io.gfile.rmtree(folder)
    except tf.errors.OpError as error:
        logging.warning("Could not remove the staging folder %s: %s", folder, error)


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
            _move_folder(staging, target)
        except tf.errors.AlreadyExistsError:  # taken, e.g. by a concurrent export: try the next number
            continue
        logging.info("Published version %d at %s", version, target)
        return target


def _move_folder(source: str, target: str) -> None:
    """Renames the folder `source` to `target`; raises `tf.errors.AlreadyExistsError` if `target` is taken.

    A local disk renames a folder in one step, so TF Serving never sees half a
    version. Object stores (`gs://`) have no folders to rename, only files,
    and `ram://` renames a folder's name without its files: there each file is
    renamed (copied, on GCS) on its own, `saved_model.pb` last, so that the
    version is complete before TF Serving can load it. Claiming the number
    there is not atomic either: two exports racing to one bucket may collide.
    """
    if tf.io.gfile.exists(target):
        raise tf.errors.AlreadyExistsError(None, None, f"{target} exists")
    if is_local(source):
        try:
            tf.io.gfile.rename(source, target)
        except tf.errors.OpError as error:
            # rename() onto an existing non-empty folder fails too, so a concurrent
            # export that took the number between the check and here is not overwritten.
            if tf.io.gfile.exists(target):
                raise tf.errors.AlreadyExistsError(None, None, f"{target} exists") from error
            raise
        return
    files = []
    for folder, _, names in tf.io.gfile.walk(source):
        relative = folder[len(source):].strip("/")
        tf.io.gfile.makedirs(os.path.join(target, relative))
        # ram:// lists names by prefix (`assets.extra` shows in `assets` as `.extra`): keep real files only.
        files.extend(os.path.join(relative, name) for name in names
                     if tf.io.gfile.exists(os.path.join(folder, name)))
    for name in sorted(files, key=lambda name: name == SAVED_MODEL_FILE):
        tf.io.gfile.rename(os.path.join(source, name), os.path.join(target, name))


def share_like_user_folders(folder: str) -> None:
    """Sets the modes of `folder` and everything in it to those of a folder/file the user creates.

    `tempfile.mkdtemp` makes folders 0o700, and TensorFlow makes its own folders
    0o755 whatever the umask: a version published like that could not be read
    by a TF Serving container running as another user, or would ignore a
    stricter umask. Folders become 0o777 and files 0o666, both minus the umask.
    Symlinks are left alone (chmod would follow them out of the folder).
    Remote paths (`gs://`, ...) are skipped: they have no POSIX modes, who may
    read them is the bucket's access control, and `os.chmod` would act on a
    local folder named `gs:`.

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


def folder_megabytes(folder: str) -> float:
    """Size of every file under `folder` (an export, say), in MB of 2**20 bytes, on any filesystem TensorFlow reads."""
    total = sum(tf.io.gfile.stat(os.path.join(root, name)).length
                for root, _, names in tf.io.gfile.walk(folder) for name in names)
    return round(total / 2**20, 3)
