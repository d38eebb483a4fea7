"""How `choose_defaults.py` scores a trained model: its accuracy, flip-averaged, and with its weights moved along
the line from phase 1's (WiSE-FT's weight-space ensemble, Wortsman et al. 2022); and how `training_seeds.py` scores
runs of several training seeds and their ensembles."""

import keras
import numpy as np
import tensorflow as tf


class Phase1Weights(keras.callbacks.Callback):
    """The whole model's weights at the end of phase 1 (after early stopping restored its best epoch)."""

    def __init__(self):
        super().__init__()
        self.weights = None

    def on_train_end(self, logs=None):
        if self.weights is None:  # fine_tune passes the same callbacks to both phases
            self.weights = self.model.get_weights()


def interpolated_accuracy(model: keras.Model, phase1_weights: list, validation: tf.data.Dataset,
                          mixing: float = 0.5) -> float:
    """Accuracy with the weights `mixing` of the way from phase 1's to `model`'s; `model` keeps its own."""
    final_weights = model.get_weights()
    model.set_weights([(1 - mixing) * start + mixing * end for start, end in zip(phase1_weights, final_weights)])
    try:
        return accuracy(model, validation)
    finally:
        model.set_weights(final_weights)


def accuracy(model: keras.Model, validation: tf.data.Dataset, *, flip_averaged: bool = False) -> float:
    """Accuracy on `validation`; `flip_averaged` averages each image's probabilities with its mirror image's."""
    single_unit = model.output_shape[-1] == 1  # two classes: one sigmoid unit
    metric = keras.metrics.BinaryAccuracy() if single_unit else keras.metrics.SparseCategoricalAccuracy()
    for images, labels in validation:
        probabilities = model.predict_on_batch(images)
        if flip_averaged:
            probabilities = (probabilities + model.predict_on_batch(tf.image.flip_left_right(images))) / 2
        metric.update_state(labels, probabilities)
    return float(metric.result())


OTHER_INTERPOLATIONS = (0.25, 0.75, 1.0)


def other_interpolations(model: keras.Model, phase1_weights: list, scoring: tf.data.Dataset,
                         run_interpolation: float) -> dict:
    """Accuracy at each of `OTHER_INTERPOLATIONS`, from a run that ended `run_interpolation` of the way to phase 2's
    own weights: the trained weights phase 2 left frozen and BatchNorm's statistics are phase 1's at both ends, so
    every point of the line is one network."""
    if run_interpolation == 0:  # the final weights are phase 1's: phase 2's own are gone
        return {}
    return {str(alpha): interpolated_accuracy(model, phase1_weights, scoring, mixing=alpha / run_interpolation)
            for alpha in OTHER_INTERPOLATIONS}


def photos_right(probabilities: list[np.ndarray], labels: np.ndarray, offsets: list[int]) -> dict:
    """Photos right of each run (`member_<offset>`), their mean, and of each ensemble of the first n runs.

    probabilities: list of arrays `(photos, 1)`, one a run: the one sigmoid unit of a two-class head.
    """
    def right(probs: np.ndarray) -> int:
        return int(((probs[:, 0] > 0.5) == labels).sum())

    members = {f"member_{offset}": right(probs) for offset, probs in zip(offsets, probabilities)}
    ensembles = {f"ensemble_{n}": right(np.mean(probabilities[:n], axis=0)) for n in range(2, len(probabilities) + 1)}
    return {"scored": len(labels), **members, "mean_member": float(np.mean(list(members.values()))), **ensembles}
