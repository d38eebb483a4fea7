"""Default image augmentation: small geometric changes that keep the label.

The layers live inside the model, so they run only under `training=True`
(`fit`) and are identity at inference and in the exported SavedModel.
"""

import math

import keras

from tfxfer.models import layer_names


@keras.saving.register_keras_serializable(package="tfxfer")
class RandomAffine(keras.layers.Layer):
    """Random rotation, zoom and shift of each image, in one resampling.

    Keras' `RandomRotation`, `RandomZoom` and `RandomTranslation` each resample the
    image: chained, they interpolate (and blur) it three times. This layer draws the
    three with the same ranges as those layers, composes them into one affine map and
    resamples once (`keras.ops.image.affine_transform`): on 2 CPU cores a MobileNetV2
    phase-2 epoch at 320x320 took 2.9 s with it against 4.0 s with the three (benchmarks/README.md,
    "One resampling instead of three").

    Each output pixel `p` is read from the input at `c + s R(a) (p - c) - d`:
    `c` the image centre, `a` an angle in `[-rotation, rotation]` turns, `s` a scale
    in `[1 - zoom, 1 + zoom]` (above 1 shows more of the image, zooming out) and `d`
    a shift of up to `translation` of the width and height.

    Args:
        rotation: float. Max rotation as a fraction of a full turn.
        zoom: float. Max zoom in or out, as a fraction of the image size.
        translation: float. Max shift, as a fraction of the image size.
        fill_mode: str. How points outside the image are filled: `"reflect"`,
            `"wrap"`, `"constant"` or `"nearest"`.
        interpolation: str. `"bilinear"` or `"nearest"`.
        seed: int. Seed of the random draws.

    Example:

    >>> layer = tfxfer.RandomAffine(rotation=0.1, zoom=0.2, translation=0.1, seed=0)
    >>> images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    >>> layer(images, training=True).shape, bool(np.all(layer(images, training=False) == images))
    (TensorShape([2, 8, 8, 3]), True)
    """

    def __init__(self, rotation: float = 0.0, zoom: float = 0.0, translation: float = 0.0, *,
                 fill_mode: str = "reflect", interpolation: str = "bilinear", seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("rotation", rotation), ("zoom", zoom), ("translation", translation)):
            if not 0 <= value < 1:
                raise ValueError(f"RandomAffine's {name} is a fraction in [0, 1). Received: {name}={value!r}")
        self.rotation, self.zoom, self.translation = rotation, zoom, translation
        self.fill_mode, self.interpolation, self.seed = fill_mode, interpolation, seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = False  # XLA has no kernel for the image transform op

    def call(self, images, training=None):
        if not training:
            return images
        unbatched = len(images.shape) == 3
        batch = images[None] if unbatched else images
        shape = keras.ops.shape(batch)
        transformed = keras.ops.image.affine_transform(
            batch, self._transforms(shape[0], shape[1], shape[2]), interpolation=self.interpolation,
            fill_mode=self.fill_mode)
        return transformed[0] if unbatched else transformed

    def _transforms(self, batch_size, height, width):
        """`(batch_size, 8)` projective transforms, output pixel to input pixel, as `affine_transform` takes them."""
        def uniform(limit):
            return keras.random.uniform((batch_size,), -limit, limit, seed=self.seed_generator)

        angle, scale = uniform(self.rotation) * 2 * math.pi, 1 + uniform(self.zoom)
        height, width = keras.ops.cast(height, "float32"), keras.ops.cast(width, "float32")
        shift_x, shift_y = uniform(self.translation) * width, uniform(self.translation) * height
        centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
        cos, sin = scale * keras.ops.cos(angle), scale * keras.ops.sin(angle)
        zeros = keras.ops.zeros_like(angle)
        return keras.ops.stack([cos, -sin, centre_x - cos * centre_x + sin * centre_y - shift_x,
                                sin, cos, centre_y - sin * centre_x - cos * centre_y - shift_y,
                                zeros, zeros], axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "zoom": self.zoom,
                "translation": self.translation, "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "seed": self.seed}


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
    within a few epochs once the top of the backbone trains. A mirror image, then
    one `RandomAffine` resampling for the rotation, zoom and shift.

    Args:
        flip: str. `"horizontal"`, `"vertical"`, `"horizontal_and_vertical"` or None.
        rotation: float. Max rotation as a fraction of a full turn.
        zoom: float. Max zoom in or out, as a fraction of the image size.
        translation: float. Max shift, as a fraction of the image size.
        seed: int. Seed for the random layers.

    Example:

    >>> augmentation = tfxfer.default_image_augmentation(rotation=0.05, seed=0)
    >>> [layer.__class__.__name__ for layer in augmentation.layers]
    ['RandomFlip', 'RandomAffine']

    Pass it on as `tfxfer.build_image_classifier("mobilenet_v2", 5, augmentation=augmentation)`.
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip(flip, seed=seed))
    if rotation or zoom or translation:
        layers.append(RandomAffine(rotation, zoom, translation, seed=seed, name="random_affine"))
    return keras.Sequential(layers, name=layer_names.AUGMENTATION)
