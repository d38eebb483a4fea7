"""Finding and preparing a TFDS dataset, with errors that say what to do offline.

Shared by the image and text TFDS loaders; each passes `alternative`, the way
to train without TFDS that its error messages suggest.
"""

import tensorflow_datasets as tfds

from tfxfer.errors import ConfigError, UnavailableOfflineError


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
    try:
        builder.download_and_prepare()
    # Network errors, missing optional packages, manual-download datasets and
    # checksum failures all surface here with different types; for each the
    # remedy is the same: prepare the data where that works and copy it.
    except Exception as err:  # pylint: disable=broad-except
        raise UnavailableOfflineError(f"{message} Download failed with: {err!r}") from err
    return builder
