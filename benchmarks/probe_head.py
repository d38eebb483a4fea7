"""The `probe_head` candidate of `choose_defaults.py`: phase 2 starts from the converged linear probe.

Phase 1 trains the head with AdamW for a few epochs on cached features; the benchmark's probe
(`linear_probe.py`: logistic regression at C = 1 on standardised features, solved to
convergence) is the same linear model fitted exactly. The LP-FT recipe (Kumar et al. 2022)
starts fine-tuning from such a probe. This callback sets the head to it at the end of phase 1,
the standardisation folded into the Dense layer's kernel and bias, so phase 2 (and the
halfway blend, which starts from phase 2's first weights) begins there.
"""

import keras
import linear_probe
import numpy as np
import tensorflow as tf

from tfxfer.models import layer_names


class ConvergedProbeHead(keras.callbacks.Callback):
    """At the end of phase 1, sets the model's `predictions` layer to the linear probe fitted on `train`'s features."""

    def __init__(self, train: tf.data.Dataset):
        super().__init__()
        self.train = train
        self.done = False

    def on_train_end(self, logs=None):
        if self.done:  # fine_tune passes the same callbacks to both phases
            return
        self.done = True
        dense = self.model.get_layer(layer_names.PREDICTIONS)
        features, labels = head_inputs(self.model, self.train)
        scaler, probe = linear_probe.linear_probe(standardise=True).fit(features, labels)
        # w . (x - mean) / scale + b  ==  (w / scale) . x + (b - (w / scale) . mean)
        kernel = probe.coef_ / scaler.scale_
        bias = probe.intercept_ - kernel @ scaler.mean_
        if kernel.T.shape != dense.kernel.shape:
            raise ValueError(f"The probe's kernel {kernel.T.shape} does not fit the head's {dense.kernel.shape}")
        dense.set_weights([kernel.T.astype(np.float32), bias.astype(np.float32)])


def head_inputs(model: keras.Model, data: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(features the head reads, labels) of every example of `data`, the model in inference mode."""
    extractor = keras.Model(model.inputs, model.get_layer(layer_names.PREDICTIONS).input)
    batches = [(extractor(inputs, training=False).numpy(), labels.numpy()) for inputs, labels in data]
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]).reshape(-1)
