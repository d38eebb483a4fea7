"""The offline main job: transfer learning, end to end, on scikit-learn's digits.

An app over the library, not part of it. A MobileNetV2 is pretrained from
scratch on digits 0-4 (the source task), saved as a `.keras` file, then used as
the backbone of a tfxfer classifier for digits 5-9 with only a few labels per
class (the target task). The same network trained from scratch on those few
labels is the baseline the transfer must beat.

What gives the margin room to hold across machines (measured over seeds with
oneDNN on and off: benchmarks/digits_seeds.py):
- The head reads the backbone's 4x4 feature map flattened, not averaged: which
  strokes are where is what tells a 7 from a 9, and global pooling throws it
  away. It is also the larger part of the margin over scratch.
- Neither model selects epochs on the validation set (no early stopping), so the
  validation accuracy is an honest estimate for both.
- Each of the three trainings starts from the seed, so the baseline does not
  depend on what ran before it.
"""

import dataclasses
import os
import time

import digits_data
import keras
from absl import logging

import tfxfer

# Mid-level features (4x4 at 32x32 input) transfer to new digits far better than
# the last block, which a 5-class source task specialises to its own classes.
FEATURES_LAYER = "block_6_expand_relu"


@dataclasses.dataclass
class DigitsTransferReport:
    source_val_accuracy: float
    transfer_val_accuracy: float
    scratch_val_accuracy: float
    pixel_logistic_regression_val_accuracy: float
    transfer_metrics: dict
    class_names: list[str]
    labels_per_class: int
    seconds: float
    source_model_path: str

    def comparison(self) -> dict:
        return {
            "source_val_accuracy": self.source_val_accuracy,
            "transfer_val_accuracy": self.transfer_val_accuracy,
            "scratch_val_accuracy": self.scratch_val_accuracy,
            "pixel_logistic_regression_val_accuracy": self.pixel_logistic_regression_val_accuracy,
            "labels_per_class": self.labels_per_class,
            "seconds": round(self.seconds, 1),
        }

    def table(self) -> str:
        """A plain-text comparison for the terminal."""
        return "\n".join([
            f"Source task, digits 0-4 (pretraining):          val_accuracy {self.source_val_accuracy:.3f}",
            f"Target task, digits 5-9, {self.labels_per_class} labels per class:",
            f"  transferred backbone (tfxfer.fine_tune):      val_accuracy {self.transfer_val_accuracy:.3f}",
            f"  same network trained from scratch:            val_accuracy {self.scratch_val_accuracy:.3f}",
            f"  reference: logistic regression on the pixels: val_accuracy "
            f"{self.pixel_logistic_regression_val_accuracy:.3f}",
            f"Wall time: {self.seconds:.0f}s",
        ])


def build_mobilenet_v2(num_classes: int, alpha: float = 0.35, seed: int | None = None) -> keras.Model:
    """A flat MobileNetV2 classifier for 32x32 [0, 255] images, trained end to end.

    Flat (no nested sub-model) so that a layer such as `block_6_expand_relu`
    can later be named as the cut point of the backbone.
    """
    inputs = keras.Input((digits_data.IMAGE_SIZE, digits_data.IMAGE_SIZE, 3), name="images")
    x = digit_augmentation(seed)(inputs)
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescaling")(x)
    base = keras.applications.MobileNetV2(
        input_tensor=scaled, include_top=False, weights=None, alpha=alpha)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # keras.applications use momentum 0.999, tuned for ImageNet-length
            # runs; over a few hundred steps the moving statistics would stay
            # near their initial values and inference would be at chance.
            layer.momentum = 0.9
    x = keras.layers.GlobalAveragePooling2D(name="pooler")(base.output)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="digits_mobilenet_v2")


def digit_augmentation(seed: int | None = None) -> keras.Sequential:
    """Digits are not mirror-symmetric: no flips, only small shifts, zooms and turns."""
    return tfxfer.default_image_augmentation(flip=None, rotation=0.03, zoom=0.1, translation=0.1, seed=seed)


