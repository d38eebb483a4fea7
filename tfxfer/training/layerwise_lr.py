"""Layer-wise learning-rate decay (LLRD) for fine-tuning transformer text backbones.

The top transformer block trains at the full learning rate, each block below at
`decay` times the one above, and the embeddings at `decay ** num_blocks`; the
head trains at the full rate. `layer_learning_rate_multipliers` says which
variable gets which factor and `LayerwiseAdamW` applies them.
"""

import math
import re

import keras
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.models import layer_names

# keras-hub's names for the blocks of its encoders (BERT, RoBERTa, ELECTRA,
# DistilBERT; DeBERTa-v3; FNet; XLNet; decoder-only models). Only needed when the
# encoder no longer has keras-hub's `transformer_layers` attribute, as with the
# Functional model `load_hub_backbone` cuts out of the keras-hub backbone.
BLOCK_NAME = re.compile(
    r"(?:transformer_layer|disentangled_attention_encoder_layer|f_net_layer|xlnet_encoder|decoder_block)_(\d+)")


def layer_learning_rate_multipliers(model: keras.Model, decay: float) -> dict[str, float]:
    """Learning-rate multipliers for layer-wise decay, by variable path.

    With `L` transformer blocks in `model.get_layer("backbone")`, block `k`
    (0 = lowest) gets `decay ** (L - 1 - k)` and everything in the backbone
    below the first block (token, position and segment embeddings and their
    layer norm) gets `decay ** L`. Everything else gets 1.0: the head, and any
    backbone layer above the last block (a final layer norm, BERT's pooler
    dense), which belongs with the top block, whose factor is `decay ** 0`.
    A backbone layer between two blocks gets the factor of the block below it.

    Every weight of the model is listed, trainable or not right now (Keras
    marks a frozen layer's variables non-trainable), so the multipliers can be
    computed before phase 2 unfreezes the backbone; the optimizer only ever
    looks up the variables it trains.

    Args:
        model: keras.Model. A tfxfer text classifier: its layer `backbone` is a
            keras-hub encoder (or contains one), whose blocks are found from
            keras-hub's `transformer_layers` attribute or, failing that, from
            their names (`transformer_layer_0` ... `transformer_layer_{L-1}`).
        decay: float in (0, 1]. Factor between adjacent blocks; 1.0 gives every
            variable 1.0 (and works for any backbone).

    Returns:
        dict from `variable.path` to its multiplier, for `LayerwiseAdamW`.

    Example:
    ```python
    multipliers = layer_learning_rate_multipliers(model, decay=0.8)
    model.compile(LayerwiseAdamW(learning_rate=2e-5, lr_multipliers=multipliers), loss=...)
    ```
    """
    check_decay(decay)
    variables = model.weights
    if decay == 1.0:
        return {v.path: 1.0 for v in variables}
    backbone = _get_backbone(model)
    blocks = _find_blocks(backbone)
    if not blocks:
        names = [layer.name for layer in backbone.layers]
        raise ConfigError(
            "Layer-wise learning-rate decay needs a transformer backbone (a keras-hub encoder with "
            "blocks named transformer_layer_0, transformer_layer_1, ...), but the backbone has no "
            f"transformer blocks. Pass decay=1.0 to train every layer at the same rate. Received: "
            f"decay={decay}, backbone layers={names}"
        )
    exponents = _exponents_by_variable(backbone, blocks)
    multipliers = {}
    for variable in variables:
        multiplier = float(decay ** exponents.get(id(variable), 0))
        if multipliers.setdefault(variable.path, multiplier) != multiplier:
            raise ConfigError(
                "Two variables share a path but need different learning rates, so the multipliers "
                "cannot be keyed by path. Give the layers unique names. Received: "
                f"path={variable.path!r}"
            )
    logging.info("Layer-wise learning-rate decay %g over %d transformer blocks: embeddings x%.3g, "
                 "top block and head x1.", decay, len(blocks), decay ** len(blocks))
    return multipliers


