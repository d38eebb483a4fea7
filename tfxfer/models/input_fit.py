"""Whether data fits a model's inputs: its structure, dtype, batching and image size, from the data's spec.

`fine_tune`'s checks before training (`tfxfer.training.input_checks`) and
`evaluate_model` both ask this before running the model, so that data that
does not fit fails with what to change, not as a shape error inside a step.
"""

import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.models.backbones import registry

# What to do with inputs made for another model (another tokenizer's output).
_OWN_PREPROCESSOR = "tokenize the texts with this model's own preprocessor: data.map_inputs(model.preprocessor)"


def check_inputs(expected, actual, name: str) -> None:
    """Raises a `ConfigError` if data of spec `actual` does not fit a model's inputs `expected` (`model.input`).

    Args:
        expected: KerasTensor, or a dict of them. The model's inputs.
        actual: tf.TypeSpec, or a dict of them. The data's inputs: a dataset's
            `element_spec[0]`, or a batch's specs (which settle sizes the
            dataset's spec leaves as None).
        name: str. What the data is called in the messages, e.g. `"train_data"`.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            hint = _strings_hint(actual) or f"; {_OWN_PREPROCESSOR}"
            raise ConfigError(
                f"The model takes a dict of inputs {sorted(expected)}{hint}. Received: {name} inputs {describe(actual)}"
            )
        missing = sorted(set(expected) - set(actual))
        if missing:
            raise ConfigError(
                f"The model takes inputs {sorted(expected)}; {name} lacks {missing}. "
                f"Received: {name} inputs {sorted(actual)}"
            )
        extra = sorted(set(actual) - set(expected))
        if extra:  # Keras would only warn, then feed the rest, e.g. token ids of another vocabulary.
            raise ConfigError(
                f"The model takes inputs {sorted(expected)}, but {name} also has {extra}: inputs made for another "
                f"model, such as another model's tokenizer gives; {_OWN_PREPROCESSOR}. "
                f"Received: {name} inputs {sorted(actual)}"
            )
        for key, tensor in expected.items():
            _check_tensor(tensor, actual[key], f"{name}'s input {key!r}")
        return
    if isinstance(expected, (list, tuple)):
        return  # Several inputs: left to Keras.
    if isinstance(actual, dict):  # Keras would only warn, then feed the entry named as its input
        tokens = str(expected.dtype).startswith("int")
        fix = (f"inputs made for another model, such as another model's tokenizer gives; {_OWN_PREPROCESSOR}"
               if tokens else "map the dataset to (inputs, labels) pairs whose inputs are that one tensor")
        raise ConfigError(
            f"The model takes one input tensor ({_describe_input(expected)}), but {name} has a dict of inputs: "
            f"{fix}. Received: {name} inputs {sorted(actual)}"
        )
    if not isinstance(actual, tf.TensorSpec):
        return  # Ragged/sparse data: left to Keras.
    _check_tensor(expected, actual, f"{name}'s inputs")


def _check_tensor(expected, actual, where: str) -> None:
    if not isinstance(actual, tf.TensorSpec):
        return
    if actual.dtype == tf.string and expected.dtype != "string":
        raise ConfigError(
            f"The model takes {expected.dtype} inputs, not strings{_strings_hint(actual)}. "
            f"Received: {where} of dtype string"
        )
    want, got = tuple(expected.shape), actual.shape
    if got.rank is None:
        return
    got = tuple(got)
    if len(got) == len(want) - 1:
        raise ConfigError(
            f"The model takes batches of shape {want}, so the data must be batched: "
            f"dataset.batch(32). Received: {where} of shape {got}"
        )
    if len(got) == len(want) and all(w is None or g is None or w == g for w, g in zip(want[1:], got[1:])):
        return
    if len(want) == 4 and len(got) == 4 and want[1:3] == got[1:3]:
        raise ConfigError(
            f"The model takes images with {want[3]} channels but {where} have {got[3]}; load them "
            f"as RGB (tfxfer's loaders do; tf.image.grayscale_to_rgb converts grey images). "
            f"Received: {where} of shape {got}, model input shape {want}"
        )
    if len(want) == 4 and len(got) == 4:  # images of another size
        raise ConfigError(
            f"The model takes {want[1]}x{want[2]}x{want[3]} images but {where} are "
            f"{got[1]}x{got[2]}x{got[3]} images. Resize them in the loader to the model's size, "
            f"e.g. load_image_folders(..., image_size=({want[1]}, {want[2]})), or build the model "
            f"at the data's size (image_size=({got[1]}, {got[2]})). Received: {where} of shape {got}, "
            f"model input shape {want}"
        )
    raise ConfigError(
        f"The model takes inputs of shape {want}; make the data match it. "
        f"Received: {where} of shape {got}"
    )


def _strings_hint(actual) -> str:
    specs = tf.nest.flatten(actual)
    if any(isinstance(spec, tf.TensorSpec) and spec.dtype == tf.string for spec in specs):
        return ("; the data holds raw strings: map them to token ids, "
                "data.map_inputs(model.preprocessor) for a tfxfer text classifier")
    return ""


def warn_if_rescaled_pixels(model, images, name: str) -> None:
    """Logs a warning if `model` takes [0, 255] pixels and `images` (a batch) look rescaled to [0, 1] or [-1, 1].

    Such images train and predict without any error, only badly: the model's
    own preprocessing scales them a second time. Whether a model takes [0, 255]
    pixels: a registry backbone does (it rescales them itself), and so does
    your own backbone with a preprocessing mode other than "none"; with "none"
    it takes whatever the backbone takes.

    Args:
        model: keras.Model. Any model; only a tfxfer image classifier is looked at.
        images: tf.Tensor or array. A batch of the model's inputs.
        name: str. What the data is called in the message, e.g. `"train_data"`.
    """
    if getattr(model, "task", None) != "image":
        return
    registered = getattr(model, "backbone_name", None) in registry.list_backbones()
    preprocessing = getattr(model, "preprocessing", "none")
    if not registered and preprocessing == "none":
        return
    pixels = np.asarray(images)
    if pixels.size == 0 or not (pixels.max() <= 1.0 or pixels.min() < 0):
        return
    logging.warning(
        "The first batch of %s has pixel values from %.3g to %.3g, but the model takes pixels in [0, 255] and "
        "preprocesses them inside itself (%s): do not divide the images by 255 or rescale them; tfxfer's loaders "
        "give [0, 255].", name, pixels.min(), pixels.max(),
        f"backbone {model.backbone_name!r}" if registered else f"preprocessing={preprocessing!r}")


def _describe_input(tensor) -> str:
    """A model input (KerasTensor) in words: `int64 of shape (None, 6), 'token_ids'`."""
    return f"{tensor.dtype} of shape {tuple(tensor.shape)}, {tensor.name!r}"


def describe(spec) -> str:
    """A spec in words for a message: `a float32 tensor of shape (None, 32)`."""
    if isinstance(spec, tf.TensorSpec):
        return f"a {spec.dtype.name} tensor of shape {tuple(spec.shape)}"
    return str(spec)
