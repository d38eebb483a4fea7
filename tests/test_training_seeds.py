"""`benchmarks/training_seeds.py`: how it counts each run's photos right and its ensembles'."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import training_seeds  # noqa: E402


def test_runs_and_ensembles_of_the_first_runs_are_scored_by_their_averaged_probabilities():
    labels = np.array([1, 0, 1, 0])
    runs = [np.array([[0.9], [0.2], [0.4], [0.6]]),   # right on photos 0 and 1
            np.array([[0.8], [0.3], [0.8], [0.1]]),   # right on all four
            np.array([[0.1], [0.9], [0.2], [0.45]])]  # right on photo 3 only
    scores = training_seeds.photos_right(runs, labels, [0, 1000, 2000])
    # Averages: the first two runs (0.85, 0.25, 0.6, 0.35) get all four right; all three
    # (0.6, 0.467, 0.467, 0.383) miss photo 2.
    assert scores == {"scored": 4, "member_0": 2, "member_1000": 4, "member_2000": 1,
                      "mean_member": 7 / 3, "ensemble_2": 4, "ensemble_3": 3}


def test_one_run_has_no_ensemble():
    scores = training_seeds.photos_right([np.array([[0.7], [0.7]])], np.array([1, 0]), [0])
    assert scores == {"scored": 2, "member_0": 1, "mean_member": 1.0}
