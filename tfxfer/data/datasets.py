"""`Datasets`: what every loader returns, for image and text data alike.

`ImageDatasets` (`tfxfer.data.pipeline`) and `TextDatasets`
(`tfxfer.data.text_data`) extend it with only what is specific to their data,
so training, reports and exports read the same fields from either.
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass
class Datasets:
    """Batched training and validation data for a classifier.

    Attributes:
        train: tf.data.Dataset. Batches of `(inputs, labels)`, reshuffled every
            epoch (seeded); its cardinality is known.
        validation: tf.data.Dataset | None. Batched like `train`, never
            shuffled. None when there is no validation data.
        class_names: list[str]. Label `i` means `class_names[i]`.
        train_size: int. Training examples.
        validation_size: int. Validation examples (0 when `validation` is None).
        train_class_counts: list[int]. Training examples per class, in
            `class_names` order (what `class_weight="balanced"` needs).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: list[str]
    train_size: int
    validation_size: int
    train_class_counts: list[int]

    def summary(self) -> dict:
        """JSON-ready facts about the data, for run reports and export metadata."""
        return {
            "class_names": self.class_names,
            "train_size": self.train_size,
            "validation_size": self.validation_size,
            "train_class_counts": self.train_class_counts,
        }
