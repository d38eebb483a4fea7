"""`ImageClassifier` and `build_image_classifier`: a pretrained backbone plus a Dense head."""

import numbers
import os

import keras
from absl import logging

from tfxfer.defaults import ImageDefaults
from tfxfer.errors import ConfigError
from tfxfer.models import augmentation as augmentation_lib
from tfxfer.models import classifier, layer_names
from tfxfer.models.backbones import (
    BackbonePreprocessing,
    backbone_from_model,
    create_backbone,
    get_backbone_spec,
)
from tfxfer.models.backbones.custom import with_input_size
from tfxfer.models.backbones.registry import PRETRAINED, check_input_shape

_DEFAULTS = ImageDefaults()


@keras.saving.register_keras_serializable(package="tfxfer")
class ImageClassifier(classifier.Classifier):
    """Raw images in [0, 255] to class probabilities; saves and reloads whole.

    The model is `images -> augmentation -> preprocessing -> backbone -> pooler
    -> predictions`, with `dropout` before `predictions` when its rate is above 0.
    The backbone is always called with `training=False`, so its BatchNorm layers
    use their moving statistics in both training phases, as fine-tuning on small
    data requires.

    With `test_time_flip`, every call but a training one (`predict`, `evaluate`,
    validation during `fit`, the SavedModel and TFLite exports) averages each
    image's probabilities with those of its mirror image, at twice the compute.
    Training steps see each image once, and phase 1 on cached features
    validates its head on the images as they are.

    Args:
        backbone: keras.Model. Images `(N, H, W, 3)` of one size to a feature
            map or vector; see `create_backbone` and `backbone_from_model`. A
            backbone whose input size is open (None) is refused: build the
            classifier with `build_image_classifier(backbone, ..., image_size=...)`,
            which fixes it.
        num_classes: int. Number of classes (2 gives one sigmoid unit).
        preprocessing: str. How [0, 255] pixels become the backbone's input
            (`BackbonePreprocessing` mode: `"tf"`, `"torch"`, `"caffe"`, `"none"`).
        augmentation: keras.Layer or None. Random augmentation, active only in training.
        pooling: str. `"avg"`, `"max"` or `"flatten"` of the feature map.
        dropout: float. Dropout rate before the Dense head; 0 (default) leaves it out.
        multi_label: bool. Independent sigmoid per class.
        backbone_name: str. The backbone's registry name, or `"custom"`.
        test_time_flip: bool. Average the predictions for each image and its
            mirror image outside training: for models trained with horizontal flips.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Use `build_image_classifier` to build one from a backbone name.

    Example:

    ```python
    backbone = tfxfer.create_backbone("resnet50")  # ImageNet weights
    model = tfxfer.ImageClassifier(backbone, 5, preprocessing="caffe", backbone_name="resnet50")
    model.save("flowers.keras")  # keras.models.load_model gives an ImageClassifier back
    ```
    """

    task = classifier.IMAGE
    LAYER_ARGUMENTS = ("backbone", "augmentation")

    def __init__(self, backbone, num_classes=None, *, preprocessing="none", augmentation=None, pooling="avg",
                 dropout=_DEFAULTS.dropout, multi_label=False, backbone_name="custom", tasks=None,
                 test_time_flip=False, **kwargs):
        _check_fixed_size(backbone)
        self.augmentation = augmentation
        inputs = keras.Input(shape=(*backbone.input_shape[1:3], 3), name=layer_names.INPUTS)
        x = augmentation(inputs) if augmentation is not None else inputs
        x = BackbonePreprocessing(preprocessing, name=layer_names.PREPROCESSING)(x)
        features = backbone(x, training=False)
        super().__init__(inputs=inputs, features=features, backbone=backbone, num_classes=num_classes,
                         multi_label=multi_label, pooling=pooling, dropout=dropout, backbone_name=backbone_name,
                         tasks=tasks, **kwargs)
        self.preprocessing = preprocessing
        self.test_time_flip = test_time_flip

    def call(self, inputs, training=None, mask=None, **kwargs):
        outputs = super().call(inputs, training=training, mask=mask, **kwargs)
        if training or not self.test_time_flip:
            return outputs
        mirrored = super().call(keras.ops.flip(inputs, axis=2), training=training, mask=mask, **kwargs)
        # A multi-task model's outputs are a dict of probabilities: each is averaged with its own.
        return keras.tree.map_structure(lambda image, mirror: (image + mirror) / 2, outputs, mirrored)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the images the model takes."""
        return tuple(self.input_shape[1:3])

    def get_config(self) -> dict:
        return {**super().get_config(), "preprocessing": self.preprocessing,
                "augmentation": keras.saving.serialize_keras_object(self.augmentation),
                "test_time_flip": self.test_time_flip}


def build_image_classifier(
    backbone: str | keras.Model | os.PathLike,
    num_classes: int | None = None,
    *,
    tasks: dict | None = None,
    weights: str | None = PRETRAINED,
    image_size: int | tuple[int, int] | None = None,
    alpha: float | None = None,
    backbone_output_layer: str | None = None,
    preprocessing: str | None = None,
    multi_label: bool = False,
    pooling: str = "avg",
    dropout: float = _DEFAULTS.dropout,
    augmentation: bool | keras.Layer = True,
    seed: int | None = None,
    safe_mode: bool = True,
    test_time_flip: bool = False,
) -> ImageClassifier:
    """Builds an `ImageClassifier` that takes raw images with values in [0, 255].

    Args:
        backbone: str, `keras.Model` or path. A name from `tfxfer.list_backbones()`,
            or your own pretrained model (object or `.keras` file).
        num_classes: int. Number of classes (2 gives one sigmoid unit).
        tasks: dict. Instead of `num_classes`, a head per task on the shared
            backbone: `{name: class count or tfxfer.Task}`, e.g.
            `{"species": 5, "grade": tfxfer.Task(3, loss_weight=0.5)}`
            (see `tfxfer.tasks`); the model then outputs
            `{name: probabilities}` and trains on a dict of labels.
        weights: str. `"pretrained"` (the backbone's ImageNet weights; `"imagenet"`,
            Keras' name, also works), None (random init) or a path to a weights
            file. Registry backbones only.
        image_size: int or (height, width). Input size; defaults to
            `tfxfer.default_image_size(backbone)`: about 1.4 times the registry
            backbone's pretraining size (320 for 224), or your own model's input size.
            Required for your own model if its input size is open, e.g. built on
            `keras.Input((None, None, 3))`: the classifier takes this size.
        alpha: float. Width multiplier of the MobileNet families.
        backbone_output_layer: str. For your own model: the layer whose output
            becomes the features (the model is cut there).
        preprocessing: str. For your own model: `"tf"`, `"torch"`, `"caffe"` or
            `"none"` (default: the model takes [0, 255] pixels as they are).
        multi_label: bool. Independent sigmoid per class.
        pooling: str. `"avg"` or `"max"` pooling of the feature map, or
            `"flatten"` to keep its spatial layout (small inputs).
        dropout: float. Dropout rate before the Dense head; 0 (default) leaves
            the `dropout` layer out (`tfxfer.defaults.ImageDefaults`).
        augmentation: bool or layer. True adds `default_image_augmentation()`,
            a layer adds that layer, False adds none. Active only in training.
        seed: int. Seed for the augmentation layers.
        safe_mode: bool. For your own `.keras` file: load it in Keras' safe
            mode, which refuses `Lambda` layers holding Python code. Pass False
            only for files you trust.
        test_time_flip: bool. Outside training, average each image's
            probabilities with its mirror image's (`ImageClassifier`), at twice
            the cost of a prediction. For images whose mirror image keeps the
            class, as the default augmentation's flips assume. Off by default:
            it did not gain on held-out training images (benchmarks/README.md).

    Example:

    ```python
    model = tfxfer.build_image_classifier("mobilenet_v2", num_classes=5, weights=None, image_size=96)
    probabilities = model(np.zeros((1, 96, 96, 3), "float32"))
    ```
    """
    backbone_model, mode, backbone_name = _make_backbone(
        backbone, weights=weights, image_size=image_size, alpha=alpha,
        output_layer=backbone_output_layer, preprocessing=preprocessing, safe_mode=safe_mode,
    )
    if augmentation is True:
        augmentation = augmentation_lib.default_image_augmentation(seed=seed)
    model = ImageClassifier(
        backbone_model, num_classes, preprocessing=mode, augmentation=augmentation or None, pooling=pooling,
        dropout=dropout, multi_label=multi_label, backbone_name=backbone_name, tasks=tasks,
        test_time_flip=test_time_flip, name=f"{backbone_name}_classifier")
    logging.info("Built %s: input %dx%d, %s, %d parameters%s.",
                 model.name, *model.image_size, classifier.describe_head(model), model.count_params(),
                 "; predictions average each image with its mirror image" if test_time_flip else "")
    return model


def _make_backbone(backbone, *, weights, image_size, alpha, output_layer, preprocessing, safe_mode):
    """Returns (backbone model, preprocessing mode, display name)."""
    if isinstance(backbone, str) and not backbone.endswith(".keras"):
        if output_layer is not None or preprocessing is not None:
            raise ConfigError(
                "backbone_output_layer and preprocessing apply only to your own "
                "model; registry backbones bring their own. "
                f"Received: backbone={backbone!r}"
            )
        spec = get_backbone_spec(backbone)
        size = (image_size, image_size) if isinstance(image_size, int) else image_size
        size = size or (spec.default_image_size,) * 2  # not create_backbone's default: the pretraining size
        model = create_backbone(backbone, input_shape=(*size, 3), weights=weights, alpha=alpha)
        return model, spec.preprocessing, spec.name
    model = backbone_from_model(backbone, output_layer, safe_mode=safe_mode)
    size = _own_model_size(model, image_size)
    if model.input_shape[-1] != 3:
        raise ConfigError(
            "Your backbone must take RGB images (3 channels). "
            f"Received: input_shape={model.input_shape}"
        )
    return with_input_size(model, size), preprocessing or "none", "custom"


def default_image_size(backbone: str | keras.Model) -> int:
    """The size tfxfer builds a backbone at unless told otherwise: for a registry
    backbone, about 1.4 times the size its ImageNet weights were trained at
    (`BackboneSpec.default_image_size` says why); for your own model, its input height.

    Args:
        backbone: str or keras.Model. A name from `tfxfer.list_backbones()`, or your own model.

    Raises:
        ConfigError: your own model's input leaves the image size open (None),
            as a `keras.applications` model built with `input_shape=(None, None, 3)`
            does: there is no size to infer, so pass `image_size`.

    Example:

    >>> tfxfer.default_image_size("mobilenet_v2")  # pretrained at 224
    320
    >>> tfxfer.default_image_size("efficientnet_v2_s")  # pretrained at 384
    544
    """
    if isinstance(backbone, str):
        return get_backbone_spec(backbone).default_image_size
    if None in backbone.input_shape[1:3]:
        raise _no_size_to_infer(backbone)
    return backbone.input_shape[1]


def resolve_image_size(
    backbone: str | keras.Model, image_size: int | tuple[int, int] | None = None
) -> int | tuple[int, int]:
    """The size to load the images at and build with: `image_size` once the backbone
    is known to take it, or the backbone's default (`default_image_size`).

    Call it before loading data, so that a size the backbone cannot take fails
    before any image is decoded. `build_image_classifier` makes the same checks.

    Args:
        backbone: str or keras.Model. A name from `tfxfer.list_backbones()`, or
            your own model (load a `.keras` file with `backbone_from_model` first).
        image_size: int or (height, width). The size asked for; None for the default.

    Raises:
        ConfigError: an unknown backbone name, a size below the registry
            backbone's minimum (`BackboneSpec.min_image_size`), or, for your own
            model, a size other than its input size, or no size for a model
            whose input size is open (None).

    Example:

    ```python
    size = resolve_image_size("mobilenet_v2", 96)  # 96; 16 would raise: the minimum is 32
    data = tfxfer.load_image_folders("photos/", image_size=(size, size))
    ```
    """
    if image_size is None:
        return default_image_size(backbone)
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    if isinstance(backbone, str):
        check_input_shape(get_backbone_spec(backbone), (*size, 3))
    else:
        # Built at that size and dropped: an open-size model's layers may still not take it (too small).
        with_input_size(backbone, _own_model_size(backbone, image_size))
    return image_size


def _own_model_size(model: keras.Model, image_size) -> tuple[int, int]:
    """The (height, width) to build your own model at: `image_size`, checked against the sides its input
    fixes; without it, its input size, if that is not open (None)."""
    if image_size is None:
        if None in model.input_shape[1:3]:
            raise _no_size_to_infer(model)
        return tuple(model.input_shape[1:3])
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    _check_own_model_size(model, size, image_size)
    return size


def _check_own_model_size(model: keras.Model, size: tuple, image_size) -> None:
    taken = tuple(model.input_shape[1:3])
    if None in taken and not (len(size) == 2 and all(_is_positive_int(side) for side in size)):
        raise ConfigError(
            "image_size must be a positive integer or a (height, width) pair of them, e.g. 224 or (224, 320). "
            f"Received: image_size={image_size!r}"
        )
    if len(size) == len(taken) and all(side is None or side == asked for side, asked in zip(taken, size)):
        return
    raise ConfigError(
        f"Your backbone takes {taken} images; image_size must match it"
        f"{' where it is not None' if None in taken else ' or be left out'}. Received: image_size={image_size}"
    )


def _check_fixed_size(backbone: keras.Model) -> None:
    """Raises a ConfigError for a backbone whose input size is open (None): a classifier takes one size, which
    its export resizes images to and a flattened feature map needs. `ImageClassifier` takes the backbone as it is;
    fixing the size (`with_input_size`) is `build_image_classifier`'s, which checks the size too."""
    if None not in backbone.input_shape[1:3]:
        return
    example = next((side for side in backbone.input_shape[1:3] if side is not None), 224)
    raise ConfigError(
        f"ImageClassifier needs a backbone of one input size, but this one takes images of any size (input shape "
        f"{backbone.input_shape[1:]}). Build the classifier with tfxfer.build_image_classifier(backbone, ..., "
        f"image_size={example}), which builds the backbone at that size, and load the images at that size. "
        f"Received: backbone with input shape {backbone.input_shape}"
    )


def _is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def _no_size_to_infer(model: keras.Model) -> ConfigError:
    example = next((side for side in model.input_shape[1:3] if side is not None), 224)
    return ConfigError(
        f"Your backbone takes images of any size (input shape {model.input_shape[1:]}), so there is no image size "
        f"to infer: pass the size to build the classifier at, e.g. image_size={example} (recipes: "
        f"--image_size={example}), and load the images at that size. Received: image_size=None"
    )
