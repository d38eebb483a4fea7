"""`backbone_from_model`: your own pretrained model as a backbone.

The classic flow: pretrain on task A, then fine-tune on task B from the
features of A's model, cut at the layer you choose.
"""

import difflib
import os
import re

import keras
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError, MissingFileError
from tfxfer.models.backbones.registry import BACKBONE_NAME

# Long layer lists are cut in the error message, keeping both ends: the
# candidates for a feature layer are usually among the last ones.
_MAX_LISTED_LAYERS = 30


def backbone_from_model(
    model: keras.Model | str | os.PathLike,
    output_layer: str | None = None,
    *,
    safe_mode: bool = True,
) -> keras.Model:
    """Turns a Keras model (or a `.keras` file) into a backbone named `"backbone"`.

    The result shares its layers, and so its weights, with the source model.
    It takes the source model's input as it is: if that model preprocessed its
    own images, keep feeding it [0, 255] pixels (preprocessing mode `"none"`).

    Args:
        model: `keras.Model`, str or path. The model, or a `.keras` file saved
            with `model.save()`.
        output_layer: str. Name of the layer whose output becomes the features,
            e.g. the layer before the classification head. None uses the whole
            model's output.
        safe_mode: bool. Load a `.keras` file in Keras' safe mode, which refuses
            `Lambda` layers holding Python code (loading them would run that
            code). Pass False only for files you trust, e.g. saved yourself.

    Returns:
        A functional `keras.Model` named `"backbone"` whose output is a feature
        map `(N, H, W, C)` or a feature vector `(N, C)`.

    Raises:
        MissingFileError: `model` is a path that does not exist (a `FileNotFoundError`).
        ConfigError: the path is not a `.keras` file, the file holds Python
            code and `safe_mode` is True, `output_layer` is not a layer of the
            model, or the output is neither 4D nor 2D.

    Example:

    ```python
    backbone = tfxfer.backbone_from_model("task_a.keras", output_layer="pooler")
    model = tfxfer.build_image_classifier(backbone, num_classes=3)
    ```
    """
    if isinstance(model, (str, os.PathLike)):
        model = _load(os.fspath(model), safe_mode)
    if not isinstance(model, keras.Model):
        raise TypeError(
            "model must be a keras.Model or the path to a .keras file. "
            f"Received: model of type {type(model).__name__}"
        )
    inputs, outputs = _graph_ends(model, output_layer)
    backbone = keras.Model(inputs, outputs, name=BACKBONE_NAME)
    _check_features(backbone, output_layer)
    logging.info(
        "Built backbone from model %r (output_layer=%s): input_shape=%s, output_shape=%s, %d parameters.",
        model.name, output_layer, backbone.input_shape, backbone.output_shape, backbone.count_params(),
    )
    return backbone


def with_input_size(backbone: keras.Model, size: tuple[int, int]) -> keras.Model:
    """`backbone` taking `(height, width)` images: for a backbone whose input leaves its size open (None).

    A classifier needs one input size: its export resizes the images it serves
    to it, and a flattened feature map has a size only then. The result is the
    same graph of the same layers (so the same weights) on a `(height, width,
    channels)` input, named as `backbone` is; a backbone of that size already
    is returned as it is.

    Args:
        backbone: keras.Model. A functional backbone (see `backbone_from_model`).
        size: (int, int). The (height, width) to take.

    Raises:
        ConfigError: the backbone's layers cannot take images of that size
            (e.g. too small for its strided convolutions).
    """
    shape = backbone.input_shape
    if tuple(shape[1:3]) == tuple(size):
        return backbone
    source = backbone.inputs[0]
    inputs = keras.Input((*size, shape[3]), dtype=source.dtype, name=source.name)
    try:
        # A clone whose `clone_function` returns each layer itself: the layers are shared, not copied.
        return keras.models.clone_model(backbone, input_tensors=inputs, clone_function=lambda layer: layer)
    except ValueError as error:
        raise ConfigError(
            f"Your backbone cannot take {size[0]}x{size[1]} images: {_keras_reason(error)} Pass a larger "
            f"image_size (recipes: --image_size). Received: image_size={tuple(size)}"
        ) from error


def _keras_reason(error: ValueError) -> str:
    # Keras wraps a layer's error in "Exception encountered when calling ...", its arguments and
    # terminal colour codes; the line about shapes says what went wrong.
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    return next((line for line in lines if "shape" in line.lower()), lines[0] if lines else type(error).__name__)


