"""Phase 2 with sharpness-aware minimisation (SAM, Foret et al. 2021), for `choose_defaults.py`.

Measured as a candidate before building it into tfxfer's training loop:
`sharpness_aware(rho)` swaps it into `TrainLoop`'s training step while a run
trains. Each phase-2 step first computes the batch's gradient, moves the trainable
weights `rho` along it (normalised to length `rho`: towards the highest loss
nearby), then takes the loop's own step there, whose gradient the optimizer applies
to the weights as they were. Phase 1 (the head on cached features) is left as it
is. The augmentation inside the model draws anew in the second pass: the two
gradients see the same images, differently transformed. Twice phase 2's compute.
"""

import contextlib

import tensorflow as tf

from tfxfer.training import loop

RHO = 0.05  # the paper's default


@contextlib.contextmanager
def sharpness_aware(rho: float | None):
    """Within the block, phase 2's training steps are SAM's, with `rho`; None changes nothing. The whole run must
    be inside: `fine_tune` builds and traces a new `TrainLoop` per phase."""
    if rho is None:
        yield
        return
    train_replica = loop.TrainLoop._train_replica

    def sam_train_replica(self, batch):
        if self._network is not self.model:  # phase 1: the head on cached features
            return train_replica(self, batch)
        inputs, labels = batch
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(self._example_losses(labels, self._network(inputs, training=True)))
        gradients = tape.gradient(loss, variables)
        scale = rho / (tf.linalg.global_norm(gradients) + 1e-12)
        moves = [gradient * scale for gradient in gradients]
        for variable, move in zip(variables, moves):
            variable.assign_add(move)
        apply = self.optimizer.apply

        def apply_where_they_were(step_gradients, step_variables):
            for variable, move in zip(step_variables, moves):
                variable.assign_sub(move)
            return apply(step_gradients, step_variables)

        self.optimizer.apply = apply_where_they_were  # for this step's trace only
        try:
            return train_replica(self, batch)
        finally:
            del self.optimizer.apply

    loop.TrainLoop._train_replica = sam_train_replica
    try:
        yield
    finally:
        loop.TrainLoop._train_replica = train_replica
