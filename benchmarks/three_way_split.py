"""A three-way split of an image folder's photos: fit, early stopping, scoring.

With a two-way split, whatever picks by validation loss (early stopping's best epoch, a
choice between the phases' weights) picks on the photos that then score it, and its gain
is biased upwards. `choose_defaults.py --early_stopping_split=F` trains on the fit photos,
gives `fine_tune` the early-stopping photos as its validation data, and scores on the
scoring photos, which nothing chose on.

Both splits are `tfxfer.data.splits.split_per_class` (seeded, stratified): scoring photos first,
then early-stopping photos out of the rest. The folders hold symbolic links to the photos.
"""

import os

import numpy as np

from tfxfer.data.constants import IMAGE_EXTENSIONS
from tfxfer.data.splits import split_per_class


def list_photos(data_dir: str) -> tuple[list[str], list[str], np.ndarray]:
    """(class names, photo paths, their class ids) of the class folders in `data_dir`, in sorted order."""
    class_names = sorted(name for name in os.listdir(data_dir) if not name.startswith("."))
    paths, labels = [], []
    for label, name in enumerate(class_names):
        files = sorted(file for file in os.listdir(os.path.join(data_dir, name))
                       if file.lower().endswith(IMAGE_EXTENSIONS))
        paths += [os.path.join(data_dir, name, file) for file in files]
        labels += [label] * len(files)
    return class_names, paths, np.asarray(labels)


def split_indices(labels: np.ndarray, seed: int, *, early_stopping_split: float,
                  scoring_split: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit, early-stopping, scoring) indices into `labels`: scoring first, then early stopping out of the rest."""
    rest, scoring = split_per_class(labels, scoring_split, seed)
    fit, early_stopping = (rest[part] for part in split_per_class(labels[rest], early_stopping_split, seed))
    return fit, early_stopping, scoring


def make(data_dir: str, out_dir: str, seed: int, *, early_stopping_split: float,
         scoring_split: float = 0.2) -> tuple[str, str]:
    """Links the class folders' photos of `data_dir` into `out_dir`.

    Returns:
        (fit folder, with `train/` and `val/` (the early-stopping photos) inside; scoring folder).
    """
    class_names, paths, labels = list_photos(data_dir)
    fit, early_stopping, scoring = split_indices(labels, seed, early_stopping_split=early_stopping_split,
                                                 scoring_split=scoring_split)
    fit_dir, scoring_dir = os.path.join(out_dir, "fit"), os.path.join(out_dir, "scoring")
    for folder, indices in [(os.path.join(fit_dir, "train"), fit), (os.path.join(fit_dir, "val"), early_stopping),
                            (scoring_dir, scoring)]:
        for index in indices:
            link = os.path.join(folder, class_names[labels[index]], os.path.basename(paths[index]))
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(os.path.abspath(paths[index]), link)
    return fit_dir, scoring_dir
