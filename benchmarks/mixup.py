"""Phase 2 on mixed images (mixup or CutMix), for `choose_defaults.py`.

Both were measured as candidates before building either into tfxfer's training
loop: `mixing(mode)` swaps them into `TrainLoop`'s training step while a run
trains. Phase 1 trains on cached features and is left as it is; in phase 2 each
batch's images are paired with the same batch in a random order and mixed by a
share `lam` drawn once a batch from Beta(alpha, alpha):
- **mixup** (Zhang et al. 2018): `lam` of one image's pixels plus `1 - lam` of the other's,
  alpha 0.2 (the paper's ImageNet setting);
- **cutmix** (Yun et al. 2019): a box of the other image, `1 - lam` of the area, pasted into
  the first, alpha 1 (the paper's), `lam` then set to the area the first image kept.
Each example's loss is `lam` times its loss against its own label plus `1 - lam` times
its loss against its partner's: the mixed target's cross-entropy (label smoothing included),
with the integer labels the loop takes. The augmentation inside the model then
transforms the mixed image. Validation and scoring see the images as they are.
"""

import contextlib

import tensorflow as tf

from tfxfer.training import loop

ALPHAS = {"mixup": 0.2, "cutmix": 1.0}
MODES = tuple(ALPHAS)


def _beta(alpha: float) -> tf.Tensor:
    first, second = tf.random.gamma([], alpha), tf.random.gamma([], alpha)
    return first / (first + second)


def _mixup(images, partners, lam):
    return lam * images + (1.0 - lam) * partners, lam


def _cutmix(images, partners, lam):
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    side = tf.sqrt(1.0 - lam)  # the box's height and width, as shares of the image's
    box_height = tf.cast(side * tf.cast(height, tf.float32), tf.int32)
    box_width = tf.cast(side * tf.cast(width, tf.float32), tf.int32)
    centre_y = tf.random.uniform([], 0, height, tf.int32)
    centre_x = tf.random.uniform([], 0, width, tf.int32)
    top, bottom = tf.maximum(centre_y - box_height // 2, 0), tf.minimum(centre_y + box_height // 2, height)
    left, right = tf.maximum(centre_x - box_width // 2, 0), tf.minimum(centre_x + box_width // 2, width)
    rows, columns = tf.range(height), tf.range(width)
    inside = ((rows >= top) & (rows < bottom))[:, None] & ((columns >= left) & (columns < right))[None, :]
    mixed = tf.where(inside[None, :, :, None], partners, images)
    kept = 1.0 - tf.cast((bottom - top) * (right - left), tf.float32) / tf.cast(height * width, tf.float32)
    return mixed, kept


_MIXERS = {"mixup": _mixup, "cutmix": _cutmix}


@contextlib.contextmanager
def mixing(mode: str | None):
    """Within the block, phase 2's training steps mix their images by `mode` (one of `MODES`); None changes nothing.

    Traced inside the block: `fine_tune` builds a new `TrainLoop` per phase, so the whole run must be inside.
    """
    if mode is None:
        yield
        return
    train_replica, example_losses = loop.TrainLoop._train_replica, loop.TrainLoop._example_losses

    def mixed_train_replica(self, batch):
        if self._network is not self.model:  # phase 1: the head on cached features
            return train_replica(self, batch)
        images, labels = batch
        order = tf.random.shuffle(tf.range(tf.shape(images)[0]))
        mixed, lam = _MIXERS[mode](images, tf.gather(images, order), _beta(ALPHAS[mode]))
        self._mix = (order, lam)  # read by the loss while this step is traced
        try:
            return train_replica(self, (mixed, labels))
        finally:
            del self._mix

    def mixed_example_losses(self, labels, probabilities):
        mix = getattr(self, "_mix", None)
        if mix is None:  # validation, and phase 1
            return example_losses(self, labels, probabilities)
        order, lam = mix
        return (lam * example_losses(self, labels, probabilities)
                + (1.0 - lam) * example_losses(self, tf.gather(labels, order), probabilities))

    loop.TrainLoop._train_replica, loop.TrainLoop._example_losses = mixed_train_replica, mixed_example_losses
    try:
        yield
    finally:
        loop.TrainLoop._train_replica, loop.TrainLoop._example_losses = train_replica, example_losses
