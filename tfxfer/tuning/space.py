"""What hyperparameter search varies: the settings that matter for transfer learning, and their ranges.

A search space is a function of KerasTuner's `HyperParameters` that returns the
trial's settings: `FineTuneConfig` field names, plus `"dropout"` (the head's
rate, set on the built model by `heads.set_dropout`). `default_space(model)`
is tfxfer's; users pass their own to `tfxfer.tune(search_space=...)`:

```python
def search_space(hp):
    return {"fine_tune_learning_rate": hp.Float("fine_tune_learning_rate", 1e-5, 1e-3, sampling="log"),
            "dropout": hp.Choice("dropout", [0.1, 0.3, 0.5])}
```

The default ranges span about a decade around tfxfer's defaults, the spread over
which the usual transfer-learning recipes set these values (phase-2 rates of
1e-5 to 1e-3, BERT's 1e-5 to 1e-4 for transformers).
"""

import dataclasses
from collections.abc import Callable

import keras
import keras_tuner

from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError
from tfxfer.models import classifier, layer_names
from tfxfer.training import layerwise_lr

SearchSpace = Callable[[keras_tuner.HyperParameters], dict]
DROPOUT = "dropout"
# Searching these would change what the search measures or how long a trial runs, not how well it trains.
_NOT_SEARCHABLE = ("epochs", "fine_tune_epochs", "mixed_precision", "jit_compile", "early_stopping_patience")
# The settings that shape phase 2 alone: with `fine_tune_epochs=0` there is no phase 2, and they change nothing.
PHASE_2_SETTINGS = ("fine_tune_learning_rate", "fine_tune_at", "warmup_fraction", "layer_decay", "lora_rank",
                    "fine_tune_ema_momentum", "fine_tune_interpolation")


def default_space(model: keras.Model, phase_2: bool = True) -> SearchSpace:
    """tfxfer's search space for `model`: learning rates, `fine_tune_at`, regularisation; `layer_decay` for
    transformer backbones; the head's dropout when the model has a dropout layer. Without `phase_2` (a config
    with `fine_tune_epochs=0`), none of `PHASE_2_SETTINGS`."""
    text = classifier.text_preprocessor(model) is not None
    blocks = phase_2 and _has_transformer_blocks(model)
    dropout = any(layer.name == layer_names.DROPOUT for layer in model.layers)

    def space(hp: keras_tuner.HyperParameters) -> dict:
        settings = {"learning_rate": hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")}
        if phase_2:
            settings["fine_tune_learning_rate"] = (
                hp.Float("fine_tune_learning_rate", 1e-5, 2e-4, sampling="log") if text
                else hp.Float("fine_tune_learning_rate", 2e-5, 1e-3, sampling="log"))
            # Fractions of the backbone's layers, counted from the top.
            settings["fine_tune_at"] = hp.Choice("fine_tune_at", [0.25, 0.5] if text else [0.1, 0.2, 0.3, 0.5])
        settings["label_smoothing"] = hp.Choice("label_smoothing", [0.0, 0.1, 0.2])
        settings["weight_decay"] = hp.Float("weight_decay", 1e-5, 1e-2, sampling="log")
        if blocks:
            settings["layer_decay"] = hp.Choice("layer_decay", [0.7, 0.8, 0.9, 1.0])
        if dropout:
            settings[DROPOUT] = hp.Choice(DROPOUT, [0.0, 0.1, 0.2, 0.3, 0.5])
        return settings

    return space


def split_settings(settings: dict, base: FineTuneConfig) -> tuple[FineTuneConfig, float | None]:
    """`(config, dropout)`: `base` with a trial's settings applied, and its dropout rate (None: unchanged).

    Raises:
        ConfigError: a setting that is not a `FineTuneConfig` field or `"dropout"`, or one the search must not vary.
    """
    settings = dict(settings)
    dropout = settings.pop(DROPOUT, None)
    fields = {field.name for field in dataclasses.fields(FineTuneConfig)} - set(_NOT_SEARCHABLE)
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ConfigError(
            f"A search space returns FineTuneConfig fields and 'dropout'; {', '.join(map(repr, unknown))} "
            f"{'is' if len(unknown) == 1 else 'are'} not among them. Searchable: "
            f"{', '.join(sorted([*fields, DROPOUT]))} (the phases' lengths are tune()'s own arguments). "
            f"Received: {sorted(settings)}")
    return base.replace(**settings), dropout


def _has_transformer_blocks(model: keras.Model) -> bool:
    """Whether layer-wise learning-rate decay applies to `model`'s backbone."""
    try:
        layerwise_lr.layer_learning_rate_multipliers(model, 0.9)
    except ConfigError:
        return False
    return True
