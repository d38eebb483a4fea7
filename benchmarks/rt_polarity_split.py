"""rt-polarity as the text benchmarks train on it: the seeded 90/10 split, or a fixed sample of it for smoke tests.

tfxfer (and with it TensorFlow) is imported inside the functions, so that a
process that only times an export or starts others does not load it.
"""

import dataclasses
import os

import numpy as np

DATA = "data/rt-polarity"
VALIDATION_SPLIT = 0.1
BATCH_SIZE = 32


def load(shared_dir: str, seed: int, max_examples: int | None = None):
    """The seeded split (`tfxfer.load_text_data`); with `max_examples`, a random sample of that many training
    and a tenth as many validation sentences, the same every epoch."""
    import tfxfer

    data = tfxfer.load_text_data(os.path.join(shared_dir, DATA), validation_split=VALIDATION_SPLIT, seed=seed,
                                 batch_size=BATCH_SIZE)
    if max_examples is None:
        return data
    return dataclasses.replace(data, train=sample(data.train, max_examples, seed),
                               validation=sample(data.validation, max(max_examples // 10, 1), seed),
                               raw_texts=None, bucketed=None)


def sample(dataset, count: int, seed: int):
    """`count` random examples of `(texts, labels)` batches, read once: the loader reshuffles the training
    set every pass, `distill` needs the same examples every epoch, and the validation set comes class by class."""
    import tensorflow as tf

    texts, labels = unbatched(dataset)
    chosen = np.random.default_rng(seed).permutation(len(labels))[:count]
    return tf.data.Dataset.from_tensor_slices(([texts[i] for i in chosen], labels[chosen])).batch(BATCH_SIZE)


def unbatched(dataset) -> tuple[list[str], np.ndarray]:
    """The texts and labels of `(texts, labels)` batches."""
    texts, labels = zip(*dataset.unbatch().as_numpy_iterator())
    return [text.decode("utf-8") for text in texts], np.asarray(labels)