def _load(path: str, safe_mode: bool) -> keras.Model:
    if not path.endswith(".keras"):
        raise ConfigError(
            "A model path must be a .keras file saved with model.save(); for a "
            "SavedModel or .h5 file, load it yourself and pass the keras.Model. "
            f"Received: model={path!r}"
        )
    if not tf.io.gfile.exists(path):  # any filesystem TensorFlow reads (gs://...), as Keras' loader does
        raise MissingFileError(
            "Model file not found. Expected an existing .keras file; check the path. "
            f"Received: model={path!r}")
    try:
        # compile=False: the optimizer and loss of task A are of no use for task B.
        return keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    except ValueError as error:
        # Keras' own refusal names `safe_mode` but neither tfxfer's flag nor the risk in plain words.
        if not safe_mode or "safe_mode" not in str(error):
            raise
        raise ConfigError(
            f"Refusing to load {path!r}: it contains a Lambda layer (or other Python code stored in "
            "the file), which loading would run, so a file from someone else could run any code on "
            "this machine. Expected: a .keras file without Lambda layers. Only if you trust the file "
            "(e.g. you saved it yourself), pass safe_mode=False (recipes: --nosafe_mode). "
            f"Received: model={path!r}, safe_mode=True. Keras said: {error}"
        ) from error


def _graph_ends(model: keras.Model, output_layer: str | None):
    """The (inputs, outputs) of the functional graph to cut out of `model`."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise ConfigError(
            "The model must be functional or a built Sequential model (subclassed "
            "models have no graph to cut). Received: model of type "
            f"{type(model).__name__}"
        )
    if len(inputs) != 1:
        raise ConfigError(
            f"A backbone takes one image input. Received: a model with {len(inputs)} inputs"
        )
    if output_layer is None:
        if len(outputs) != 1:
            raise ConfigError(
                f"The model has {len(outputs)} outputs; pick the features with "
                "output_layer. Received: output_layer=None"
            )
        return inputs[0], outputs[0]
    return inputs[0], _output_in_graph(_layer(model, output_layer))


def _output_in_graph(layer: keras.layers.Layer):
    # A nested model's own `output` ends its inner graph, which is not connected
    # to the enclosing model's input (a tfxfer classifier nests its "backbone").
    # What we want is the output of its call in the enclosing model, which is
    # what `Operation.output` gives for any other layer.
    if isinstance(layer, keras.Model):
        return keras.Operation.output.fget(layer)
    return layer.output


def _layer(model: keras.Model, name: str) -> keras.layers.Layer:
    names = [layer.name for layer in model.layers]
    if name in names:
        return model.get_layer(name)
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    raise ConfigError(
        f"Model {model.name!r} has no layer named {name!r}.{hint} Its layers: "
        f"{_format_names(names)}. Received: output_layer={name!r}"
    )


def _format_names(names: list[str]) -> str:
    if len(names) <= _MAX_LISTED_LAYERS:
        return ", ".join(names)
    head, tail = names[:10], names[-(_MAX_LISTED_LAYERS - 10):]
    skipped = len(names) - len(head) - len(tail)
    return ", ".join(head) + f", ... ({skipped} more) ..., " + ", ".join(tail)


def _check_features(backbone: keras.Model, output_layer: str | None) -> None:
    shape = backbone.output_shape
    if len(shape) in (2, 4):
        _warn_if_class_scores(backbone, output_layer)
        return
    raise ConfigError(
        "A backbone must output a feature map (N, H, W, C) or a feature vector "
        f"(N, C); pick another output_layer. Received: output_layer={output_layer!r} "
        f"with output shape {shape}"
    )


def _warn_if_class_scores(backbone: keras.Model, output_layer: str | None) -> None:
    """Warns when the features are a classifier's scores (its last layer ends in softmax or sigmoid): a whole
    classifier passed without `output_layer` gives the new head task A's few probabilities to read, not features."""
    last = backbone.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    if activation not in ("softmax", "sigmoid"):
        return
    before = [layer.name for layer in backbone.layers[-3:-1] if not isinstance(layer, keras.layers.InputLayer)]
    logging.warning(
        "The backbone's features are the %s scores of its last layer, %r (%d values): the new head would read "
        "another task's probabilities. Pass output_layer= (recipes: --backbone_output_layer) with the layer "
        "before the old head, e.g. one of %s. Received: output_layer=%r",
        activation, last.name, backbone.output_shape[-1], before, output_layer)
