"""Tests for tfxfer.training.loop (the training loop of every strategy) and feature caching.

The loop replaces `Model.fit` (which fails under MultiWorkerMirroredStrategy), so
the reference it must match is `fit` itself: same data, same optimizer, same
weights after an epoch. Distributed runs are in tests/test_distribute.py.
"""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.models import layer_names
from tfxfer.models.heads import HeadKind
from tfxfer.training import feature_cache, losses
from tfxfer.training.loop import TrainLoop


def _dense_model(num_classes=3, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = tfxfer.models.heads.classification_head(hidden, num_classes, dropout=0.0)
    return keras.Model(inputs, outputs)


def _data(num_examples=22, num_classes=3, batch_size=8, seed=0):
    # 22 examples in batches of 8: the last batch is partial.
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(num_examples, 5)).astype("float32")
    labels = (np.arange(num_examples) % num_classes).astype("int32")
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size)


def _compile(model, kind, loss):
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, metrics=losses.metrics_for(kind))


@pytest.mark.parametrize("class_weight", [None, {0: 2.0, 1: 0.5, 2: 1.0}])
def test_loop_trains_exactly_like_keras_fit(class_weight):
    kind, loss = HeadKind.MULTICLASS, losses.loss_for(HeadKind.MULTICLASS, label_smoothing=0.1)
    reference, model = _dense_model(), _dense_model()
    _compile(reference, kind, loss)
    _compile(model, kind, loss)
    history = reference.fit(_data(), epochs=2, class_weight=class_weight, shuffle=False, verbose=0)
    loop_history = TrainLoop(model, kind, loss, class_weight).fit(_data(), epochs=2, steps=3)

    for ours, theirs in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    # Keras averages the loss over examples of the epoch, weighted as in training.
    np.testing.assert_allclose(loop_history.history["loss"], history.history["loss"], rtol=1e-5)
    if class_weight is None:  # (Keras weights its training accuracy too; tfxfer does not)
        np.testing.assert_allclose(loop_history.history["accuracy"], history.history["accuracy"], rtol=1e-6)


@pytest.mark.parametrize("num_classes, multi_label", [(3, False), (2, False), (3, True)])
def test_evaluate_matches_keras_evaluate_for_every_head(num_classes, multi_label):
    model = _dense_model(num_classes)
    if multi_label:
        model = keras.Model(model.input, tfxfer.models.heads.classification_head(
            model.get_layer("hidden").output, num_classes, multi_label=True, dropout=0.0))
    kind = tfxfer.models.heads.head_kind(model)
    loss = losses.loss_for(kind)
    _compile(model, kind, loss)
    data = _data(num_classes=num_classes)
    if multi_label:
        data = data.map(lambda x, y: (x, tf.one_hot(y, num_classes) + tf.one_hot((y + 1) % num_classes, num_classes)))
    expected = model.evaluate(data, verbose=0, return_dict=True)
    ours = TrainLoop(model, kind, loss).evaluate(data)
    assert ours == pytest.approx({"loss": expected["loss"], "accuracy": expected["accuracy"]}, rel=1e-5)