def train_from_scratch(model, train, validation, *, epochs: int, learning_rate: float = 3e-3) -> float:
    """Trains every layer (BatchNorm in training mode); returns validation accuracy."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    # Built here, the optimizer's slots exist before `fit` traces its step; created inside
    # that trace, they would make TensorFlow trace the whole training step a second time.
    model.optimizer.build(model.trainable_variables)
    # shuffle=False: `train` is a tf.data.Dataset, shuffled (or not) as it was made; Keras ignores the default
    # shuffle=True for one, and warns that it does.
    model.fit(train, epochs=epochs, shuffle=False, verbose=0)
    return float(model.evaluate(validation, verbose=0, return_dict=True)["accuracy"])


def pixel_logistic_regression(train: digits_data.ArraySplit, validation: digits_data.ArraySplit) -> float:
    """Validation accuracy of a logistic regression on the raw grey pixels.

    Not a network, and not what the job is about: 8x8 digits are simple enough
    for a linear model on pixels to do well, and the report says so.
    """
    from sklearn.linear_model import LogisticRegression

    def pixels(split):
        return split.images[..., 0].reshape(len(split.images), -1) / 255.0

    classifier = LogisticRegression(max_iter=5000).fit(pixels(train), train.labels)
    return float(classifier.score(pixels(validation), validation.labels))


def transfer_config() -> tfxfer.FineTuneConfig:
    """How the target task is fine-tuned.

    50 labelled images make 7 batches of 8 an epoch: more epochs and higher
    learning rates than the photo defaults, or the head barely moves. No early
    stopping: it would pick the epoch on the validation set that is reported.
    """
    return tfxfer.FineTuneConfig(epochs=30, fine_tune_epochs=20, learning_rate=1e-2, fine_tune_learning_rate=1e-3,
                                 early_stopping_patience=None)


def pretrain_source(task: digits_data.DigitsTransferTask, work_dir: str, *, epochs: int = 30, batch_size: int = 32,
                    seed: int = 0) -> tuple[str, float]:
    """Trains the network from scratch on the source digits (0-4) and saves it in `work_dir`.

    Returns:
        The `.keras` file's path and the source validation accuracy.
    """
    keras.utils.set_random_seed(seed)
    source = build_mobilenet_v2(len(digits_data.SOURCE_DIGITS), seed=seed)
    accuracy = train_from_scratch(source, task.source_train.dataset(batch_size, shuffle_seed=seed),
                                  task.source_validation.dataset(batch_size), epochs=epochs)
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, "source_digits_0_4.keras")
    source.save(path)
    logging.info("Source task (digits 0-4): val_accuracy=%.4f, saved to %s", accuracy, path)
    return path, accuracy


def build_target_classifier(source_path: str, *, seed: int = 0, **build_changes) -> keras.Model:
    """A tfxfer classifier of the target digits (5-9) on the saved source network's features.

    `build_changes` are further `tfxfer.build_image_classifier` arguments (e.g. `dropout`).
    """
    # No augmentation on the target: at 32 pixels from 8, shifts and zooms blur
    # ten examples a class more than they add (source pretraining had it).
    keras.utils.set_random_seed(seed)
    return tfxfer.build_image_classifier(source_path, len(digits_data.TARGET_DIGITS),
                                         backbone_output_layer=FEATURES_LAYER, pooling="flatten",
                                         augmentation=False, seed=seed, **build_changes)


def run_digits_transfer(
    work_dir: str,
    *,
    labels_per_class: int = 10,
    source_epochs: int = 30,
    config: tfxfer.FineTuneConfig | None = None,
    batch_size: int = 8,
    scratch_batch_size: int = 32,
    seed: int = 0,
) -> tuple[keras.Model, DigitsTransferReport]:
    """Pretrains on digits 0-4, transfers to few-label digits 5-9, compares with scratch.

    Args:
        work_dir: str. Where the pretrained source model is saved.
        labels_per_class: int. Labelled target examples per class.
        source_epochs: int. Epochs of source pretraining.
        config: FineTuneConfig. Transfer settings (default `transfer_config()`).
            The scratch baseline gets as many epochs as both transfer phases together.
        batch_size: int. Batch size of the transfer.
        scratch_batch_size: int. Batch size of both from-scratch trainings
            (source pretraining and the baseline): BatchNorm that trains needs
            larger batches than a frozen backbone does.
        seed: int. Seed of data splits and weights.

    Returns:
        The transferred model and a `DigitsTransferReport`.
    """
    start = time.perf_counter()
    config = config or transfer_config()
    task = digits_data.load_digits_transfer(labels_per_class, seed)

    source_path, source_accuracy = pretrain_source(task, work_dir, epochs=source_epochs,
                                                   batch_size=scratch_batch_size, seed=seed)
    target_train = task.target_train.dataset(batch_size, shuffle_seed=seed)
    target_validation = task.target_validation.dataset(batch_size)
    model = build_target_classifier(source_path, seed=seed)
    # Silent, as the two trainings from scratch are: the job's output is the comparison table.
    result = tfxfer.fine_tune(model, target_train, target_validation, config=config, verbose=0)
    transfer_accuracy = (result.phase2 or result.phase1).final_metrics["val_accuracy"]

    keras.utils.set_random_seed(seed)
    scratch = build_mobilenet_v2(len(digits_data.TARGET_DIGITS), seed=seed)
    # The baseline gets the recipe that made the source model good, for as many
    # epochs as both transfer phases together.
    scratch_accuracy = train_from_scratch(
        scratch, task.target_train.dataset(scratch_batch_size, shuffle_seed=seed), target_validation,
        epochs=config.epochs + config.fine_tune_epochs)
    logging.info("Target task (digits 5-9, %d labels/class): transfer %.4f vs scratch %.4f",
                 labels_per_class, transfer_accuracy, scratch_accuracy)
    pixel_accuracy = pixel_logistic_regression(task.target_train, task.target_validation)
    report = DigitsTransferReport(source_accuracy, transfer_accuracy, scratch_accuracy, pixel_accuracy,
                                  result.metrics(),
                                  task.target_class_names, labels_per_class,
                                  time.perf_counter() - start, source_path)
    return model, report
