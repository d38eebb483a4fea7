"""`build_image_classifier`: a pretrained backbone plus a Dense head, as a plain `keras.Model`."""

import os

import keras
from absl import logging

from tfxfer import augmentation as augmentation_lib
from tfxfer import heads, layer_names
from tfxfer.backbones import BackbonePreprocessing, backbone_from_model, create_backbone, get_backbone_spec
from tfxfer.backbones.registry import check_input_shape
from tfxfer.errors import ConfigError



def build_image_classifier(
    backbone: str | keras.Model | os.PathLike,
    num_classes: int,
    *,
    weights: str | None = "imagenet",
    image_size: int | tuple[int, int] | None = None,
    alpha: float | None = None,
    backbone_output_layer: str | None = None,
    preprocessing: str | None = None,
    multi_label: bool = False,
    pooling: str = "avg",
    dropout: float = 0.2,
    augmentation: bool | keras.Layer = True,
    seed: int | None = None,
    safe_mode: bool = True,
) -> keras.Model:
    """Builds an image classifier that takes raw images with values in [0, 255].

    The model is `images -> augmentation -> preprocessing -> backbone -> pooler
    -> dropout -> predictions`. The backbone is always called with
    `training=False`, so its BatchNorm layers use their moving statistics in both
    training phases, as fine-tuning on small data requires.

    Args:
        backbone: str, `keras.Model` or path. A name from `tfxfer.list_backbones()`,
            or your own pretrained model (object or `.keras` file).
        num_classes: int. Number of classes (2 gives one sigmoid unit).
        weights: str. `"imagenet"`, None (random init) or a path to a weights
            file, as in `keras.applications`. Registry backbones only.
        image_size: int or (height, width). Input size; defaults to the
            backbone's own (its input shape, for your own model).
        alpha: float. Width multiplier of the MobileNet families.
        backbone_output_layer: str. For your own model: the layer whose output
            becomes the features (the model is cut there).
        preprocessing: str. For your own model: `"tf"`, `"torch"`, `"caffe"` or
            `"none"` (default: the model takes [0, 255] pixels as they are).
        multi_label: bool. Independent sigmoid per class.
        pooling: str. `"avg"` or `"max"` pooling of the feature map, or
            `"flatten"` to keep its spatial layout (small inputs).
        dropout: float. Dropout rate before the Dense head.
        augmentation: bool or layer. True adds `default_image_augmentation()`,
            a layer adds that layer, False adds none. Active only in training.
        seed: int. Seed for the augmentation layers.
        safe_mode: bool. For your own `.keras` file: load it in Keras' safe
            mode, which refuses `Lambda` layers holding Python code. Pass False
            only for files you trust.

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
    height, width = backbone_model.input_shape[1:3]
    inputs = keras.Input(shape=(height, width, 3), name=layer_names.INPUTS)
    x = inputs
    if augmentation is True:
        x = augmentation_lib.default_image_augmentation(seed=seed)(x)
    elif augmentation:
        x = augmentation(x)
    x = BackbonePreprocessing(mode, name=layer_names.PREPROCESSING)(x)
    x = backbone_model(x, training=False)
    outputs = heads.classification_head(x, num_classes, multi_label=multi_label, dropout=dropout, pooling=pooling)
    model = keras.Model(inputs, outputs, name=f"{backbone_name}_classifier")
    logging.info(
        "Built %s: input %dx%d, %d classes (%s head), %d parameters.",
        model.name, height, width, num_classes, heads.head_kind(model).value, model.count_params(),
    )
    return model


def _make_backbone(backbone, *, weights, image_size, alpha, output_layer, preprocessing, safe_mode):
    """Returns (backbone model, preprocessing mode, display name)."""
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if isinstance(backbone, str) and not backbone.endswith(".keras"):
        if output_layer is not None or preprocessing is not None:
            raise ConfigError(
                "backbone_output_layer and preprocessing apply only to your own "
                "model; registry backbones bring their own. "
                f"Received: backbone={backbone!r}"
            )
        spec = get_backbone_spec(backbone)
        input_shape = (*size, 3) if size else None
        model = create_backbone(backbone, input_shape=input_shape, weights=weights, alpha=alpha)
        return model, spec.preprocessing, spec.name
    model = backbone_from_model(backbone, output_layer, safe_mode=safe_mode)
    if size:
        _check_own_model_size(model, size, image_size)
    if model.input_shape[-1] != 3:
        raise ConfigError(
            "Your backbone must take RGB images (3 channels). "
            f"Received: input_shape={model.input_shape}"
        )
    return model, preprocessing or "none", "custom"


def default_image_size(backbone: str | keras.Model) -> int:
    """The input size a backbone expects: its registry default, or your model's input height."""
    if isinstance(backbone, str):
        return get_backbone_spec(backbone).default_image_size
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
            model, a size other than its input size.

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
        _check_own_model_size(backbone, size, image_size)
    return image_size


def _check_own_model_size(model: keras.Model, size: tuple, image_size) -> None:
    if tuple(model.input_shape[1:3]) != tuple(size):
        raise ConfigError(
            f"Your backbone takes {model.input_shape[1:3]} images; image_size must "
            f"match it or be left out. Received: image_size={image_size}"
        )
