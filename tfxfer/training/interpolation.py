"""WiSE-FT at the end of phase 2 (`FineTuneConfig.fine_tune_interpolation`).

Phase 2 starts from phase 1's model (a linear probe on the frozen backbone) and
fine-tunes it. With `fine_tune_interpolation=alpha`, the model then ends with
`(1 - alpha) * start + alpha * end` for every weight phase 2 trained: the
weight-space ensemble of the probe and the fine-tuned model (Wortsman et al.
2022, "Robust fine-tuning of zero-shot models"), which keeps more of what the
pretrained features gave the probe. The weights phase 2 did not train are the
same at both ends, and BatchNorm's statistics do not move in phase 2 (inference
mode), so the blend is of one network with itself.

With LoRA, a layer computes with `W + A @ B`, `W` frozen and `B` zero at the
start; the blend of `W` and `W + A @ B` is `W + A @ (alpha * B)`, so `B` is
blended and `A` keeps its trained value (blending both would scale the update
by `alpha ** 2`).
"""

import keras
import numpy as np
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.models import lora_layers


def check(alpha) -> None:
    """Raises a `ConfigError` unless `alpha` is a number in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ConfigError(
            "fine_tune_interpolation must be a number from 0 to 1: how far phase 2's weights end from phase 1's "
            "toward its own (1.0 keeps phase 2's, 0.5 halfway, 0.0 phase 1's). "
            f"Received: fine_tune_interpolation={alpha!r}")


class PhaseStart:
    """The weights `model` trains now, as they are before the phase starts: what `blend` moves back toward, and
    what `restore` puts back.

    Take it after the phase's layers are set trainable (and its LoRA adapters
    started), before its training (and any backup restore) begins.
    """

    def __init__(self, model: keras.Model):
        # LoRA's `A` keeps its trained value: blending `B` alone blends the merged kernels (module docstring).
        adapters_a = {id(lora_layers.adapters(layer)[0]) for layer in lora_layers.lora_layers(model)}
        self._start = [(variable, np.array(variable.numpy()))
                       for variable in model.trainable_variables if id(variable) not in adapters_a]

    def blend(self, alpha: float) -> None:
        """Sets each weight taken at the start to `(1 - alpha) * start + alpha * now`."""
        for variable, start in self._start:
            now = variable.numpy()
            variable.assign(((1 - alpha) * start + alpha * now).astype(now.dtype))
        logging.info("Phase 2's weights moved back toward phase 1's: %g of the way from phase 1's to phase 2's "
                     "(WiSE-FT, fine_tune_interpolation; %d weight tensors).", alpha, len(self._start))

    def restore(self) -> None:
        """Sets each weight taken at the start back to its value then: the phase's steps undone."""
        for variable, start in self._start:
            variable.assign(start)