def test_example_accuracy_by_hand():
    probabilities = tf.constant([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    np.testing.assert_array_equal(losses.example_accuracy(HeadKind.MULTICLASS, tf.constant([0, 1]), probabilities),
                                  [1.0, 0.0])
    np.testing.assert_array_equal(
        losses.example_accuracy(HeadKind.BINARY, tf.constant([1, 1]), tf.constant([[0.8], [0.4]])), [1.0, 0.0])
    multi_hot = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(losses.example_accuracy(HeadKind.MULTILABEL, multi_hot, probabilities),
                               [1.0, 2 / 3])


class _Recorder(keras.callbacks.Callback):
    def __init__(self, stop_after=None):
        super().__init__()
        self.events, self.stop_after = [], stop_after

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(f"batch{batch}")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append((epoch, sorted(logs)))
        if self.stop_after == epoch:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_callbacks_get_fit_events_and_can_stop_training():
    model = _dense_model()
    kind, loss = HeadKind.MULTICLASS, losses.loss_for(HeadKind.MULTICLASS)
    _compile(model, kind, loss)
    recorder = _Recorder(stop_after=1)
    history = TrainLoop(model, kind, loss).fit(_data(), validation_data=_data(seed=1), epochs=5, steps=3,
                                              callbacks=[recorder])
    logs = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert recorder.events == ["train_begin", "batch0", "batch1", "batch2", (0, logs),
                               "batch0", "batch1", "batch2", (1, logs), "train_end"]
    assert history.epoch == [0, 1]
    assert recorder.model is model


def _head_model_and_data(num_classes, multi_label):
    model = _dense_model(num_classes)
    data = _data(num_classes=num_classes)
    if multi_label:
        model = keras.Model(model.input, tfxfer.models.heads.classification_head(
            model.get_layer("hidden").output, num_classes, multi_label=True, dropout=0.0))
        data = data.map(lambda x, y: (x, tf.one_hot(y, num_classes)))
    return model, data


@pytest.mark.parametrize("num_classes, multi_label", [(3, False), (2, False), (3, True)])
def test_keras_callbacks_in_auto_mode_know_accuracy_rises_for_every_head(num_classes, multi_label):
    model, data = _head_model_and_data(num_classes, multi_label)
    kind = tfxfer.models.heads.head_kind(model)
    _compile(model, kind, losses.loss_for(kind))
    watchers = [keras.callbacks.EarlyStopping(monitor=monitor, patience=5) for monitor in ("val_accuracy", "accuracy")]
    history = TrainLoop(model, kind, losses.loss_for(kind)).fit(data, validation_data=data, epochs=3, steps=3,
                                                                callbacks=watchers)
    assert [watcher.best for watcher in watchers] == [max(history.history["val_accuracy"]),
                                                      max(history.history["accuracy"])]


def test_keras_callbacks_in_auto_mode_know_a_multi_task_models_mean_accuracy_rises():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 1, name="mix")(inputs), name=layer_names.BACKBONE)
    model = tfxfer.ImageClassifier(backbone, tasks={"colour": 3, "bright": 2}, preprocessing="tf", dropout=0.0)
    rng = np.random.default_rng(0)
    labels = {"colour": rng.integers(0, 3, 12), "bright": rng.integers(0, 2, 12)}
    data = tf.data.Dataset.from_tensor_slices((rng.uniform(0, 255, (12, 4, 4, 3)).astype("float32"), labels)).batch(4)
    early = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=5)
    config = tfxfer.FineTuneConfig(epochs=3, fine_tune_epochs=0, early_stopping_patience=None)
    result = tfxfer.fine_tune(model, data, data, config=config, callbacks=[early], verbose=0)
    assert {"val_accuracy", "val_colour_accuracy", "val_bright_accuracy"} <= set(result.phase1.history)
    assert early.best == max(result.phase1.history["val_accuracy"])


def test_head_without_all_trainable_variables_is_refused():
    model = _dense_model()
    _, head = feature_cache.split_at_head(model)
    with pytest.raises(ValueError, match="needs a frozen backbone"):
        TrainLoop(model, HeadKind.MULTICLASS, losses.loss_for(HeadKind.MULTICLASS), head=head)


# Feature caching.

def test_the_steps_are_traced_once_for_full_and_partial_batches():
    kind, loss = HeadKind.MULTICLASS, losses.loss_for(HeadKind.MULTICLASS)
    model = _dense_model()
    _compile(model, kind, loss)
    loop = TrainLoop(model, kind, loss)
    # Training batches of 8, 8 and 6; validation ones of 5 and 5; then evaluation ones of 4 and 3.
    loop.fit(_data(), validation_data=_data(num_examples=10, batch_size=5), epochs=2, steps=3)
    loop.evaluate(_data(num_examples=7, batch_size=4))
    assert loop._train_step.experimental_get_tracing_count() == 1
    assert loop._eval_step.experimental_get_tracing_count() == 1


def test_split_at_head_shares_the_models_layers():
    model = _dense_model()
    extractor, head = feature_cache.split_at_head(model)
    inputs = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(head(extractor(inputs)), model(inputs), rtol=1e-6)
    assert extractor.output.shape == (None, 8)
    head.get_layer(layer_names.PREDICTIONS).kernel.assign(tf.zeros((8, 3)))
    np.testing.assert_allclose(model(inputs), np.full((4, 3), 1 / 3), rtol=1e-6)


def test_split_at_head_needs_tfxfer_head_layers():
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(inputs))
    with pytest.raises(ValueError, match="cache_features=False"):
        feature_cache.split_at_head(model)


