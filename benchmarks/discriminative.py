"""Phase 2 over a whole convolutional backbone at rates falling block by block, for `choose_defaults.py`.

Discriminative fine-tuning (Howard & Ruder 2018) trains lower layers at lower rates,
since they hold the more general features; fastai's default for images unfreezes the
whole network with rates spread geometrically from the head's down to a hundredth of
it at the input. tfxfer's layer-wise decay (`FineTuneConfig.layer_decay`) knows only
transformer blocks, so this was measured as a candidate before teaching it conv nets:
`block_rates()` swaps in multipliers for MobileNetV2's blocks while a run trains.
The stem and `expanded_conv` are block 0, `block_k_*` block k, the last 1x1 conv
(`Conv_1`) block 17: block k trains at `decay ** (17 - k)` times the rate, the head
at the full rate.
"""

import contextlib
import re

import keras

from tfxfer.models import layer_names
from tfxfer.training import layerwise_lr

TOP_BLOCK = 17  # MobileNetV2's `Conv_1`, above block_16
DECAY = 0.01 ** (1 / TOP_BLOCK)  # the stem at a hundredth of the top's rate, as fastai's images
_BLOCK = re.compile(r"^block_(\d+)_")
_TOP_LAYERS = ("Conv_1", "Conv_1_bn", "out_relu")


def block_index(layer_name: str) -> int:
    """The MobileNetV2 block a layer belongs to: 0 for the stem and `expanded_conv`, TOP_BLOCK for `Conv_1`."""
    match = _BLOCK.match(layer_name)
    if match:
        return int(match.group(1))
    return TOP_BLOCK if layer_name in _TOP_LAYERS else 0


def multipliers(model: keras.Model, decay: float) -> dict[str, float]:
    """Learning-rate multipliers by variable path: `decay ** (TOP_BLOCK - block)` in the backbone, 1 elsewhere."""
    rates = {variable.path: 1.0 for variable in model.weights}
    for layer in model.get_layer(layer_names.BACKBONE).layers:
        for variable in layer.weights:
            rates[variable.path] = float(decay ** (TOP_BLOCK - block_index(layer.name)))
    return rates


@contextlib.contextmanager
def block_rates(enabled: bool):
    """Within the block, a config's `layer_decay` spreads phase 2's rates over MobileNetV2's blocks; False
    changes nothing. The whole run must be inside: `fine_tune` computes the multipliers as it plans."""
    if not enabled:
        yield
        return
    transformer_multipliers = layerwise_lr.layer_learning_rate_multipliers
    layerwise_lr.layer_learning_rate_multipliers = multipliers
    try:
        yield
    finally:
        layerwise_lr.layer_learning_rate_multipliers = transformer_multipliers
