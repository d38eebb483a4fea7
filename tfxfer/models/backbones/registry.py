"""The backbone registry: every `keras.applications` family, keyed by a snake_case name.

`create_backbone("efficientnet_b0")` returns the feature extractor
(`include_top=False, pooling=None`) named `"backbone"`, so that the classifier
builder and the freezing code find it with `model.get_layer("backbone")`.
Each `BackboneSpec` also says which input preprocessing its ImageNet weights
expect (see `BackbonePreprocessing`).
"""

import dataclasses
import difflib
import fnmatch
import os
import warnings
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError, MissingFileError, UnavailableOfflineError

BACKBONE_NAME = "backbone"
IMAGENET = "imagenet"
PRETRAINED = "pretrained"

# What the official EfficientNet (B0-B7) ImageNet files store as the variance of
# their input `Normalization` layer: the standard deviations, not their squares
# (tensorflow/tensorflow#49930). See `_match_imagenet_efficientnet_graph`.
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one registered backbone and how to feed it.

    Args:
        name: str. Registry key, snake_case (`"mobilenet_v2"`).
        constructor: callable. The `keras.applications` function that builds it.
        preprocessing: str. What its ImageNet weights expect from [0, 255] RGB
            pixels: `"tf"` (x / 127.5 - 1), `"torch"` (x / 255, then ImageNet
            mean/std), `"caffe"` (RGB->BGR, minus the ImageNet BGR means) or
            `"none"` (the model rescales inside itself).
        pretrained_image_size: int. The size its ImageNet weights were trained at.
        min_image_size: int. The smallest height/width the architecture accepts.
        supports_alpha: bool. Whether it takes a width multiplier `alpha`.

    Example:

    >>> spec = tfxfer.get_backbone_spec("resnet50")
    >>> spec.preprocessing, spec.pretrained_image_size, spec.min_image_size, spec.supports_alpha
    ('caffe', 224, 32, False)
    >>> spec.default_image_size
    320
    """

    name: str
    constructor: Callable[..., keras.Model]
    preprocessing: str
    pretrained_image_size: int
    min_image_size: int = 32
    supports_alpha: bool = False

    @property
    def default_image_size(self) -> int:
        """The size tfxfer fine-tunes at unless told otherwise: 10/7 of
        `pretrained_image_size`, to the nearest multiple of 32 (224 -> 320, 299 -> 416).

        Larger than the pretraining size because ImageNet training crops a random
        8-100 % of each image and scales the crop up, so objects look larger in
        training than in a whole image resized to the same size; fine-tuning at a
        higher resolution closes that gap (Touvron et al., "Fixing the train-test
        resolution discrepancy", 2019; BiT fine-tunes its 224-pretrained models at
        384). On splits of the ants/bees training images, 320 beat 224 for
        MobileNetV2 (`benchmarks/choose_defaults.py`, benchmarks/README.md).
        Multiples of 32 keep every stride-2 stage's feature map whole.
        """
        return 32 * round(self.pretrained_image_size * 10 / 7 / 32)


class ImageNetWeightsUnavailableError(UnavailableOfflineError):
    """The ImageNet weights could not be downloaded (typically: no internet)."""


_apps = keras.applications
# Preprocessing modes as read from each family's `preprocess_input` in
# keras/src/applications; "none" where the model rescales inside itself
# (EfficientNet always; EfficientNetV2, ConvNeXt and MobileNetV3 through their
# default `include_preprocessing=True`).
_SPECS = (
    BackboneSpec("xception", _apps.Xception, "tf", 299, min_image_size=71),
    BackboneSpec("vgg16", _apps.VGG16, "caffe", 224),
    BackboneSpec("vgg19", _apps.VGG19, "caffe", 224),
    BackboneSpec("resnet50", _apps.ResNet50, "caffe", 224),
    BackboneSpec("resnet101", _apps.ResNet101, "caffe", 224),
    BackboneSpec("resnet152", _apps.ResNet152, "caffe", 224),
    BackboneSpec("resnet50_v2", _apps.ResNet50V2, "tf", 224),
    BackboneSpec("resnet101_v2", _apps.ResNet101V2, "tf", 224),
    BackboneSpec("resnet152_v2", _apps.ResNet152V2, "tf", 224),
    BackboneSpec("inception_v3", _apps.InceptionV3, "tf", 299, min_image_size=75),
    BackboneSpec("inception_resnet_v2", _apps.InceptionResNetV2, "tf", 299, min_image_size=75),
    BackboneSpec("mobilenet", _apps.MobileNet, "tf", 224, supports_alpha=True),
    BackboneSpec("mobilenet_v2", _apps.MobileNetV2, "tf", 224, supports_alpha=True),
    BackboneSpec("mobilenet_v3_small", _apps.MobileNetV3Small, "none", 224, supports_alpha=True),
    BackboneSpec("mobilenet_v3_large", _apps.MobileNetV3Large, "none", 224, supports_alpha=True),
    BackboneSpec("densenet121", _apps.DenseNet121, "torch", 224),
    BackboneSpec("densenet169", _apps.DenseNet169, "torch", 224),
    BackboneSpec("densenet201", _apps.DenseNet201, "torch", 224),
    BackboneSpec("nasnet_mobile", _apps.NASNetMobile, "tf", 224),
    BackboneSpec("nasnet_large", _apps.NASNetLarge, "tf", 331),
    BackboneSpec("efficientnet_b0", _apps.EfficientNetB0, "none", 224),
    BackboneSpec("efficientnet_b1", _apps.EfficientNetB1, "none", 240),
    BackboneSpec("efficientnet_b2", _apps.EfficientNetB2, "none", 260),
    BackboneSpec("efficientnet_b3", _apps.EfficientNetB3, "none", 300),
    BackboneSpec("efficientnet_b4", _apps.EfficientNetB4, "none", 380),
    BackboneSpec("efficientnet_b5", _apps.EfficientNetB5, "none", 456),
    BackboneSpec("efficientnet_b6", _apps.EfficientNetB6, "none", 528),
    BackboneSpec("efficientnet_b7", _apps.EfficientNetB7, "none", 600),
    BackboneSpec("efficientnet_v2_b0", _apps.EfficientNetV2B0, "none", 224),
    BackboneSpec("efficientnet_v2_b1", _apps.EfficientNetV2B1, "none", 240),
    BackboneSpec("efficientnet_v2_b2", _apps.EfficientNetV2B2, "none", 260),
    BackboneSpec("efficientnet_v2_b3", _apps.EfficientNetV2B3, "none", 300),
    BackboneSpec("efficientnet_v2_s", _apps.EfficientNetV2S, "none", 384),
    BackboneSpec("efficientnet_v2_m", _apps.EfficientNetV2M, "none", 480),
    BackboneSpec("efficientnet_v2_l", _apps.EfficientNetV2L, "none", 480),
    BackboneSpec("convnext_tiny", _apps.ConvNeXtTiny, "none", 224),
    BackboneSpec("convnext_small", _apps.ConvNeXtSmall, "none", 224),
    BackboneSpec("convnext_base", _apps.ConvNeXtBase, "none", 224),
    BackboneSpec("convnext_large", _apps.ConvNeXtLarge, "none", 224),
    BackboneSpec("convnext_xlarge", _apps.ConvNeXtXLarge, "none", 224),
)
_REGISTRY = {spec.name: spec for spec in _SPECS}


def list_backbones(pattern: str | None = None) -> list[str]:
    """Names of the registered backbones, sorted.

    Args:
        pattern: str. Optional shell-style pattern, as in timm's `list_models`:
            `list_backbones("efficientnet_v2_*")`.

    Example:

    >>> tfxfer.list_backbones("mobilenet*")
    ['mobilenet', 'mobilenet_v2', 'mobilenet_v3_large', 'mobilenet_v3_small']
    """
    names = sorted(_REGISTRY)
    if pattern is None:
        return names
    return fnmatch.filter(names, pattern.lower())


def get_backbone_spec(name: str) -> BackboneSpec:
    """The `BackboneSpec` registered under `name`.

    Args:
        name: str. A name from `list_backbones()`.

    Raises:
        ConfigError: `name` is not registered. The message lists the valid names
            and the closest matches.

    Example:

    >>> spec = tfxfer.get_backbone_spec("mobilenet_v2")
    >>> spec.preprocessing, spec.pretrained_image_size, spec.supports_alpha
    ('tf', 224, True)
    """
    spec = _REGISTRY.get(name)
    if spec is not None:
        return spec
    raise ConfigError(
        f"Unknown backbone.{_did_you_mean(name)}{_model_file_hint(name)} Expected one of: "
        f"{', '.join(list_backbones())}. Received: name={name!r}"
    )


def _model_file_hint(name) -> str:
    """For a legacy Keras model file given as a backbone: how to make it one tfxfer reads."""
    if not str(name).lower().endswith((".h5", ".hdf5")):
        return ""
    return (" A model of your own is read from a .keras file (tfxfer.backbone_from_model; the recipes' --backbone): "
            "load this one with keras.models.load_model and save it again with model.save('backbone.keras').")


def _did_you_mean(name) -> str:
    # Compare without separators too, so "MobileNetV2" finds "mobilenet_v2".
    squashed = {key.replace("_", ""): key for key in _REGISTRY}
    query = str(name).lower().replace("-", "_")
    matches = difflib.get_close_matches(query, list(_REGISTRY), n=3, cutoff=0.6)
    for close in difflib.get_close_matches(query.replace("_", ""), list(squashed), n=3, cutoff=0.8):
        if squashed[close] not in matches:
            matches.insert(0, squashed[close])
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(match) for match in matches[:3]) + "?"


def create_backbone(
    name: str,
    *,
    input_shape: tuple[int, int, int] | None = None,
    weights: str | os.PathLike | None = PRETRAINED,
    alpha: float | None = None,
) -> keras.Model:
    """Builds a registered backbone as a feature extractor named `"backbone"`.

    The model is the `keras.applications` one with `include_top=False` and
    `pooling=None`: it maps images to a 4D feature map `(N, H', W', C)`. Feed it
    images preprocessed with `BackbonePreprocessing(spec.preprocessing)`.

    Args:
        name: str. A name from `list_backbones()`.
        input_shape: tuple. `(height, width, 3)`; defaults to the size the
            ImageNet weights were trained at (`spec.pretrained_image_size`).
        weights: str. `"pretrained"` or `"imagenet"` (Keras' name, the same
            weights), None (random initialization) or the path
            to a weights file (`.weights.h5`, or a legacy `.h5` such as the
            files keras downloads into `~/.keras/models`).
        alpha: float. Width multiplier, MobileNet families only. None keeps
            the constructor's default (1.0).

    Returns:
        A `keras.Model` named `"backbone"`.

    Raises:
        ConfigError: unknown name, `alpha` for a family without it, an input
            smaller than `spec.min_image_size`, or an unusable `weights`
            (including a file saved from another architecture or width).
        MissingFileError: `weights` is a path that does not exist.
        ImageNetWeightsUnavailableError: `weights="imagenet"` and the download
            failed (no internet); the message says how to pass a local file.

    Example:

    ```python
    backbone = tfxfer.create_backbone("mobilenet_v2", input_shape=(96, 96, 3), alpha=0.35)  # ImageNet weights
    preprocess = tfxfer.BackbonePreprocessing(tfxfer.get_backbone_spec("mobilenet_v2").preprocessing)
    features = backbone(preprocess(images))  # images (N, 96, 96, 3) in [0, 255] -> (N, 3, 3, 1280)
    ```
    """
    spec = get_backbone_spec(name)
    kwargs = {"include_top": False, "pooling": None}
    kwargs["input_shape"] = check_input_shape(spec, input_shape)
    kwargs["weights"] = _check_weights(weights)
    if alpha is not None:
        kwargs["alpha"] = _check_alpha(spec, alpha)
    model = _construct(spec, kwargs)
    if kwargs["weights"] not in (None, IMAGENET):
        load_weights_file(model, kwargs["weights"], lambda error: _weights_mismatch(spec, kwargs, error))
    if spec.name.startswith("efficientnet_b") and kwargs["weights"] not in (None, IMAGENET):
        _match_imagenet_efficientnet_graph(model)
    # Renamed after construction, not through the constructor's `name=`: ConvNeXt
    # checks that its name contains the variant and names its cached ImageNet
    # file after it. A new Functional over the same layers (and weights), rather
    # than `model.name = ...`, also gives it a matching `path`.
    model = keras.Model(model.input, model.output, name=BACKBONE_NAME)
    logging.info(
        "Built backbone %r: input_shape=%s, weights=%s, %d parameters.",
        spec.name, kwargs["input_shape"], kwargs["weights"], model.count_params(),
    )
    return model


def check_lora(name, lora_rank) -> None:
    """Raises a `ConfigError` if `lora_rank` asks for LoRA adapters on the registry backbone `name`.

    Every registry backbone is a `keras.applications` convolutional network: Keras
    has no LoRA for convolutions, and tfxfer's LoRA adapts the Dense and
    EinsumDense projections of transformer backbones. This needs the name alone,
    so that a recipe can refuse `--lora_rank` before it decodes any image. Other
    backbones (your own model, a keras-hub one) are not decided here: whether they
    have layers LoRA adapts is told from the built model (`tfxfer.training.lora`).

    Args:
        name: str. The backbone's name (or anything else, e.g. your own model: not refused here).
        lora_rank: int | None. The LoRA rank asked for; None is LoRA off.

    Example:

    >>> check_lora("mobilenet_v2", None)  # LoRA off
    >>> check_lora("my_vit.keras", 8)  # not a registry backbone: decided once the model is built
    """
    if lora_rank is None or not isinstance(name, str) or name not in _REGISTRY:
        return
    raise ConfigError(
        f"LoRA cannot adapt the keras.applications backbone {name!r}: it is a convolutional network, "
        "Keras has no LoRA for convolutions, and tfxfer's LoRA is for transformer backbones (it adapts their "
        "Dense and EinsumDense projections). Leave lora_rank unset (None; in the recipes, no --lora_rank) to "
        f"fine-tune its top layers from fine_tune_at. Received: lora_rank={lora_rank!r}, backbone={name!r}")


def check_input_shape(spec: BackboneSpec, input_shape) -> tuple[int, int, int]:
    """`input_shape` as a tuple if the backbone can take it, else a `ConfigError`.

    Args:
        spec: BackboneSpec. The backbone's registry entry.
        input_shape: tuple. `(height, width, 3)`, or None for the default size.
    """
    if input_shape is None:
        return (spec.pretrained_image_size, spec.pretrained_image_size, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or not all(
        isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) for dim in input_shape
    ):
        raise ConfigError(
            "input_shape must be three integers (height, width, channels), e.g. "
            f"(224, 224, 3). Received: input_shape={input_shape}"
        )
    height, width, _ = input_shape
    if min(height, width) < spec.min_image_size:
        # keras.applications' own minimum for the family (`obtain_input_shape`'s
        # `min_size`): below it the strided layers run out of pixels.
        raise ConfigError(
            f"Backbone {spec.name!r} needs inputs of at least "
            f"{spec.min_image_size}x{spec.min_image_size} pixels; use a larger "
            f"image size (recipes: --image_size; its ImageNet weights were trained at "
            f"{spec.pretrained_image_size}). "
            f"Received: input_shape={input_shape}"
        )
    return tuple(int(dim) for dim in input_shape)


def _check_weights(weights) -> str | None:
    if weights == PRETRAINED:  # tfxfer's one name for "the backbone's own weights", image and text
        return IMAGENET
    if weights is None or weights == IMAGENET:
        return weights
    if not isinstance(weights, (str, os.PathLike)):
        raise ConfigError(
            'weights must be "pretrained" ("imagenet"), None or the path to a weights file (recipes: '
            f"--weights=pretrained, none or FILE; --student_weights for a student). Received: weights={weights!r}"
        )
    path = os.fspath(weights)
    if path.endswith(".keras"):
        raise ConfigError(
            "A .keras file holds a whole model, not backbone weights; pass it to "
            f"tfxfer.backbone_from_model() instead (recipes: as --backbone). Received: weights={path!r}"
        )
    if not path.endswith(".h5"):
        raise ConfigError(
            'weights must be "pretrained" ("imagenet"), None or the path to a .weights.h5 (or legacy '
            ".h5) file (recipes: --weights=pretrained, none or FILE.weights.h5; --student_weights for a student). "
            f"Received: weights={path!r}"
        )
    if not tf.io.gfile.exists(path):  # any filesystem TensorFlow reads (gs://...), as Keras' loader does
        raise MissingFileError(
            "Weights file not found. Check the path, or pass "
            'weights="pretrained" or weights=None (recipes: --weights=pretrained or none; --student_weights for a '
            f"student). Received: weights={path!r}"
        )
    return path


def _check_alpha(spec: BackboneSpec, alpha) -> float:
    if not spec.supports_alpha:
        families = ", ".join(s.name for s in _SPECS if s.supports_alpha)
        raise ConfigError(
            f"Backbone {spec.name!r} has no width multiplier alpha; only {families} "
            f"take one. Leave alpha=None (recipes: leave --alpha out; --student_alpha for a student). "
            f"Received: alpha={alpha}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ConfigError(f"alpha must be a positive number such as 0.35 or 1.0. Received: alpha={alpha!r}")
    return float(alpha)


def _construct(spec: BackboneSpec, kwargs: dict) -> keras.Model:
    # A weights file is loaded by `load_weights_file`, as keras would at the end of
    # the constructor, so that its errors can name the file.
    weights = kwargs["weights"]
    kwargs = {**kwargs, "weights": weights if weights == IMAGENET else None}
    try:
        with warnings.catch_warnings():
            # The MobileNet families warn, for ImageNet weights at a size other than the few they were trained at
            # (tfxfer's default is 1.4x the pretraining size: `default_image_size`), that the 224 weights will be
            # loaded. That is what tfxfer wants: without the top, these networks are fully convolutional, and
            # their weights fit every input size.
            warnings.filterwarnings("ignore", message=r"`?input_shape`? is undefined or non-square",
                                    category=UserWarning)
            return spec.constructor(**kwargs)
    except ValueError as error:
        # keras checks argument combinations of its own, e.g. the alphas its
        # ImageNet files exist for.
        raise ConfigError(
            f"keras.applications.{spec.constructor.__name__} rejects these arguments: {error} "
            f"Received: backbone={spec.name!r}, weights={weights!r}, "
            f"alpha={kwargs.get('alpha')}, input_shape={kwargs['input_shape']}"
        ) from error
    except Exception as error:
        # keras' `file_utils.get_file` turns a failed fetch into a bare
        # `Exception("URL fetch failure on ...")`; socket errors surface as
        # OSError. Anything else is not a download problem.
        if weights != IMAGENET or (type(error) is not Exception and not isinstance(error, OSError)):
            raise
        raise ImageNetWeightsUnavailableError(_offline_message(spec, error)) from error


def load_weights_file(model: keras.Model, path: str | os.PathLike, explain: Callable[[Exception], Exception]) -> None:
    """`model.load_weights(path)`, raising `explain(error)` when the file does not fit the model.

    The errors caught are Keras' ValueError for variables of other shapes or counts
    (another width, size or architecture), KeyError for layers the file lacks and
    OSError for a file that is not HDF5. Before raising, Keras warns once for each
    part of the model it found no weights for (76 warnings for a MobileNetV2 given
    another width's file), each saying that part keeps its initial weights; the
    error `explain` makes says what is wrong instead, so the warnings of a failed
    load are dropped. Those of a load that succeeds are passed on.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except (ValueError, KeyError, OSError) as error:
            raise explain(error) from error
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _weights_mismatch(spec: BackboneSpec, kwargs: dict, error: Exception) -> ConfigError:
    path = kwargs["weights"]
    width = f", alpha={kwargs.get('alpha', 1.0)}" if spec.supports_alpha else ""
    return ConfigError(
        f"The weights file {path!r} does not fit backbone {spec.name!r} "
        f"(keras.applications.{spec.constructor.__name__}{width}, include_top=False): it was "
        "saved from another architecture or width, or is not a Keras weights file. Pass a file "
        f"saved from this backbone{' with this alpha' if spec.supports_alpha else ''} (keras' "
        "own ImageNet file of it, or create_backbone(...).save_weights()), or pick the backbone"
        f"{' and alpha' if spec.supports_alpha else ''} the file was saved from (--backbone"
        f"{', --alpha' if spec.supports_alpha else ''} in the recipes), or use weights=None (recipes: "
        "--weights=none; --student_weights for a student). "
        f"Keras reported: {_first_reason(error)} Received: weights={path!r}"
    )


def _first_reason(error: Exception) -> str:
    # keras' load errors run to pages (every object that failed, with its
    # values); one line about shapes or counts says enough.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = next((line for line in lines if "shape" in line.lower() or "expected" in line.lower()),
                  lines[0] if lines else type(error).__name__)
    reason = reason.split(" Target variable:")[0]
    return reason if len(reason) <= 300 else reason[:297] + "..."


