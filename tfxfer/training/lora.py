"""LoRA in phase 2 (`FineTuneConfig.lora_rank`): the backbone stays frozen, low-rank adapters train.

With `lora_rank=r`, phase 2 freezes every original weight of the backbone
(kernels, biases, embeddings, LayerNorm and BatchNorm alike) and trains the head
plus rank-`r` adapters `A`, `B` on the `Dense`/`EinsumDense` layers of the part
of the backbone it would otherwise unfreeze (from `fine_tune_at` up): each such
layer then computes with `W + A @ B` (Keras' `enable_lora`, `alpha = rank`),
`B` starting at zero so that phase 2 starts from phase 1's predictions (Hu et
al., 2021). Which layers: in a keras-hub encoder, the attention's query and
value projections (keras-hub's own `Backbone.enable_lora` default, as in the
LoRA paper); in any other backbone, every `Dense` and `EinsumDense` layer.
A rank must be below every such layer's width: at its width the adapters are
no longer low-rank, and train more parameters than the kernel they adapt.

Phase 1 and its feature cache are unchanged: LoRA starts with phase 2.
Layer-wise learning-rate decay combines with it: an adapter trains at the rate
of the kernel it adapts (its block's). A `keras.applications` backbone (a
convolutional network: Keras has no LoRA for convolutions), a word-vector
encoder, or a backbone whose unfrozen part has no `Dense`/`EinsumDense` layer is
refused before any training. `tfxfer.models.lora_layers` merges the adapters
for export and keeps them whole in backups.
"""

import math

import keras
from absl import logging

from tfxfer.defaults import FineTuneAt
from tfxfer.errors import ConfigError
from tfxfer.models import layer_names, lora_layers
from tfxfer.models.backbones import registry
from tfxfer.training import console, freezing

# keras-hub's `Backbone.default_lora_layer_names()`: the attention's query and value projections.
# tfxfer's text backbone is a Functional model cut out of the keras-hub backbone, so it
# matches the names itself instead of calling that method.
HUB_TARGET_NAMES = ("query_dense", "value_dense", "query", "value")
# A new adapter's `A` is drawn as Keras' `enable_lora` draws it; `B` starts at zero.
A_INITIALIZER = "he_uniform"


def check_rank(rank) -> None:
    """Raises a `ConfigError` unless `rank` is None (LoRA off) or a positive int."""
    if rank is None:
        return
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ConfigError(
            "lora_rank must be a positive integer, the rank of the LoRA adapters phase 2 trains (e.g. 4, 8 "
            f"or 16), or None to fine-tune the backbone's own weights. Received: lora_rank={rank!r}")


def target_layers(model: keras.Model, fine_tune_at: FineTuneAt, rank: int) -> list[keras.Layer]:
    """The layers phase 2 puts adapters on: see the module docstring.

    Args:
        model: keras.Model. A tfxfer classifier (a layer named `backbone`).
        fine_tune_at: int, float or str. Where phase 2 starts unfreezing (`freezing.unfreeze_top`).
        rank: int. The adapters' rank.

    Raises:
        ConfigError: the backbone is a `keras.applications` one, or the part of it
            phase 2 would train has no `Dense`/`EinsumDense` layer, or `rank` is
            not below the width of every layer it would adapt.
    """
    backbone = model.get_layer(layer_names.BACKBONE)
    name = getattr(model, "backbone_name", None)
    if getattr(model, "task", None) == "image":
        registry.check_lora(name, rank)
    start = freezing.first_trainable_index(backbone.layers, fine_tune_at)
    unfrozen = backbone.layers[start:]
    candidates = [layer for top in unfrozen for layer in top._flatten_layers(include_self=True)
                  if isinstance(layer, lora_layers.LORA_LAYER_TYPES)]
    if not candidates:
        raise ConfigError(_no_targets_message(backbone, unfrozen, fine_tune_at, rank))
    attention = [layer for layer in candidates if layer.name in HUB_TARGET_NAMES]
    targets = attention or candidates
    _check_rank_fits(targets, rank)
    return targets


def _check_rank_fits(layers: list[keras.Layer], rank: int) -> None:
    """Raises a `ConfigError` if `rank` is not below the narrowest of `layers`' widths.

    Keras' LoRA factors a kernel of shape `(..., n)` into `A` of shape
    `(..., rank)` and `B` of shape `(rank, n)`: the update `A @ B` has rank
    `min(m, n)` at most (`m` the product of the other axes). From there on the
    adapters add no expressiveness and hold more parameters than the kernel.
    """
    def width(layer):
        shape = tuple(layer._kernel.shape)
        return min(math.prod(shape[:-1]), shape[-1])

    narrowest = min(layers, key=width)
    if rank < width(narrowest):
        return
    shape = tuple(narrowest._kernel.shape)
    adapter_parameters = rank * (math.prod(shape[:-1]) + shape[-1])
    raise ConfigError(
        f"lora_rank must be below the width of every layer LoRA adapts, and the narrowest, backbone layer "
        f"{narrowest._kernel.path.rsplit('/', 1)[0]!r}, is {width(narrowest)} wide: Keras' LoRA factors its kernel "
        f"of shape {shape} into A {(*shape[:-1], rank)} and B {(rank, shape[-1])}, so adapters of rank "
        f"{width(narrowest)} or more are not low-rank, and would train {adapter_parameters:,} parameters where the "
        f"kernel has {math.prod(shape):,}. Pass a lora_rank below {width(narrowest)}, or lora_rank=None to "
        f"fine-tune the layers' own weights. Received: lora_rank={rank}")


