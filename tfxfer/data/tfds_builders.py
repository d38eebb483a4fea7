"""Finding and preparing a TFDS dataset, with errors that say what to do offline,
choosing the split (or share of train) to validate on, and the features a dataset suggests as input and label.

Shared by the image and text TFDS loaders; each passes `alternative`, the way
to train without TFDS that its error messages suggest.
"""

from collections.abc import Callable

import tensorflow_datasets as tfds
from absl import logging

from tfxfer.data.constants import DEFAULT_VALIDATION_SPLIT
from tfxfer.errors import ConfigError, UnavailableOfflineError

# What a dataset lacks when a loader finds nothing to validate on, for its "No validation data" warning.
NO_VALIDATION_SPLIT = "no labelled validation or test split"


def prepared_builder(name: str, data_dir: str | None, download: bool, alternative: str) -> tfds.core.DatasetBuilder:
    """The builder of TFDS dataset `name`, prepared (downloading if allowed and needed).

    Args:
        name: str. TFDS name, e.g. `"tf_flowers"` or `"glue/sst2"`.
        data_dir: str. Where prepared TFDS data lives; None for TFDS's default.
        download: bool. Whether to download and prepare data that is missing.
        alternative: str. How to train without TFDS, ending the error messages,
            e.g. "use load_image_folders with a folder of class sub-folders".
    """
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        # TFDS's own message lists every registered dataset, hundreds of lines.
        raise ConfigError(
            f"Unknown TFDS dataset {name!r}. Check the spelling against `tfds.list_builders()` or "
            f"https://www.tensorflow.org/datasets/catalog, or {alternative}. Received: name={name!r}"
        ) from err
    if builder.is_prepared():
        return builder
    message = (
        f"TFDS dataset {name!r} is not prepared in data_dir={data_dir!r} (looked in {str(builder.data_dir)!r}) "
        "and could not be downloaded; this machine may have no internet access. Prepare it on a "
        f"machine with internet, with `tfds build {name} --data_dir=DIR` or "
        f"`tfds.load({name!r}, data_dir=DIR)` once, copy DIR to this machine and pass it as data_dir. "
        f"Or {alternative} instead."
    )
    if not download:
        raise UnavailableOfflineError(f"{message} (download=False.)")
    # Offline, TFDS retries its downloads for minutes before it fails: say what is being waited for.
    logging.info("TFDS dataset %r is not prepared in %r: downloading and preparing it, which needs internet access "
                 "(without it, TFDS retries for a few minutes before this fails; download=False fails at once).",
                 name, str(builder.data_dir))
    try:
        builder.download_and_prepare()
    # Network errors, missing optional packages, manual-download datasets and
    # checksum failures all surface here with different types; for each the
    # remedy is the same: prepare the data where that works and copy it.
    except Exception as err:  # pylint: disable=broad-except
        raise UnavailableOfflineError(f"{message} Download failed with: {err!r}") from err
    return builder


def validation_split_name(
    builder: tfds.core.DatasetBuilder, name: str, validation_split: float | None,
    is_labelled: Callable[[str], bool] = lambda split: True,
) -> str | None:
    """The builder's split to validate on; None to hold out part of `train` instead (or, with
    `validation_split=0`, to validate on nothing).

    With a share as `validation_split`, None. Else (None or 0) the builder's
    `validation` split, else its `test` split (with a warning: it then no
    longer gives an unbiased final score), skipping a split that is not
    `is_labelled` (GLUE's `test`, all -1); else None, logging that
    `DEFAULT_VALIDATION_SPLIT` of `train` is held out (None) or that all of
    `train` is trained on, without validation (0).

    Raises:
        ConfigError: the builder has no `train` split.
    """
    splits = builder.info.splits
    if "train" not in splits:
        raise ConfigError(f"TFDS dataset {name!r} has no 'train' split to train on. Received splits: {sorted(splits)}")
    if validation_split:
        return None
    for split in ("validation", "test"):
        if split not in splits:
            continue
        if not is_labelled(split):
            logging.info("TFDS dataset %r: its %r split has no labelled examples; not validating on it.", name, split)
            continue
        if split == "test":
            logging.warning("TFDS dataset %r has no validation split; validating on its test split, which then "
                            "no longer gives an unbiased final score. Pass validation_split to hold out part of "
                            "train instead.", name)
        else:
            logging.info("TFDS dataset %r: validating on its %r split.", name, split)
        return split
    if validation_split is None:
        logging.info("TFDS dataset %r has no labelled validation or test split; holding out %.0f%% of train "
                     "for validation.", name, 100 * DEFAULT_VALIDATION_SPLIT)
    else:
        logging.info("TFDS dataset %r has no labelled validation or test split, and validation_split=0 holds out "
                     "none of train: training on all of it, without validation.", name)
    return None


def holds_out_none(validation_split: float | None) -> bool:
    """Whether `validation_split` is 0: no share of `train` held out, and (without a labelled validation or test
    split of the builder's own) no validation data. The loaders check it as None, since `check_loader_args`
    takes a share or None; False stays an error there."""
    return validation_split == 0 and not isinstance(validation_split, bool)


def held_out_share(validation_split: float | None, validation_name: str | None) -> float | None:
    """The share of `train` a loader holds out for validation: None when it validates on the builder's split
    `validation_name` (`validation_split_name`) or when `validation_split` is 0 (`holds_out_none`); else
    `validation_split`, or `DEFAULT_VALIDATION_SPLIT` when that is None."""
    if validation_name is not None or holds_out_none(validation_split):
        return None
    return validation_split or DEFAULT_VALIDATION_SPLIT


def validation_source(validation_name: str | None, validation_split: float | None) -> str:
    """Where the validation examples come from, for messages: the builder's split (or the loader's own words for
    its held-out share) quoted, else `validation_split` of train, else none."""
    if validation_name:
        return repr(validation_name)
    return f"{validation_split:g} of 'train'" if validation_split else "none"


def default_feature_keys(info: tfds.core.DatasetInfo,
                         is_input: Callable[[tfds.features.FeatureConnector], bool]) -> tuple[str | None, str | None]:
    """The (input, label) feature names a dataset suggests, unchecked: its supervised keys when they are a pair
    of names, else its only feature `is_input` accepts and its only ClassLabel feature (None where a dataset has
    not exactly one)."""
    keys = info.supervised_keys
    if isinstance(keys, (tuple, list)) and len(keys) == 2 and all(isinstance(key, str) for key in keys):
        return tuple(keys)
    features = dict(info.features.items())
    inputs = [key for key, feature in features.items() if is_input(feature)]
    labels = [key for key, feature in features.items() if isinstance(feature, tfds.features.ClassLabel)]
    return (inputs[0] if len(inputs) == 1 else None), (labels[0] if len(labels) == 1 else None)
