"""Candidate training defaults by name: the `tfxfer.FineTuneConfig` changes each makes.

`choose_defaults.py` runs them on splits of the photos' training set and
`digits_defaults.py` on the offline digits task, so a name means the same change in both.
"""

import tfxfer

CONFIG_CHANGES = {
    "clean": {},  # tfxfer's defaults: phase 1 on the clean images' cached features
    "aug2": {"augmented_feature_passes": 2},
    "ema": {"fine_tune_ema_momentum": 0.9},
    "head_rate": {"learning_rate": 1e-2},
    "lr3x": {"fine_tune_learning_rate": 3e-4},
    "lr_third": {"fine_tune_learning_rate": 3e-5},
    "deeper": {"fine_tune_at": 0.6},
    "shallower": {"fine_tune_at": 0.15},
    "no_early_stopping": {"early_stopping_patience": None},
    "five_epochs": {"fine_tune_epochs": 5, "early_stopping_patience": None},
    "weight_decay": {"weight_decay": 1e-2},
    "no_label_smoothing": {"label_smoothing": 0.0},
    "probe40": {"epochs": 40},
}


def config(changes: dict, epochs: int | None = None) -> tfxfer.FineTuneConfig:
    """The defaults with `changes`, and `epochs` phase-1 epochs unless None.

    The README's comparisons before "Phase 1's length" ran with 10 (`--epochs=10`), the default then.
    """
    config = tfxfer.FineTuneConfig(**changes)
    return config if epochs is None else config.replace(epochs=epochs)
