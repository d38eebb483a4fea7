"""Whether data fits a model's inputs: its structure, dtype, batching and image size, from the data's spec.

`fine_tune`'s checks before training (`tfxfer.training.input_checks`) and
`evaluate_model` both ask this before running the model, so that data that
does not fit fails with what to change, not as a shape error inside a step.
"""

import tensorflow as tf

from tfxfer.errors import ConfigError


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
            raise ConfigError(
                f"The model takes a dict of inputs {sorted(expected)}{_strings_hint(actual)}. "
                f"Received: {name} inputs {describe(actual)}"
            )
        missing = sorted(set(expected) - set(actual))
        if missing:
            raise ConfigError(
                f"The model takes inputs {sorted(expected)}; {name} lacks {missing}. "
                f"Received: {name} inputs {sorted(actual)}"
            )
        for key, tensor in expected.items():
            _check_tensor(tensor, actual[key], f"{name}'s input {key!r}")
        return
    if isinstance(expected, (list, tuple)) or not isinstance(actual, tf.TensorSpec):
        return  # Several inputs, or ragged/sparse data: left to Keras.
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


def describe(spec) -> str:
    """A spec in words for a message: `a float32 tensor of shape (None, 32)`."""
    if isinstance(spec, tf.TensorSpec):
        return f"a {spec.dtype.name} tensor of shape {tuple(spec.shape)}"
    return str(spec)
