"""What image and text folders share: which entries count, and where validation data is.

Every listing goes through `tf.io.gfile`, so a data folder may be local or on any
filesystem TensorFlow reads (`gs://`, `ram://`, ...).
"""

import os

import tensorflow as tf

from tfxfer.data.constants import VALIDATION_DIR_NAMES
from tfxfer.errors import ConfigError


def is_hidden(name: str) -> bool:
    """Whether a file or folder name is tool clutter, never data: macOS ".DS_Store"
    and "._photo.jpg" resource forks, ".ipynb_checkpoints/", ".thumbnails/"."""
    return name.rstrip("/").startswith(".")


def visible_names(folder: str) -> list[str]:
    """Sorted names of the entries in `folder`, without hidden ones."""
    # GCS listings end folder names with "/".
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(folder) if not is_hidden(name))


def train_and_validation_folders(data_dir: str) -> tuple[str, str | None]:
    """Where the training data and any fixed validation data of `data_dir` are.

    `data_dir/train/` with `data_dir/val/` or `data_dir/validation/` is a fixed
    split; `train/` alone holds all the data; without `train/`, `data_dir` itself
    does. Both `val/` and `validation/` is an error: neither can be picked
    without guessing which the user meant.

    Returns:
        (training folder, validation folder or None).
    """
    # Names from the listing, not isdir() alone: some filesystems (ram://) call
    # "val" a folder when only "validation/..." exists, as a prefix.
    folders = {name for name in visible_names(data_dir) if tf.io.gfile.isdir(os.path.join(data_dir, name))}
    if "train" not in folders:
        return data_dir, None
    found = [os.path.join(data_dir, name) for name in VALIDATION_DIR_NAMES if name in folders]
    train = os.path.join(data_dir, "train")
    if len(found) > 1:
        raise ConfigError(
            f"{data_dir!r} has both val/ and validation/ folders; keep only one so it is clear which "
            "holds the validation data: merge them into one and delete (or move away) the other. "
            f"Received: {found}"
        )
    return train, (found[0] if found else None)


def test_folder(data_dir: str) -> str | None:
    """`data_dir/test/` when `data_dir` also has `train/`: held-out data that training leaves alone (it reads only
    `val/` or `validation/` as fixed validation data) and evaluation reads when there is no validation folder."""
    if not tf.io.gfile.isdir(os.path.join(data_dir, "train")):
        return None
    test = os.path.join(data_dir, "test")
    return test if tf.io.gfile.isdir(test) else None
