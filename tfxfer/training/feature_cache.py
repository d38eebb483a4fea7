"""Phase-1 feature caching: the frozen backbone runs once over the data, not every epoch.

While the backbone is frozen (and its BatchNorm in inference mode), the features
the head sees for an example never change, so phase 1 can train the head alone
on features computed once. The model is cut where the head starts (the input of
its `dropout`/`predictions` layers): the *extractor* is everything below, the
*head* model reuses the head's own layers, so training it trains `model`. The
extractor runs with each BatchNorm folded into the convolution before it
(`batchnorm_folding`): the same features within float rounding, in about half the
time for MobileNetV2.

What the cache gives up: random augmentation before the backbone (an extractor
in inference mode applies none). `fine_tune` caches by default anyway: phase 1
trains the head on the clean images' features (a linear probe), and
augmentation starts in phase 2, when the backbone trains (see
`planner._resolve_cache_features`).
"""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.models import batchnorm_folding, layer_names
from tfxfer.training import console


@dataclasses.dataclass
class CachedPhase:
    """The head model and the cached datasets phase 1 trains and validates it on.

    Attributes:
        head: keras.Model. Features in, the model's predictions out; shares its layers.
        train: tf.data.Dataset. `(features, labels)` batches, reshuffled each epoch.
        validation: tf.data.Dataset | None. `(features, labels)` batches in order.
        seconds: float. Time spent extracting.
    """

    head: keras.Model
    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    seconds: float


def has_augmentation(model: keras.Model) -> bool:
    """Whether `model` has tfxfer's random augmentation layer (which a cache would skip)."""
    return any(layer.name == layer_names.AUGMENTATION for layer in model.layers)


