"""The linear probe the benchmarks measure tfxfer against: logistic regression on frozen features."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def linear_probe(standardise: bool = True):
    """scikit-learn's logistic regression at its default regularisation (C = 1), on features standardised with
    the training rows' mean and deviation, or as they are (`standardise=False`).

    Unstandardised, the same L2 penalty weighs each feature by its scale. Which probe is the stronger floor
    depends on the features, so each benchmark takes the one that did better on splits of its training
    data (`probe_scaling.py`): standardised for the photos' MobileNetV2 features (ahead at both sizes);
    as they are for the texts' MiniLM ones (level, so the text probe stays as it was).
    """
    probe = LogisticRegression(max_iter=5000)
    return make_pipeline(StandardScaler(), probe) if standardise else probe


def compare_scalings(features: np.ndarray, labels: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Both probes on each `(fit, scored)` split of `features`: examples right, and splits the standardised
    one is ahead and behind on."""
    right = {standardise: [] for standardise in (True, False)}
    for fit, scored in splits:
        for standardise, counts in right.items():
            probe = linear_probe(standardise).fit(features[fit], labels[fit])
            counts.append(int((probe.predict(features[scored]) == labels[scored]).sum()))
    standardised, unscaled = np.array(right[True]), np.array(right[False])
    return {"splits": len(splits), "scored": int(sum(len(scored) for _, scored in splits)),
            "standardised_right": int(standardised.sum()), "unscaled_right": int(unscaled.sum()),
            "standardised_ahead": int((standardised > unscaled).sum()),
            "standardised_behind": int((standardised < unscaled).sum())}
