"""Data loading: image folders, text files and TFDS datasets, ready for `fit`."""

from tfxfer.data.image_folders import IMAGE_EXTENSIONS
from tfxfer.data.image_folders import load_image_folders
from tfxfer.data.pipeline import ImageDatasets
from tfxfer.data.text_data import TextDatasets, load_text_data
from tfxfer.data.text_tfds import load_tfds_text
from tfxfer.data.tfds_images import load_tfds_images

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageDatasets",
    "TextDatasets",
    "load_image_folders",
    "load_text_data",
    "load_tfds_images",
    "load_tfds_text",
]