def split_at_head(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """`(extractor, head)`: `model` cut where its head starts, sharing its layers."""
    # The shared dropout if there is one, else the (first task's) Dense layer: all of them take the same input.
    candidates = [layer for layer in model.layers if layer.name == layer_names.DROPOUT]
    candidates += [layer for layer in model.layers if layer_names.is_predictions(layer.name)]
    first_head_layer = candidates[0] if candidates else None
    if first_head_layer is None:
        raise ConfigError(
            f"Feature caching needs a head layer named {layer_names.DROPOUT!r} or "
            f"{layer_names.PREDICTIONS!r} (build the model with tfxfer), or pass "
            f"cache_features=False. Received: model={model.name!r}")
    features = first_head_layer.input
    extractor = keras.Model(model.input, features, name=f"{model.name}_extractor")
    head = keras.Model(features, model.output, name=f"{model.name}_head")
    return extractor, head


def cache_phase(model: keras.Model, train_data: tf.data.Dataset, validation_data: tf.data.Dataset | None,
                *, seed: int = 0, augmented_passes: int = 0) -> CachedPhase:
    """Runs the extractor of `model` once over both datasets and returns the head's phase.

    Args:
        model: keras.Model. A tfxfer model whose backbone is frozen.
        train_data: tf.data.Dataset. `(inputs, labels)` batches; the cached
            training set keeps its batch size (the largest batch's).
        validation_data: tf.data.Dataset | None. Same, for validation.
        seed: int. Seed of the per-epoch reshuffle of the cached training
            set. Fixed, so every worker of a multi-worker run shuffles alike
            and the strategy's sharding hands each a disjoint part.
        augmented_passes: int. For a model with an augmentation layer: the
            training features are extracted this many times from randomly
            augmented images, and each epoch draws as many batches as the
            data has from that pool. 0 extracts the clean images once.
            Validation features are always the clean images'.
    """
    start = time.perf_counter()
    extractor, head = split_at_head(model)
    # Inference mode: BatchNorm uses its moving statistics (so it folds into the convolution
    # before it), dropout and augmentation are off.
    extractor, folded = batchnorm_folding.fold_batch_norms(extractor)
    traced = _tracing(train_data, validation_data)
    extract = tf.function(_Extraction(extractor), **traced)
    passes = augmented_passes if has_augmentation(model) else 0
    if passes:
        extract_train = tf.function(_Extraction(extractor, model.get_layer(layer_names.AUGMENTATION)), **traced)
    else:
        extract_train = extract
    extracted = [_extract(extract_train, train_data) for _ in range(max(passes, 1))]
    train_features = np.concatenate([features for features, _, _ in extracted])
    train_labels = _concatenate([labels for _, labels, _ in extracted])
    batch_size = extracted[0][2]
    # An epoch is as many batches as the data has, drawn from all passes.
    examples = len(extracted[0][0])
    steps = -(-examples // batch_size)
    train = (tf.data.Dataset.from_tensor_slices((train_features, train_labels))
             .shuffle(len(train_features), seed=seed, reshuffle_each_iteration=True)
             .batch(batch_size).take(steps).prefetch(tf.data.AUTOTUNE))
    validation = None
    if validation_data is not None:
        val_features, val_labels, val_batch_size = _extract(extract, validation_data)
        validation = tf.data.Dataset.from_tensor_slices((val_features, val_labels)).batch(val_batch_size)
    seconds = time.perf_counter() - start
    augmented = console.counted(passes, "randomly augmented pass", "randomly augmented passes")
    logging.info("Cached phase-1 features of %d training examples (%s)%s in %.1fs%s.",
                 examples, train_features.shape[1:], f", {augmented}" if passes else "", seconds,
                 f" ({folded} BatchNorm layers folded into their convolutions)" if folded else "")
    return CachedPhase(head, train, validation, seconds)


class _Extraction:
    """The extractor in inference mode, after `augment` (in training mode, so random) if given.

    A callable object rather than a lambda: `tf.function` counts the traces of
    all functions with the same code together, so each call of `cache_phase`
    tracing its new extractor once (as it must: a new model, whose folded
    weights are copies made from the model's current ones) looked like one
    function retracing, and warned so after a few runs in one process. Each
    `_Extraction` is its own function to that count, traced once for all its
    batches (`_tracing`).
    """

    def __init__(self, extractor: keras.Model, augment: keras.Layer | None = None):
        self._extractor = extractor
        self._augment = augment

    def __call__(self, inputs):
        if self._augment is not None:
            # Augmented first, then the extractor in inference mode, whose own augmentation is then off.
            inputs = self._augment(inputs, training=True)
        return self._extractor(inputs, training=False)


def _tracing(*datasets) -> dict:
    """`tf.function` arguments that trace the extractor once for every batch of `datasets`.

    One input signature with the batch size (and any dimension the datasets
    disagree on) unknown: the last, partial batch of each dataset would otherwise
    trace the extractor again, about a second of phase 1 for a small image set.
    Inputs other than dense tensors fall back to `reduce_retracing`.
    """
    specs = [dataset.element_spec[0] for dataset in datasets if dataset is not None]
    if not all(isinstance(spec, tf.TensorSpec) and spec.shape.rank for spec in tf.nest.flatten(specs)):
        return {"reduce_retracing": True}

    def any_batch(*alike):
        spec = alike[0].most_specific_common_supertype(alike[1:])  # None where the dtypes differ
        return None if spec is None else tf.TensorSpec([None, *spec.shape[1:]], spec.dtype)

    signature = tf.nest.map_structure(any_batch, *specs)
    if any(spec is None for spec in tf.nest.flatten(signature)):
        return {"reduce_retracing": True}
    return {"input_signature": [signature]}


def _extract(extract, dataset):
    features, labels, batch_size = [], [], 0
    for inputs, batch_labels in dataset:
        features.append(extract(inputs).numpy())
        labels.append(tf.nest.map_structure(lambda tensor: tensor.numpy(), batch_labels))
        batch_size = max(batch_size, len(features[-1]))
    if not labels:
        raise ConfigError("Cannot cache features of an empty dataset; pass at least one batch. Received: 0 batches")
    return np.concatenate(features), _concatenate(labels), batch_size


def _concatenate(batches):
    """Label batches joined: arrays, or dicts of arrays per task (a multi-task model's labels)."""
    return tf.nest.map_structure(lambda *arrays: np.concatenate(arrays), *batches)