def train_adapters(model: keras.Model, fine_tune_at: FineTuneAt, rank: int) -> list[keras.Layer]:
    """Sets phase 2 up for LoRA: the backbone frozen, rank-`rank` adapters trainable; returns their layers.

    Call it once phase 2's layers are unfrozen (`freezing.set_trainable`). A
    layer without LoRA gets new adapters; one that has them already (from an
    earlier `fine_tune`, a tuning trial, or a reloaded model, whose adapters
    Keras zeroed) first has them merged into its kernel, then starts new ones,
    of `rank` whatever the rank of the old ones: `B` zero, so the model
    predicts as before either way. Logs how many parameters phase 2 trains
    with LoRA and without.

    Args:
        model: keras.Model. A tfxfer classifier.
        fine_tune_at: int, float or str. Which top part of the backbone gets adapters.
        rank: int. The adapters' rank.

    Raises:
        ConfigError: see `target_layers`.
    """
    check_rank(rank)
    layers = target_layers(model, fine_tune_at, rank)
    backbone = model.get_layer(layer_names.BACKBONE)
    without_lora = console.parameter_count(model.trainable_weights)
    for variable in backbone.weights:
        variable.trainable = False
    # Adapters are new variables: under a tf.distribute strategy they must be mirrored like the rest.
    with model.distribute_strategy.scope():
        for layer in layers:
            _start_adapters(layer, rank)
    with_lora = console.parameter_count(model.trainable_weights)
    adapter_count = console.parameter_count([v for layer in layers for v in lora_layers.adapters(layer)])
    logging.info("LoRA rank %d on %d backbone layers (%s): phase 2 trains %s parameters (%s in adapters, the rest "
                 "in the head) instead of %s without LoRA; the backbone's own weights stay frozen.",
                 rank, len(layers), _layer_names(layers), f"{with_lora:,}", f"{adapter_count:,}",
                 f"{without_lora:,}")
    return layers


def adapter_multipliers(layers: list[keras.Layer], multipliers: dict[str, float] | None) -> dict[str, float] | None:
    """Layer-wise learning-rate multipliers extended to the adapters of `layers`: each gets its kernel's.

    Args:
        layers: list of keras.Layer. LoRA layers, from `train_adapters`.
        multipliers: dict from `variable.path` to a factor (`layerwise_lr`), or None (no decay).
    """
    if multipliers is None:
        return None
    extended = dict(multipliers)
    for layer in layers:
        factor = multipliers.get(layer._kernel.path, 1.0)
        for adapter in lora_layers.adapters(layer):
            extended[adapter.path] = factor
    return extended


def _start_adapters(layer: keras.Layer, rank: int) -> None:
    if not layer.lora_enabled:
        layer.enable_lora(rank)
    elif layer.lora_rank != rank:
        # Keras' `enable_lora` runs once per layer: the old adapters, merged, leave the layer before new ones come.
        layer._kernel.assign(lora_layers.merged_kernel(layer))
        for adapter in lora_layers.adapters(layer):
            layer._untrack_variable(adapter)
        layer.lora_enabled = False
        layer.enable_lora(rank)
    else:
        adapter_a, adapter_b = lora_layers.adapters(layer)
        layer._kernel.assign(lora_layers.merged_kernel(layer))
        adapter_a.assign(keras.initializers.get(A_INITIALIZER)(adapter_a.shape, adapter_a.dtype))
        adapter_b.assign(keras.ops.zeros(adapter_b.shape, adapter_b.dtype))
    layer._kernel.trainable = False
    for adapter in lora_layers.adapters(layer):
        adapter.trainable = True


def _layer_names(layers: list[keras.Layer]) -> str:
    paths = [layer._kernel.path.rsplit("/", 1)[0] for layer in layers]
    return ", ".join(paths) if len(paths) <= 4 else f"{', '.join(paths[:3])}, ... {paths[-1]}"


def _no_targets_message(backbone: keras.Model, unfrozen: list[keras.Layer], fine_tune_at: FineTuneAt,
                        rank: int) -> str:
    anywhere = any(isinstance(layer, lora_layers.LORA_LAYER_TYPES) for layer in backbone._flatten_layers())
    if anywhere:
        return ("LoRA adapts Dense and EinsumDense layers, and the part of the backbone phase 2 trains (from "
                f"fine_tune_at={fine_tune_at!r}: {[layer.name for layer in unfrozen]}) has none. Pass a "
                "fine_tune_at that reaches them (a smaller index or a larger fraction), or lora_rank=None. "
                f"Received: lora_rank={rank!r}, fine_tune_at={fine_tune_at!r}")
    embeddings = any(isinstance(layer, keras.layers.Embedding) for layer in backbone._flatten_layers())
    what = ("a word-vector encoder (word vectors, then an LSTM or a mean)" if embeddings
            else "a backbone without any Dense or EinsumDense layer")
    return (f"LoRA cannot apply to {what}: tfxfer's LoRA adapts Dense and EinsumDense layers, the projections "
            "transformer blocks are made of, and this backbone has none. Leave lora_rank unset (None; in the "
            "recipes, no --lora_rank) to fine-tune its own weights, or use a transformer backbone (a keras-hub "
            f"preset). Received: lora_rank={rank!r}, backbone layers {[layer.name for layer in backbone.layers]}")
