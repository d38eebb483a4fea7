"""Seeding, and bit-for-bit repeatable runs on request.

A seed alone fixes the initial weights, splits, shuffles and augmentation, but
several TensorFlow kernels (parallel reductions, some GPU convolutions, tf.data's
parallel maps) may still add floating-point numbers in a different order on each
run. `enable_op_determinism` makes them pick one order, at some cost in speed.
Results still differ between machines: another CPU (oneDNN kernels with or
without AVX-512), GPU, thread count or TensorFlow version rounds differently.
"""

import keras
import tensorflow as tf
from absl import logging


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seeds Python, NumPy and TensorFlow; with `deterministic`, also makes TF's ops repeatable.

    Call it before building models or loading data: initial weights and tf.data
    shuffles take their seeds when they are created.

    Args:
        seed: int. The seed of every random stream.
        deterministic: bool. Turns on
            `tf.config.experimental.enable_op_determinism()`, so the same code
            on the same machine gives identical weights and metrics run after
            run. It stays on for the rest of the process and slows some ops.

    Example:

    >>> tfxfer.seed_everything(42)
    >>> first = np.random.rand(3)
    >>> tfxfer.seed_everything(42)
    >>> bool((np.random.rand(3) == first).all())
    True

    For repeatable training, before building the model and loading the data:

    ```python
    tfxfer.seed_everything(0, deterministic=True)
    model = tfxfer.build_image_classifier("mobilenet_v2", num_classes=3, weights=None)
    ```
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        logging.info("Deterministic ops on, seed %d: reruns on this machine give identical results.", seed)
