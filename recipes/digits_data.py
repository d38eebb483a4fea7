"""scikit-learn's bundled handwritten digits as a two-task transfer problem, offline.

The source task is digits 0-4 with every label; the target task is digits 5-9
with only a few labels per class, the rest of 5-9 held out for validation. The
8x8 grey images are scaled to [0, 255] RGB and upsampled to the 32x32 minimum
of keras.applications backbones.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfxfer.data import image_ops

IMAGE_SIZE = 32
SOURCE_DIGITS = (0, 1, 2, 3, 4)
TARGET_DIGITS = (5, 6, 7, 8, 9)


@dataclasses.dataclass
class ArraySplit:
    images: np.ndarray  # (N, 32, 32, 3) float32 in [0, 255]
    labels: np.ndarray  # (N,) int32, 0-based within the task

    def dataset(self, batch_size: int, *, shuffle_seed: int | None = None) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((self.images, self.labels))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(self.labels), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class DigitsTransferTask:
    source_train: ArraySplit
    source_validation: ArraySplit
    target_train: ArraySplit
    target_validation: ArraySplit
    target_class_names: list[str]


def labels_per_class_range(labels: np.ndarray | None = None) -> range:
    """The `labels_per_class` values the target task takes: from 1 to one fewer than the images of its smallest
    class (digit 8's 174), so that every class keeps an image for validation.

    labels: np.ndarray. The digits' labels; read from scikit-learn's digits if None.
    """
    if labels is None:
        from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

        labels = load_digits().target
    return range(1, min(int(np.sum(labels == digit)) for digit in TARGET_DIGITS))


def load_digits_transfer(labels_per_class: int = 10, seed: int = 0) -> DigitsTransferTask:
    """Splits the digits into the source task and a few-label target task.

    Args:
        labels_per_class: int. Labelled target examples per class (`labels_per_class_range()`).
        seed: int. Seed of every split.
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    digits = load_digits()
    labels = digits.target.astype(np.int32)
    allowed = labels_per_class_range(labels)
    if labels_per_class not in allowed:
        raise ValueError(f"labels_per_class must be an int from {allowed.start} to {allowed.stop - 1}. "
                         f"Received: labels_per_class={labels_per_class}")
    images = _to_rgb_images(digits.images)
    rng = np.random.default_rng(seed)

    source = np.isin(labels, SOURCE_DIGITS)
    source_index = rng.permutation(np.flatnonzero(source))
    cut = int(0.8 * len(source_index))
    target_train_index, target_validation_index = [], []
    for digit in TARGET_DIGITS:
        index = rng.permutation(np.flatnonzero(labels == digit))
        target_train_index.extend(index[:labels_per_class])
        target_validation_index.extend(index[labels_per_class:])

    def split(index, offset):
        index = np.asarray(index)
        return ArraySplit(images[index], labels[index] - offset)

    return DigitsTransferTask(
        source_train=split(source_index[:cut], SOURCE_DIGITS[0]),
        source_validation=split(source_index[cut:], SOURCE_DIGITS[0]),
        target_train=split(rng.permutation(target_train_index), TARGET_DIGITS[0]),
        target_validation=split(target_validation_index, TARGET_DIGITS[0]),
        target_class_names=[str(digit) for digit in TARGET_DIGITS],
    )


def _to_rgb_images(grey: np.ndarray) -> np.ndarray:
    # sklearn's digits are 0..16 intensities; scale to 0..255 like a photo.
    pixels = (grey.astype(np.float32) * (255.0 / 16.0))[..., np.newaxis]
    resized = image_ops.resize_image(tf.constant(pixels), (IMAGE_SIZE, IMAGE_SIZE)).numpy()
    return np.repeat(resized, 3, axis=-1)