class _CountExamples(keras.layers.Layer):
    """Identity that counts the examples it sees (in a variable, so tf.function counts too)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")

    def call(self, x):
        self.seen.assign_add(tf.cast(tf.shape(x)[0], "float32"))
        return x


def _counting_classifier():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((5,))
    counted = _CountExamples(name="counter")(inputs)
    backbone = keras.Model(inputs, keras.layers.Dense(8, activation="relu", name="hidden")(counted),
                           name=layer_names.BACKBONE)
    model_inputs = keras.Input((5,))
    outputs = tfxfer.models.heads.classification_head(backbone(model_inputs), 3, dropout=0.0)
    return keras.Model(model_inputs, outputs)


# Examples the backbone sees in 4 epochs of 22 training and 9 validation examples: once
# each with the cache; 4 times each, plus the final evaluation, without.
@pytest.mark.parametrize("cache_features, expected_seen", [(True, 22 + 9), (False, 4 * (22 + 9) + 9)])
def test_phase1_runs_the_backbone_once_when_caching(cache_features, expected_seen):
    model = _counting_classifier()
    counter = model.get_layer(layer_names.BACKBONE).get_layer("counter")
    train, validation = _data(), _data(num_examples=9, seed=1)
    config = tfxfer.FineTuneConfig(epochs=4, fine_tune_epochs=0, early_stopping_patience=None)
    result = tfxfer.fine_tune(model, train, validation, config=config, cache_features=cache_features)
    assert float(counter.seen.numpy()) == expected_seen
    assert result.phase1.epochs_run == 4


def test_cached_phase1_trains_the_head_like_the_full_model():
    # One batch per epoch (no order effect), no dropout: cached and uncached phase 1 agree.
    results = []
    for cache_features in (True, False):
        model = _counting_classifier()
        data = _data(batch_size=32)
        config = tfxfer.FineTuneConfig(epochs=3, fine_tune_epochs=0, early_stopping_patience=None)
        result = tfxfer.fine_tune(model, data, data, config=config, cache_features=cache_features)
        results.append((model.get_layer(layer_names.PREDICTIONS).get_weights(), result.phase1))
    (cached_weights, cached), (full_weights, full) = results
    for a, b in zip(cached_weights, full_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert cached.final_metrics == pytest.approx(full.final_metrics, rel=1e-5)
    assert cached.history["loss"] == pytest.approx(full.history["loss"], rel=1e-5)


def test_the_default_image_model_has_the_augmentation_layer_a_cache_skips():
    augmented = tfxfer.build_image_classifier(
        "mobilenet_v2", num_classes=3, weights=None, image_size=(32, 32), alpha=0.35)
    assert feature_cache.has_augmentation(augmented)
    assert not feature_cache.has_augmentation(_dense_model())


def _augmented_image_model_and_data():
    """A default image model (with its augmentation layer) and 12 random images in batches of 5."""
    model = tfxfer.build_image_classifier(
        "mobilenet_v2", num_classes=3, weights=None, image_size=(32, 32), alpha=0.35, seed=0)
    images = np.random.default_rng(0).uniform(0, 255, size=(12, 32, 32, 3)).astype("float32")
    labels = np.arange(12, dtype="int32") % 3
    return model, images, tf.data.Dataset.from_tensor_slices((images, labels)).batch(5)


def test_an_augmented_image_models_cached_head_predicts_what_the_whole_model_does():
    # Phase 1 caches the clean images' features even with augmentation: at inference the
    # augmentation is off, so the head on cached features must give the model's own predictions.
    model, images, dataset = _augmented_image_model_and_data()
    # Statistics a fresh BatchNorm does not have, so that folding them into the convolutions is tested.
    rng = np.random.default_rng(0)
    for layer in model.get_layer(layer_names.BACKBONE).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2, variance.shape)])
    cached = feature_cache.cache_phase(model, dataset, dataset)
    features = np.concatenate([batch for batch, _ in cached.validation])
    np.testing.assert_allclose(cached.head.predict(features, verbose=0), model.predict(images, verbose=0),
                               atol=1e-5)
    assert features.shape == (12, model.get_layer(layer_names.PREDICTIONS).input.shape[-1])


def test_the_extractor_is_traced_once_for_full_and_partial_batches_of_both_datasets():
    images = tf.data.Dataset.from_tensor_slices((np.zeros((12, 8, 8, 3), "float32"), np.zeros(12, "int32")))
    tracing = feature_cache._tracing(images.batch(5), images.take(7).batch(4))
    assert tracing == {"input_signature": [tf.TensorSpec((None, 8, 8, 3), tf.float32)]}
    extract = tf.function(lambda inputs: tf.reduce_mean(inputs, axis=[1, 2]), **tracing)
    for batch, _ in [*images.batch(5), *images.take(7).batch(4)]:  # batches of 5, 5, 2, then 4, 3
        extract(batch)
    assert extract.experimental_get_tracing_count() == 1
    # Token batches trimmed to their longest: the length they disagree on is left unknown too.
    tokens = {"token_ids": np.zeros((6, 9), "int32")}
    short = tf.data.Dataset.from_tensor_slices((tokens, np.zeros(6, "int32"))).batch(3, drop_remainder=True)
    longer = tf.data.Dataset.from_tensor_slices(({"token_ids": np.zeros((4, 12), "int32")}, np.zeros(4, "int32")))
    assert feature_cache._tracing(short, longer.batch(2)) == {
        "input_signature": [{"token_ids": tf.TensorSpec((None, None), tf.int32)}]}
    ragged = tf.data.Dataset.from_tensor_slices((tf.ragged.constant([[1], [2, 3]]), [0, 1])).batch(2)
    assert feature_cache._tracing(ragged, None) == {"reduce_retracing": True}


def test_caching_in_several_runs_of_one_process_is_not_taken_for_retracing(caplog, monkeypatch):
    # fine_tune, find_learning_rate, tune and distill each cache with an extractor of their own, traced once:
    # TensorFlow counted those first traces together, as one function retracing, and warned.
    from tensorflow.python.eager.polymorphic_function import polymorphic_function
    # Counted afresh, as in a new process: TensorFlow warns at most twice per function, earlier tests' runs included.
    monkeypatch.setattr(polymorphic_function, "_frequent_tracing_detector_manager",
                        polymorphic_function._FrequentTracingDetectorManager())
    model = _dense_model()
    data = _data(num_examples=4, batch_size=4)  # one batch: a run calls its extractor twice, tracing it once
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        runs = [feature_cache.cache_phase(model, data, data) for _ in range(6)]
    assert [message for message in caplog.messages if "retracing" in message] == []
    inputs, _ = next(iter(data))
    features = keras.Model(model.input, model.get_layer(layer_names.PREDICTIONS).input)(inputs)
    for run in runs:  # each run's own extractor gives the model's features
        np.testing.assert_allclose(next(iter(run.validation))[0], features, rtol=1e-6)


def test_augmented_passes_cache_differently_augmented_training_features_and_clean_validation_ones():
    model, _, dataset = _augmented_image_model_and_data()
    clean = feature_cache.cache_phase(model, dataset, dataset)
    augmented = feature_cache.cache_phase(model, dataset, dataset, augmented_passes=2)
    clean_features = np.concatenate([batch for batch, _ in clean.validation])
    np.testing.assert_allclose(np.concatenate([batch for batch, _ in augmented.validation]), clean_features,
                               atol=1e-6)
    # An epoch still has the data's 3 batches, drawn from the 24 augmented examples.
    epoch = list(augmented.train.as_numpy_iterator())
    assert [len(batch_labels) for _, batch_labels in epoch] == [5, 5, 5]
    drawn = np.concatenate([features for features, _ in epoch])
    same = np.isclose(drawn[:, None, :], clean_features[None], rtol=1e-4, atol=0).all(axis=-1)
    assert not same.any()  # none is a clean image's


def test_a_weight_average_trains_and_validates_exactly_like_keras_fit():
    # SwapEMAWeights needs the loop to signal validation as fit does (on_test_begin/on_test_end).
    kind, loss = HeadKind.MULTICLASS, losses.loss_for(HeadKind.MULTICLASS)
    reference, model = _dense_model(), _dense_model()
    for network in (reference, model):
        network.compile(optimizer=keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5), loss=loss,
                        metrics=losses.metrics_for(kind))
    history = reference.fit(_data(), validation_data=_data(seed=1), epochs=3, shuffle=False, verbose=0,
                            callbacks=[keras.callbacks.SwapEMAWeights(swap_on_epoch=True)])
    loop_history = TrainLoop(model, kind, loss).fit(_data(), validation_data=_data(seed=1), epochs=3, steps=3,
                                                    callbacks=[keras.callbacks.SwapEMAWeights(swap_on_epoch=True)])
    for ours, theirs in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loop_history.history["val_loss"], history.history["val_loss"], rtol=1e-5)
    # The model ends with the average, which is not the last step's weights.
    plain = _dense_model()
    _compile(plain, kind, loss)
    TrainLoop(plain, kind, loss).fit(_data(), epochs=3, steps=3)
    assert not np.allclose(plain.get_weights()[0], model.get_weights()[0], atol=1e-4)