def _offline_message(spec: BackboneSpec, error: Exception) -> str:
    return (
        f"The ImageNet weights of backbone {spec.name!r} could not be downloaded "
        f"(this machine may have no internet access): {error}\n"
        "keras caches downloaded weights in ~/.keras/models (or $KERAS_HOME/models); "
        "copy the file there from a machine that has it, or pass it directly: "
        f'weights="/path/to/<file>.weights.h5" in Python, --weights=/path/to/<file>.weights.h5 '
        "in the recipes (keras' own legacy .h5 files work too). Use weights=None (recipes: "
        "--weights=none) to start from random weights. Received: weights='imagenet'"
    )


def _match_imagenet_efficientnet_graph(model: keras.Model) -> None:
    """Makes an EfficientNet built from a weights file equal to the "imagenet" one.

    With `weights="imagenet"`, keras inserts `Rescaling(1 / sqrt(stddev))` after
    the input `Normalization`, because the official files store the standard
    deviations as its variance; with a path it does not, so the official file
    loaded by path would scale inputs wrongly. Folding that factor into the
    variance gives the same outputs. Only variances equal to the official values
    are changed: weights trained from scratch, or already folded, stay as they are.
    """
    normalization = next(
        (layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)), None
    )
    if normalization is None or not hasattr(normalization, "adapt_variance"):
        return
    variance = keras.ops.convert_to_numpy(normalization.adapt_variance)
    stddev = np.asarray(_IMAGENET_STDDEV_RGB, dtype=variance.dtype)
    if not np.allclose(variance, stddev, atol=1e-6):
        return
    normalization.adapt_variance.assign(stddev * stddev)
    normalization.finalize_state()
    logging.info("Folded the ImageNet stddev rescaling of %s into its Normalization layer.", model.name)
