"""Data loading: image folders, image CSVs, text files and TFDS datasets, ready for `fit`.

The names below load their module on first use, so that importing a light
module of this package (`tfxfer.data.constants`, which `tfxfer.prediction` and
the exporters read) does not load TensorFlow Datasets or the loaders.
"""

import importlib

# Public name -> the module that defines it.
_EXPORTS = {
    "DEFAULT_VALIDATION_SPLIT": "tfxfer.data.constants",
    "IMAGE_EXTENSIONS": "tfxfer.data.constants",
    "LABELS_FILE": "tfxfer.data.constants",
    "Datasets": "tfxfer.data.datasets",
    "ImageDatasets": "tfxfer.data.pipeline",
    "TextDatasets": "tfxfer.data.text_data",
    "check_loader_args": "tfxfer.data.loader_args",
    "load_image_csv": "tfxfer.data.image_csv",
    "load_image_folders": "tfxfer.data.image_folders",
    "load_text_data": "tfxfer.data.text_data",
    "load_tfds_images": "tfxfer.data.tfds_images",
    "load_tfds_text": "tfxfer.data.text_tfds",
    "split_per_class": "tfxfer.data.splits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # Later look-ups skip this function.
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
