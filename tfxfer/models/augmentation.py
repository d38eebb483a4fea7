"""Default image augmentation: small geometric changes that keep the label.

The layers live inside the model, so they run only under `training=True`
(`fit`) and are identity at inference and in the exported SavedModel.
"""

import keras

from tfxfer.models import layer_names


def default_image_augmentation(
    *,
    flip: str | None = "horizontal",
    rotation: float = 0.1,
    zoom: float = 0.2,
    translation: float = 0.1,
    seed: int | None = None,
) -> keras.Sequential:
    """Label-preserving augmentation suited to photos of objects (not to digits or maps).

    Strong enough to matter in phase 2, where a few hundred images are memorised
    within a few epochs once the top of the backbone trains.

    Args:
        flip: str. `"horizontal"`, `"vertical"`, `"horizontal_and_vertical"` or None.
        rotation: float. Max rotation as a fraction of a full turn.
        zoom: float. Max zoom in or out, as a fraction of the image size.
        translation: float. Max shift, as a fraction of the image size.
        seed: int. Seed for the random layers.

    Example:

    >>> augmentation = tfxfer.default_image_augmentation(rotation=0.05, seed=0)
    >>> [layer.__class__.__name__ for layer in augmentation.layers]
    ['RandomFlip', 'RandomRotation', 'RandomZoom', 'RandomTranslation']

    Pass it on as `tfxfer.build_image_classifier("mobilenet_v2", 5, augmentation=augmentation)`.
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip(flip, seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=seed))
    if translation:
        layers.append(keras.layers.RandomTranslation(translation, translation, fill_mode="reflect", seed=seed))
    return keras.Sequential(layers, name=layer_names.AUGMENTATION)