@keras.saving.register_keras_serializable(package="tfxfer")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is scaled per variable.

    Variable `v` trains at `learning_rate * lr_multipliers.get(v.path, 1.0)`,
    and its decoupled weight decay (`lr * weight_decay * v`) uses the same
    scaled rate, as in the layer-wise decay of ELECTRA, BEiT and timm. Scaling
    the gradients instead would do nothing: Adam's step does not depend on the
    gradient's scale. Learning-rate schedules, `exclude_from_weight_decay` and
    `tf.distribute` strategies work as with `keras.optimizers.AdamW`
    (TensorFlow backend).

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
            The rate of variables with multiplier 1.0.
        weight_decay: float. Decoupled weight decay, as in `AdamW`.
        lr_multipliers: dict from `variable.path` to a float >= 0, e.g. from
            `layer_learning_rate_multipliers`. Variables not listed use 1.0.
        **kwargs: Any other `keras.optimizers.AdamW` argument.

    Example:
    ```python
    optimizer = LayerwiseAdamW(
        learning_rate=2e-5, weight_decay=0.01,
        lr_multipliers=layer_learning_rate_multipliers(model, decay=0.8))
    ```
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, *,
                 lr_multipliers: dict[str, float] | None = None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        self._lr_multipliers = _check_multipliers(lr_multipliers or {})
        self._variable_multipliers = ()

    @property
    def lr_multipliers(self) -> dict[str, float]:
        # A copy: the optimizer's attribute tracking wraps the stored dict.
        return dict(self._lr_multipliers)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        multipliers = self.lr_multipliers
        paths = [getattr(variable, "path", None) for variable in var_list]
        # Indexed like the optimizer's slots: update_step finds a variable's
        # index even for the per-replica copy a MirroredStrategy hands it.
        self._variable_multipliers = tuple(multipliers.get(path, 1.0) for path in paths)
        if multipliers and not set(paths) & set(multipliers):
            logging.warning("None of the %d lr_multipliers match a variable of the model, so every "
                            "variable trains at the full learning rate. Were they computed for another "
                            "model?", len(multipliers))

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._variable_multipliers[self._get_variable_index(variable)]
        learning_rate = keras.ops.multiply(keras.ops.cast(learning_rate, variable.dtype), multiplier)
        self._decay_weights(variable, learning_rate)
        super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        # AdamW decays every variable at the unscaled rate before update_step;
        # update_step does it instead, at the variable's own rate. Both run in
        # the same per-variable (and, under tf.distribute, per-replica) update.
        return

    def _decay_weights(self, variable, learning_rate):
        if self.weight_decay is None or not self._use_weight_decay(variable):
            return
        weight_decay = keras.ops.cast(self.weight_decay, variable.dtype)
        self.assign_sub(variable, variable * weight_decay * learning_rate)

    def get_config(self):
        config = super().get_config()
        config["lr_multipliers"] = self.lr_multipliers
        return config


def check_decay(decay, name: str = "decay") -> None:
    """Raises a ConfigError for a decay outside (0, 1], naming it as the caller's argument `name` (e.g. layer_decay)."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < decay <= 1.0:
        raise ConfigError(
            f"{name} must be a number in (0, 1]: the factor between the learning rates of adjacent "
            f"transformer blocks in phase 2 (1.0 turns layer-wise decay off), e.g. 0.9. Received: {name}={decay!r}"
        )


def _check_multipliers(multipliers) -> dict[str, float]:
    checked = {}
    for path, multiplier in dict(multipliers).items():
        if (isinstance(multiplier, bool) or not isinstance(multiplier, (int, float))
                or not math.isfinite(multiplier) or multiplier < 0):
            raise ConfigError(
                "lr_multipliers must map variable paths to finite numbers >= 0. Received: "
                f"lr_multipliers[{path!r}]={multiplier!r}"
            )
        checked[str(path)] = float(multiplier)
    return checked


def _get_backbone(model: keras.Model) -> keras.Model:
    try:
        return model.get_layer(layer_names.BACKBONE)
    except ValueError:
        raise ConfigError(
            f"Layer-wise learning-rate decay needs a tfxfer classifier with a layer named "
            f"{layer_names.BACKBONE!r} (its encoder). Pass decay=1.0 for other models. Received: "
            f"layers={[layer.name for layer in model.layers]}"
        ) from None


def _find_blocks(model) -> list:
    """The transformer blocks of `model`, or of the first model nested in it that has some."""
    blocks = getattr(model, "transformer_layers", None)
    if isinstance(blocks, (list, tuple)) and blocks and all(isinstance(b, keras.layers.Layer) for b in blocks):
        return list(blocks)
    if not isinstance(model, keras.Model):
        return []
    named = [(int(match.group(1)), layer) for layer in model.layers if (match := BLOCK_NAME.fullmatch(layer.name))]
    if named:
        return [layer for _, layer in sorted(named, key=lambda pair: pair[0])]
    for layer in model.layers:
        blocks = _find_blocks(layer)
        if blocks:
            return blocks
    return []


def _exponents_by_variable(backbone: keras.Model, blocks: list) -> dict[int, int]:
    """`id(variable) -> k` for the backbone's variables, the multiplier being `decay ** k`."""
    block_index = {id(block): i for i, block in enumerate(blocks)}
    layers = _layers_in_order(backbone, block_index)
    if sum(id(layer) in block_index for layer in layers) != len(blocks):
        raise ConfigError(
            "Could not place the backbone's transformer blocks among its layers, so layer-wise "
            "decay cannot tell the embeddings from the top. Pass decay=1.0. Received: "
            f"blocks={[block.name for block in blocks]}"
        )
    exponents, blocks_seen = {}, 0
    # A Functional model lists its layers in topological order: a layer before
    # block 0 feeds it (an embedding), one after the last block is above it.
    for layer in layers:
        if id(layer) in block_index:
            exponent = len(blocks) - 1 - block_index[id(layer)]
            blocks_seen += 1
        else:
            exponent = len(blocks) - blocks_seen
        for variable in layer.weights:
            # A variable reused higher up (tied embeddings) keeps its lowest place.
            exponents.setdefault(id(variable), exponent)
    return exponents


def _layers_in_order(model: keras.Model, block_index: dict[int, int]) -> list:
    """`model.layers` with every nested model that holds blocks opened up, blocks kept whole."""
    layers = []
    for layer in model.layers:
        if id(layer) not in block_index and isinstance(layer, keras.Model) and _holds_blocks(layer, block_index):
            layers.extend(_layers_in_order(layer, block_index))
        else:
            layers.append(layer)
    return layers


def _holds_blocks(model: keras.Model, block_index: dict[int, int]) -> bool:
    return any(id(layer) in block_index or (isinstance(layer, keras.Model) and _holds_blocks(layer, block_index))
               for layer in model.layers)
