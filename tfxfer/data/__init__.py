"""Image data loading: folders of image files or TFDS datasets, ready for `fit`."""

from tfxfer.data.image_folders import IMAGE_EXTENSIONS
from tfxfer.data.image_folders import load_image_folders
from tfxfer.data.pipeline import ImageDatasets
from tfxfer.data.tfds_images import load_tfds_images

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageDatasets",
    "load_image_folders",
    "load_tfds_images",
]
