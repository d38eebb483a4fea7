"""What image and text folders share: which entries count, and where training, validation and test data are.

Every listing goes through `tf.io.gfile`, so a data folder may be local or on any
filesystem TensorFlow reads (`gs://`, `ram://`, ...).
"""

import os

import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError

# How many names a warning shows.
_NAMES_IN_WARNING = 5
# The folders that split a data folder, by role, matched in any case (`Train/`, `VAL/`): the names Keras and
# PyTorch examples use, `training/`, and Roboflow's exports (train/, valid/, test/). A data folder holding a
# training folder holds its class folders there; a validation folder beside it holds fixed validation data, and
# a test folder held-out data that training leaves alone for evaluation. Two folders of one role are an error:
# neither can be picked without guessing which the user meant.
SPLIT_FOLDER_NAMES = {
    "training": ("train", "training"),
    "validation": ("val", "valid", "validation"),
    "test": ("test",),
}


def is_hidden(name: str) -> bool:
    """Whether a file or folder name is tool clutter, never data: macOS ".DS_Store"
    and "._photo.jpg" resource forks, ".ipynb_checkpoints/", ".thumbnails/"."""
    return name.rstrip("/").startswith(".")


def visible_names(folder: str) -> list[str]:
    """Sorted names of the entries in `folder`, without hidden ones."""
    # GCS listings end folder names with "/".
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(folder) if not is_hidden(name))


def warn_files_beside_classes(root: str) -> None:
    """Warns of the files directly in `root`, a folder of class folders: they are in no class, so no loader reads
    them, and an image or text put one folder too high would otherwise be left out unnoticed."""
    loose = [name for name in visible_names(root) if not tf.io.gfile.isdir(os.path.join(root, name))]
    if loose:
        logging.warning("Not read: %d %s in %r beside the class folders, in no class: %s. Move each into the "
                        "folder of its class to use it.", len(loose), "file" if len(loose) == 1 else "files", root,
                        loose[:_NAMES_IN_WARNING])


def split_folder_spellings(role: str) -> str:
    """The folder names of `role` (a key of `SPLIT_FOLDER_NAMES`) for messages: `"val/, valid/ or validation/"`."""
    names = [f"{name}/" for name in SPLIT_FOLDER_NAMES[role]]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _role_of(name: str) -> str | None:
    """The split role a folder name spells (any case), or None for any other name."""
    return next((role for role, names in SPLIT_FOLDER_NAMES.items() if name.lower() in names), None)


def _subfolders(folder: str) -> list[str]:
    # Names from the listing, not isdir() alone: some filesystems (ram://) call
    # "val" a folder when only "validation/..." exists, as a prefix.
    return [name for name in visible_names(folder) if tf.io.gfile.isdir(os.path.join(folder, name))]


def _split_folder(data_dir: str, role: str, folders: list[str]) -> str | None:
    """The folder of `folders` (names in `data_dir`) that plays `role`, or None; two of them are an error."""
    found = [name for name in folders if _role_of(name) == role]
    if len(found) > 1:
        names = [f"{name}/" for name in found]
        raise ConfigError(
            f"{data_dir!r} has {'both ' if len(names) == 2 else ''}{', '.join(names[:-1])} and {names[-1]} folders; "
            f"keep only one so it is clear which holds the {role} data: merge them into one and delete (or move "
            f"away) the other{'s' if len(names) > 2 else ''}. Received: {[os.path.join(data_dir, n) for n in found]}"
        )
    return os.path.join(data_dir, found[0]) if found else None


def train_and_validation_folders(data_dir: str) -> tuple[str, str | None]:
    """Where the training data and any fixed validation data of `data_dir` are.

    A training folder (`train/` or `training/`, any case, as `SPLIT_FOLDER_NAMES`
    says) with a validation folder (`val/`, `valid/` or `validation/`) is a
    fixed split; a training folder alone holds all the data; without one,
    `data_dir` itself does. Two folders of one role (`val/` and `valid/`) are
    an error, and so are class folders that are all split folders holding
    folders (`data_dir/val/<class>/` without a training folder, or
    `train/train/<class>/`): read as classes, they would teach the model which
    split a file is in.

    Returns:
        (training folder, validation folder or None).
    """
    folders = _subfolders(data_dir)
    train = _split_folder(data_dir, "training", folders)
    validation = None
    if train is None:
        train = data_dir
    else:
        validation = _split_folder(data_dir, "validation", folders)
    _check_classes_are_not_splits(data_dir, train)
    return train, validation


def _check_classes_are_not_splits(data_dir: str, root: str) -> None:
    """Raises a ConfigError when the class folders of `root` are all split folders that hold only folders."""
    classes = _subfolders(root)
    # A split-named class folder holding files may be a real class; one holding only folders is a split.
    if not classes or not all(_role_of(name) and _holds_only_folders(os.path.join(root, name)) for name in classes):
        return
    raise ConfigError(
        f"The class folders of {root!r} are all named like data splits and hold folders: read as classes, the "
        "model would learn which split a file is in. Expected data_dir/<training folder>/<class>/<file>, the "
        f"training folder named {split_folder_spellings('training')} (any case), with fixed validation data beside "
        f"it in {split_folder_spellings('validation')} (the same class folders) and test data in "
        f"{split_folder_spellings('test')}; or data_dir/<class>/<file>, split by validation_split. Rename the "
        "folder of training data so, or pass the folder that holds the split folders as data_dir. Received: "
        f"data_dir={data_dir!r} with class folders {[f'{name}/' for name in classes]} in {root!r}"
    )


def _holds_only_folders(folder: str) -> bool:
    names = visible_names(folder)
    return bool(names) and all(tf.io.gfile.isdir(os.path.join(folder, name)) for name in names)


def test_folder(data_dir: str) -> str | None:
    """`data_dir`'s test folder (`test/`, any case) when `data_dir` also has a training folder: held-out data that
    training leaves alone (it reads only a validation folder as fixed validation data) and evaluation reads when
    there is no validation folder."""
    folders = _subfolders(data_dir)
    if _split_folder(data_dir, "training", folders) is None:
        return None
    return _split_folder(data_dir, "test", folders)
