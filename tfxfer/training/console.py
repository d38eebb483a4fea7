"""What a training run tells its user: the verbosity it runs at and what each phase trains.

The library never prints. Progress inside an epoch is Keras' own `ProgbarLogger`
(what `fit` shows), and the phase summaries go to `absl.logging`.
"""

import sys

import keras
import numpy as np

from tfxfer.errors import ConfigError
from tfxfer.models import layer_names
from tfxfer.training import freezing
from tfxfer.training.phase import Phase

VERBOSITIES = ("auto", 0, 1, 2)
# Layer names listed in a phase summary before the rest are only counted: a line stays on one screen.
_NAMES_SHOWN = 3


def resolve_verbose(verbose: str | int) -> int:
    """`fit`'s `verbose` as a number: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.

    "auto" is 1 in an interactive terminal and 2 otherwise: a progress bar
    redrawn in a log file or CI output would write a line per update.

    verbose: "auto", 0, 1 or 2.
    """
    if isinstance(verbose, bool) or verbose not in VERBOSITIES:
        raise ConfigError(
            f"verbose must be one of {list(VERBOSITIES)}, as in Keras' fit. Received: verbose={verbose!r}")
    if verbose == "auto":
        return 1 if _interactive() else 2
    return verbose


def _interactive() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` with `noun`, in the plural (`plural`, or `noun` + "s") unless it is 1: "1 epoch", "3 steps",
    "0 batches" (`counted(0, "batch", "batches")`). For the counts the training logs give, any of which may be 1."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def parameter_count(weights) -> int:
    return int(sum(np.prod(weight.shape) for weight in weights))


def phase_summary(model: keras.Model, phase: Phase) -> str:
    """One line saying what `phase` trains: epochs, learning rate, trainable vs frozen parameters, layers.

    Call it after the phase's trainable layers are set (`freezing.set_trainable`).
    """
    trainable = parameter_count(model.trainable_weights)
    frozen = parameter_count(model.non_trainable_weights)
    backbone = model.get_layer(layer_names.BACKBONE)
    training = [layer.name for layer in backbone.layers if layer.trainable_weights]
    head = [layer.name for layer in model.layers if layer is not backbone and layer.trainable_weights]
    if training and phase.lora_rank is not None:
        layers = (f"{_names(head)} and rank-{phase.lora_rank} LoRA adapters in backbone layers {_names(training)} "
                  f"({len(training)} of {len(backbone.layers)}; their own weights frozen)")
    elif training:
        layers = (f"{_names(head)} and backbone layers {_names(training)} "
                  f"({len(training)} of {len(backbone.layers)}{_frozen_batch_norm(backbone, phase.fine_tune_at)})")
    else:
        layers = f"{_names(head)}; backbone frozen" + (
            " (its features computed once, then cached)" if phase.cache_features else "")
    epochs = f"{counted(phase.epochs, 'epoch')} of {counted(phase.steps, 'step')}"
    average = "" if phase.ema_momentum is None else f", weights averaged at momentum {phase.ema_momentum:g}"
    if phase.interpolation != 1.0:
        average += f", ending {phase.interpolation:g} of the way from its starting weights to its trained ones"
    return (f"{phase.name}: {epochs}, peak learning rate {phase.learning_rate:.3g}{average}; "
            f"{trainable:,} trainable / {frozen:,} frozen parameters; training {layers}.")


def _frozen_batch_norm(backbone: keras.Model, fine_tune_at) -> str:
    """", BatchNorm frozen" if the unfrozen top of `backbone` has BatchNorm (kept frozen), else nothing: a
    transformer has none."""
    start = 0 if fine_tune_at is None else freezing.first_trainable_index(backbone.layers, fine_tune_at)
    return ", BatchNorm frozen" if freezing.has_batch_norm(backbone.layers[start:]) else ""


def _names(names: list[str]) -> str:
    if len(names) <= _NAMES_SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:_NAMES_SHOWN - 1])}, ... {names[-1]}"
