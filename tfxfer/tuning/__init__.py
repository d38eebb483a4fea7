"""Hyperparameter search for `fine_tune` on KerasTuner: `tfxfer.tune` (`search`) over a search space (`space`).

The names here import nothing else, so recipes can define their flags without loading KerasTuner.
"""

# KerasTuner's oracles, by the name `tune(tuner=...)` and `--tune` take.
TUNERS = ("random", "bayesian", "hyperband")
