"""Which backbone layers train in each phase.

Phase 1 freezes the whole backbone. Phase 2 unfreezes its top layers, chosen by
index, name or fraction, and keeps every BatchNormalization layer frozen: with
small fine-tuning batches their statistics would drift away from the ones the
pretrained weights rely on.
"""

import keras
from absl import logging

from tfxfer.defaults import FineTuneAt
from tfxfer.errors import ConfigError


def set_trainable(backbone: keras.Model, fine_tune_at: FineTuneAt | None) -> None:
    """Freezes the whole backbone (`fine_tune_at` None: phase 1), or unfreezes its top (phase 2)."""
    if fine_tune_at is None:
        freeze_backbone(backbone)
    else:
        unfreeze_top(backbone, fine_tune_at)


def freeze_backbone(backbone: keras.Model) -> None:
    """Freezes every layer of the backbone (phase 1).

    Args:
        backbone: keras.Model. The backbone sub-model (`model.backbone`).

    Example:

    >>> backbone = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8)], name="backbone")
    >>> tfxfer.freeze_backbone(backbone)  # with a tfxfer model: model.backbone
    >>> backbone.trainable
    False
    """
    backbone.trainable = False


def unfreeze_top(backbone: keras.Model, fine_tune_at: FineTuneAt) -> int:
    """Unfreezes the top of the backbone for fine-tuning (phase 2).

    Args:
        backbone: keras.Model. The backbone sub-model.
        fine_tune_at: int, float or str. int: index (in `backbone.layers`) of the
            first layer to unfreeze, as in the Keras transfer-learning guide;
            0 unfreezes all. float in (0, 1]: fraction of the layers, counted
            from the top, to unfreeze. str: name of the first layer to unfreeze.

    Returns:
        The index of the first unfrozen layer.

    Example:

    >>> backbone = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, name="block1"),
    ...                              keras.layers.Dense(8, name="block2")], name="backbone")
    >>> tfxfer.unfreeze_top(backbone, "block2")  # or 0.5 (top half), or 1 (an index)
    1
    >>> [layer.trainable for layer in backbone.layers]
    [False, True]

    With a tfxfer model: `tfxfer.unfreeze_top(model.backbone, 0.3)`.
    """
    layers = backbone.layers
    start = first_trainable_index(layers, fine_tune_at)
    backbone.trainable = True
    for index, layer in enumerate(layers):
        # Set both ways, so a second call (e.g. a deeper fine_tune_at) also re-enables layers.
        layer.trainable = index >= start and not isinstance(layer, keras.layers.BatchNormalization)
    _freeze_nested_batch_norm(backbone)
    logging.info(
        "Fine-tuning %d of %d backbone layers (from %r on)%s.",
        len(layers) - start, len(layers), layers[start].name if start < len(layers) else None,
        # Only where it is news: a backbone without BatchNorm (a transformer) has none to keep frozen.
        "; BatchNorm stays frozen" if has_batch_norm(layers[start:]) else "",
    )
    return start


def first_trainable_index(layers: list[keras.Layer], fine_tune_at: FineTuneAt) -> int:
    """Resolves `fine_tune_at` (see `unfreeze_top`) to a layer index.

    Raises:
        ConfigError: a layer name the backbone does not have, an index past
            its layers, or a fraction outside (0, 1].
        TypeError: `fine_tune_at` is not an int, float or str.
    """
    if isinstance(fine_tune_at, bool):
        raise TypeError(f"fine_tune_at must be an int, float or str. Received: fine_tune_at={fine_tune_at!r}")
    if isinstance(fine_tune_at, str):
        names = [layer.name for layer in layers]
        if fine_tune_at not in names:
            raise ConfigError(
                f"No backbone layer is named {fine_tune_at!r}. Pass a layer name "
                f"(e.g. one of the last: {names[-5:]}), an index or a fraction. "
                f"Received: fine_tune_at={fine_tune_at!r}"
            )
        return names.index(fine_tune_at)
    if isinstance(fine_tune_at, float):
        if not 0.0 < fine_tune_at <= 1.0:
            raise ConfigError(
                "A fractional fine_tune_at is the share of backbone layers to "
                f"unfreeze and must be in (0, 1]. Received: fine_tune_at={fine_tune_at}"
            )
        return len(layers) - max(1, round(fine_tune_at * len(layers)))
    if isinstance(fine_tune_at, int):
        if not 0 <= fine_tune_at < len(layers):
            names = [layer.name for layer in layers]
            raise ConfigError(
                "An integer fine_tune_at is the index of the first backbone layer to unfreeze: pass "
                f"0 to {len(layers) - 1}, a fraction of the layers such as 0.3, or a layer name "
                f"(e.g. one of the last: {names[-3:]}). It must index one of the backbone's "
                f"{len(layers)} layers. Received: fine_tune_at={fine_tune_at}"
            )
        return fine_tune_at
    raise TypeError(f"fine_tune_at must be an int, float or str. Received: fine_tune_at={fine_tune_at!r}")


def has_batch_norm(layers: list[keras.Layer]) -> bool:
    """Whether any of `layers`, or of the layers nested in them at any depth, is a BatchNormalization
    (which `unfreeze_top` keeps frozen)."""
    return any(_batch_norm_layers(layer) for layer in layers)


def _freeze_nested_batch_norm(model: keras.Model) -> None:
    # Unfreezing a layer unfreezes its sublayers too, BatchNorm among them; those nested in a sub-model (a user's
    # own backbone) or in a custom layer (a residual block class) are not in `model.layers`.
    for layer in _batch_norm_layers(model):
        layer.trainable = False  # Keras runs a BatchNorm that is not trainable in inference mode.


def _batch_norm_layers(layer: keras.Layer) -> list[keras.layers.BatchNormalization]:
    """`layer` itself and every layer nested in it at any depth that is a BatchNormalization.

    Keras 3 has no public walk of a custom layer's sublayers (`.layers` is a
    Model's, and lists only its own); `_flatten_layers` is how Keras itself
    finds them (`Model.layers`, `Model.quantize`).
    """
    return [nested for nested in layer._flatten_layers(include_self=True, recursive=True)
            if isinstance(nested, keras.layers.BatchNormalization)]
