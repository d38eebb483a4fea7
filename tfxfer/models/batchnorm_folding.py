"""BatchNorm folded into the convolution before it, for a model's inference passes.

In inference mode a BatchNormalization after a convolution is an affine map per
channel, `y = (x - mean) * gamma / sqrt(var + eps) + beta`, so it can be merged
into the convolution's kernel and bias. The folded model computes the same
features with a convolution and a bias instead of a convolution and two
elementwise passes over its output: a phase-1 extraction pass of MobileNetV2-0.35
over 398 images at 320x320 on 2 CPU cores took 1.37 s instead of 2.50 s
(`benchmarks/batchnorm_folding.py`; benchmarks/README.md, "Phase 1 with BatchNorm folded"), and
the image export's requests take a third less time (`benchmarks/serving_latency.py`).
The features differ from the unfolded model's only by float rounding.

The folded model is for inference only (`training=False`): it shares every other
layer with the original, and its folded convolutions are copies, so training it
would not train the original.
"""

import keras
import numpy as np
from absl import logging

# Exact types: a subclass may compute something else than its kernel and bias say.
_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                 keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def fold_batch_norms(model: keras.Model) -> tuple[keras.Model, int]:
    """`(folded model, number of BatchNorms folded)` for inference with `model`.

    A BatchNormalization is folded when its only input is a convolution (Conv1D/2D/3D
    or DepthwiseConv1D/2D, without activation) that feeds nothing else, and it
    normalises the convolution's channel axis. Nested functional models (a
    backbone inside a classifier) are folded too. `model` itself is returned,
    unchanged, when nothing can be folded or it is not a functional model.
    """
    if not _has_foldable(model):
        return model, 0
    pairs = _foldable_pairs(model)
    batch_norms = {id(batch_norm) for _, batch_norm in pairs.values()}
    folded_convolutions = {}
    nested_counts = []

    def clone(layer):
        if id(layer) in batch_norms:
            return _PassThrough(name=layer.name)
        if id(layer) in pairs:
            config = {**layer.get_config(), "use_bias": True}
            folded_convolutions[id(layer)] = type(layer).from_config(config)
            return folded_convolutions[id(layer)]
        if _is_functional(layer):
            folded, count = fold_batch_norms(layer)
            nested_counts.append(count)
            return folded
        return layer  # shared, weights and all

    # clone_model would compile the copy as `model` was compiled (after training, with its optimizer and
    # loss: useless to an inference-only copy, and failing for compile configs it cannot rebuild), so it
    # clones an uncompiled view of the same graph.
    source = keras.Model(model.input, model.output, name=model.name) if model.compiled else model
    folded = keras.models.clone_model(source, clone_function=clone)
    for key, layer in folded_convolutions.items():
        layer.set_weights(_folded_weights(*pairs[key]))
    count = len(folded_convolutions) + sum(nested_counts)
    logging.debug("Folded %d BatchNormalization layers of %r into their convolutions.", count, model.name)
    return folded, count


class _PassThrough(keras.layers.Layer):
    """Stands where a folded BatchNormalization was: its input, unchanged."""

    def call(self, inputs, training=None, mask=None):
        return inputs


def _is_functional(layer) -> bool:
    """Whether `layer` is a model with a graph of layers to clone (not Sequential, not subclassed)."""
    return isinstance(layer, keras.Model) and hasattr(layer, "_run_through_graph")


def _has_foldable(model) -> bool:
    return _is_functional(model) and (
        bool(_foldable_pairs(model)) or any(_has_foldable(layer) for layer in model.layers))


def _foldable_pairs(model) -> dict:
    """`{id(convolution): (convolution, batch_norm)}` for the pairs of `model`'s own graph."""
    pairs = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and len(layer._inbound_nodes) == 1:
            parents = layer._inbound_nodes[0].parent_nodes
            convolution = parents[0].operation if len(parents) == 1 else None
            if _can_fold(convolution, layer):
                pairs[id(convolution)] = (convolution, layer)
    return pairs


def _can_fold(convolution, batch_norm) -> bool:
    if type(convolution) not in _CONVOLUTIONS:
        return False
    if len(convolution._inbound_nodes) != 1 or len(convolution._outbound_nodes) != 1:
        return False
    if convolution.activation is not keras.activations.linear or getattr(convolution, "lora_enabled", False):
        return False
    if getattr(convolution, "quantization_mode", None) is not None:
        return False
    rank = len(convolution.kernel.shape)  # the input's: spatial axes, plus batch and channels
    channel_axis = rank - 1 if convolution.data_format == "channels_last" else 1
    return batch_norm.axis % rank == channel_axis


def _folded_weights(convolution, batch_norm) -> list[np.ndarray]:
    """The kernel and bias of `convolution` followed by `batch_norm` in inference mode."""
    variance = keras.ops.convert_to_numpy(batch_norm.moving_variance).astype("float64")
    mean = keras.ops.convert_to_numpy(batch_norm.moving_mean).astype("float64")
    gamma = keras.ops.convert_to_numpy(batch_norm.gamma).astype("float64") if batch_norm.scale else 1.0
    beta = keras.ops.convert_to_numpy(batch_norm.beta).astype("float64") if batch_norm.center else 0.0
    scale = gamma / np.sqrt(variance + batch_norm.epsilon)
    kernel = keras.ops.convert_to_numpy(convolution.kernel).astype("float64")
    if isinstance(convolution, _DEPTHWISE):
        # Output channel i * multiplier + m comes from kernel[..., i, m].
        kernel = kernel * scale.reshape(kernel.shape[-2:])
    else:
        kernel = kernel * scale  # the kernel's last axis is the output channel
    bias = keras.ops.convert_to_numpy(convolution.bias).astype("float64") if convolution.use_bias else 0.0
    dtype = convolution.kernel.dtype
    return [kernel.astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]
