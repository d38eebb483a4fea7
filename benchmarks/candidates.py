"""Candidate training defaults by name: the `tfxfer.FineTuneConfig` or model changes each makes.

`choose_defaults.py` runs them on splits of the photos' training set and
`digits_defaults.py` on the offline digits task, so a name means the same change in both.
"""

import sys

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
    "label_smoothing_0.2": {"label_smoothing": 0.2},
    "probe40": {"epochs": 40},
}

# Candidates that change the model instead: `tfxfer.build_image_classifier` arguments.
BUILD_CHANGES = {
    "no_dropout": {"dropout": 0.0},
    "dropout_0.2": {"dropout": 0.2},
    "dropout_0.5": {"dropout": 0.5},
}

# Candidates that change how `tfxfer.fine_tune` is called instead: its own arguments.
FIT_CHANGES = {
    "lr_finder": {"find_learning_rate": 1},  # phase 1 at the learning-rate finder's suggestion, not the config's
}

NAMES = [*CONFIG_CHANGES, *BUILD_CHANGES, *FIT_CHANGES]

DROPOUT_FLAG_HELP = ("The head's dropout rate of every variant but the dropout ones; default: build_image_classifier's "
                     "(0; the comparisons before \"The head's dropout\" ran with 0.2).")


INTERPOLATION_FLAG_HELP = ("Phase 2's fine_tune_interpolation of every variant; default: FineTuneConfig's (0.5; the "
                           "comparisons before \"Phase 2's weights, halfway back\" ran with 1).")


def config(changes: dict, epochs: int | None = None, interpolation: float | None = None) -> tfxfer.FineTuneConfig:
    """The defaults with `changes`, then `epochs` phase-1 epochs and phase 2's `interpolation`, each unless None.

    benchmarks/README.md's comparisons before "Phase 1's length" ran with 10 epochs (`--epochs=10`), and those before
    "Phase 2's weights, halfway back" with an interpolation of 1 (`--fine_tune_interpolation=1`): the defaults then.
    """
    flags = {"epochs": epochs, "fine_tune_interpolation": interpolation}
    return tfxfer.FineTuneConfig(**changes).replace(**{name: value for name, value in flags.items()
                                                       if value is not None})


def exit_on_unknown(variants: list[str], known) -> None:
    """Ends the script with a message naming the `variants` not among `known`, and the known ones."""
    unknown = sorted(set(variants) - set(known))
    if unknown:
        sys.exit(f"Unknown --variants {', '.join(unknown)}: pass some of {', '.join(known)}.")


def build_changes(variant: str, dropout: float | None = None) -> dict:
    """`build_image_classifier` arguments of `variant`: its own, and the head's `dropout` rate unless None.

    benchmarks/README.md's comparisons before "The head's dropout" ran with 0.2 (`--dropout=0.2`), the default then.
    """
    changes = BUILD_CHANGES.get(variant, {})
    return changes if dropout is None else {"dropout": dropout, **changes}


def fit_changes(variant: str) -> dict:
    """`tfxfer.fine_tune` arguments of `variant` (none for most)."""
    return FIT_CHANGES.get(variant, {})
