"""Keras' LoRA layers as tfxfer saves and exports them: merged for serving, whole for backups.

A `Dense` or `EinsumDense` layer with LoRA enabled (`layer.enable_lora(rank)`)
keeps its kernel `W` frozen and computes with `W + (alpha / rank) * A @ B`,
`A` and `B` being the adapters (`lora_kernel_a`, `lora_kernel_b`). Keras 3 has
no public merge helper, and its own saving already merges: `save_own_variables`
writes the merged kernel without the adapters, and `load_own_variables` loads
it into `W` and zeroes both adapters. Right for a `.keras` file (it reloads as
the model it predicts like), wrong for a training backup: a resumed run would
have lost its adapters and its original kernels, and with `A = B = 0` no
gradient ever reaches the adapters again. So:

- `merged(model)`: within the block, the model is the plain model its LoRA
  training amounts to (merged kernels, LoRA off, no adapter variables): what
  the SavedModel and TFLite exports serve, without the adapters' extra ops.
- `raw_variables(model)`: within the block, LoRA layers save and load their
  variables as they are (kernel, bias, adapters): what backups write and restore.

Both put everything back on exit, so the model the user holds keeps training
and predicting as before.
"""

import contextlib
import types
from collections.abc import Iterator

import keras
import numpy as np

LORA_LAYER_TYPES = (keras.layers.Dense, keras.layers.EinsumDense)


def lora_layers(model: keras.Layer) -> list[keras.Layer]:
    """The `Dense`/`EinsumDense` layers of `model` (nested ones too) that have LoRA enabled.

    model: keras.Layer. Any model or layer.
    """
    # `_flatten_layers` is how keras-hub's `Backbone.enable_lora` walks the layers too.
    return [layer for layer in model._flatten_layers(include_self=True)
            if isinstance(layer, LORA_LAYER_TYPES) and getattr(layer, "lora_enabled", False)]


def merged_kernel(layer: keras.Layer):
    """`W + (alpha / rank) * A @ B` of a LoRA layer, in the kernel's dtype: what its forward pass uses.

    layer: keras.Layer. A `Dense` or `EinsumDense` with LoRA enabled (not quantized).
    """
    # `layer.kernel` would give the same sum, but cast to the compute dtype (bfloat16 under mixed
    # precision); `_kernel` is the stored variable.
    delta = (layer.lora_alpha / layer.lora_rank) * keras.ops.matmul(layer.lora_kernel_a, layer.lora_kernel_b)
    return keras.ops.add(layer._kernel, keras.ops.cast(delta, layer._kernel.dtype))


def adapters(layer: keras.Layer) -> tuple:
    """`(lora_kernel_a, lora_kernel_b)` of a LoRA layer."""
    return layer.lora_kernel_a, layer.lora_kernel_b


@contextlib.contextmanager
def merged(model: keras.Layer) -> Iterator[int]:
    """Within the block, every LoRA layer of `model` is a plain layer holding its merged kernel.

    Each LoRA layer's kernel holds `W + (alpha / rank) * A @ B`, LoRA is off
    (its forward pass is the plain layer's), and its adapters are left out of
    its variables, so `model.variables` and anything exported from the model in
    the block (`keras.export.ExportArchive`, a TFLite conversion) has no
    adapter and no adapter op. On exit the original kernels (bit for bit),
    the adapters and LoRA come back. A model without LoRA layers is left as it is.

    Args:
        model: keras.Layer. A model whose layers may have LoRA enabled.

    Yields:
        int: the number of LoRA layers merged.

    Example:

    ```python
    with lora_layers.merged(model):
        archive = keras.export.ExportArchive()
        archive.track(model)   # no lora_kernel_a / lora_kernel_b among its variables
        ...
    ```
    """
    layers = lora_layers(model)
    kernels = [np.array(layer._kernel.numpy()) for layer in layers]
    detached = []
    try:
        for layer in layers:
            layer._kernel.assign(merged_kernel(layer))
            layer.lora_enabled = False
            detached.append((layer, _detach(layer, adapters(layer))))
        yield len(layers)
    finally:
        for layer, positions in reversed(detached):
            _reattach(layer, positions)
        for layer, kernel in zip(layers, kernels):
            layer._kernel.assign(kernel)
            layer.lora_enabled = True


@contextlib.contextmanager
def raw_variables(model: keras.Layer) -> Iterator[None]:
    """Within the block, LoRA layers save and load their variables as they are, adapters included.

    Keras' `Dense`/`EinsumDense` save a LoRA layer's merged kernel and load it
    with zeroed adapters (see the module docstring); in the block they use
    `keras.layers.Layer`'s own saving instead, which writes and reads every
    variable (kernel, bias, `lora_kernel_a`, `lora_kernel_b`) unchanged. For
    weight files that only this same LoRA model reads back: training backups.

    Args:
        model: keras.Layer. A model whose layers may have LoRA enabled.
    """
    layers = lora_layers(model)
    try:
        for layer in layers:
            layer.save_own_variables = types.MethodType(keras.layers.Layer.save_own_variables, layer)
            layer.load_own_variables = types.MethodType(keras.layers.Layer.load_own_variables, layer)
        yield
    finally:
        for layer in layers:
            # Deleting the instance attributes brings the class's methods back.
            layer.__dict__.pop("save_own_variables", None)
            layer.__dict__.pop("load_own_variables", None)


def _detach(layer: keras.Layer, variables: tuple) -> list:
    """Takes `variables` out of the layer's variable lists; returns where they were."""
    positions = []
    for owner in (layer._trainable_variables, layer._non_trainable_variables):
        for index in reversed(range(len(owner))):
            if any(owner[index] is variable for variable in variables):
                positions.append((owner, index, owner.pop(index)))
    return positions


def _reattach(layer: keras.Layer, positions: list) -> None:
    # Popped from the highest index down: inserting in the reverse order restores each list exactly.
    for owner, index, variable in reversed(positions):
        owner.insert(index, variable)
