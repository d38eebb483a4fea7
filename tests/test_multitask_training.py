"""Multi-task classifiers: building, the masked loss, per-task accuracy, and fine_tune in both phases."""

import json
import os
import sys
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from _text_helpers import NEGATIVE, POSITIVE, save_tiny_bert_preset, sentences
from tfxfer.errors import ConfigError
from tfxfer.models import heads, lora_layers
from tfxfer.tasks import MISSING_LABEL, Task, resolve_tasks
from tfxfer.training import losses
from tfxfer.training.loop import TrainLoop

SIZE = 8
TASKS = {"colour": 3, "bright": 2, "tags": Task(2, multi_label=True, loss_weight=0.5)}
# No weight decay: a head that gets no gradient must then keep its weights exactly.
CONFIG = tfxfer.FineTuneConfig(epochs=8, fine_tune_epochs=1, fine_tune_at=0, learning_rate=0.05,
                               fine_tune_learning_rate=1e-3, weight_decay=0.0, early_stopping_patience=None)


def _image_model(tasks=TASKS, seed=0):
    """A 1x1-conv backbone: its pooled features are a random mix of the image's mean colour."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(16, 1, activation="relu", name="mix")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    return tfxfer.ImageClassifier(backbone, tasks=tasks, preprocessing="tf", dropout=0.0)


def _images(count, seed=0, missing=0.3):
    """Flat-coloured noisy images; `colour` is the strongest channel, `bright` whether the image is light,
    `tags` which of red and blue are above the middle; each task misses a share of its labels."""
    rng = np.random.default_rng(seed)
    colour = np.arange(count) % 3
    bright = rng.integers(0, 2, count)
    base = np.where(bright[:, None] == 1, 150.0, 40.0) + rng.uniform(-20, 20, (count, 3))
    base[np.arange(count), colour] += 90.0
    images = base[:, None, None, :] + rng.normal(0, 5, (count, SIZE, SIZE, 3))
    tags = (base[:, [0, 2]] > 127).astype("float32")
    labels = {"colour": colour.astype("int64"), "bright": bright.astype("int64"), "tags": tags}
    for name in labels:
        gone = rng.random(count) < missing
        labels[name] = labels[name].copy()
        labels[name][gone] = MISSING_LABEL
    return np.clip(images, 0, 255).astype("float32"), labels


def _dataset(images, labels, batch_size=16):
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def test_tasks_are_resolved_from_counts_specs_and_configs():
    tasks = resolve_tasks({"product": 12, "priority": Task(3, loss_weight=0.5),
                           "tags": {"num_classes": 4, "multi_label": True}})
    assert tasks == {"product": Task(12), "priority": Task(3, loss_weight=0.5), "tags": Task(4, multi_label=True)}
    assert [task.kind for task in tasks.values()] == [heads.HeadKind.MULTICLASS] * 2 + [heads.HeadKind.MULTILABEL]
    assert Task(2).units == 1 and Task(2, multi_label=True).units == 2
    assert list(resolve_tasks({"val_val": 2, "val_x": 2})) == ["val_val", "val_x"]  # no task val, nor x
    # NumPy scalars (a class count from np.unique, say) are taken, and kept as Python's for the JSON config.
    numpy_task = resolve_tasks({"a": Task(np.int64(3), np.bool_(True), np.float32(0.5))})["a"]
    assert numpy_task == Task(3, multi_label=True, loss_weight=0.5)
    assert json.loads(json.dumps(numpy_task.get_config())) == numpy_task.get_config()


@pytest.mark.parametrize("tasks, message", [
    ({}, "non-empty dict"),
    ({"Product": 3}, "lowercase identifiers"),
    ({"a b": 3}, "lowercase identifiers"),
    ({"product": 1}, "at least 2 classes"),
    ({"product": {"num_classes": 3, "loss_weight": 0}}, "loss_weight"),
    ({"product": 2.5}, "num_classes must be an int"),
    # A config read from text: "false" is a true string, which would make a multi-label head.
    ({"product": {"num_classes": 3, "multi_label": "false"}},
     r"multi_label must be True or False.*'false' of type str"),
    ({"product": {"num_classes": 3, "loss_weight": float("inf")}}, "finite number > 0.*Received: loss_weight=inf"),
    # Their accuracies would be logged under the names of validation accuracies.
    ({"val": 3, "grade": 2}, r"Task 'val' would log its training accuracy as val_accuracy, the name of the "
                             r"validation accuracy \(the tasks' mean\).*Rename the task"),
    ({"grade": 2, "val_grade": 3},
     r"Task 'val_grade' would log its training accuracy as val_grade_accuracy, the name of task 'grade''s validation"),
])
def test_bad_tasks_are_refused_with_the_reason(tasks, message):
    with pytest.raises(ConfigError, match=message):
        resolve_tasks(tasks)


def test_a_model_takes_num_classes_or_tasks_not_both():
    backbone = _image_model().backbone
    with pytest.raises(ConfigError, match="not both"):
        tfxfer.ImageClassifier(backbone, 3, tasks={"a": 2})
    with pytest.raises(ConfigError, match="not both"):
        tfxfer.ImageClassifier(backbone)


def test_multi_task_model_has_a_dense_layer_per_task_and_reloads_whole(tmp_path):
    model = _image_model()
    images, _ = _images(4)
    outputs = model.predict(images, verbose=0)
    assert {name: value.shape for name, value in outputs.items()} == {
        "colour": (4, 3), "bright": (4, 1), "tags": (4, 2)}
    np.testing.assert_allclose(outputs["colour"].sum(axis=1), 1.0, rtol=1e-5)  # softmax; the others sigmoid
    assert model.get_layer("predictions_bright").units == 1
    assert model.num_classes is None and model.head_kind is None
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.tasks == model.tasks
    again = reloaded.predict(images, verbose=0)
    for name in outputs:
        np.testing.assert_allclose(again[name], outputs[name], atol=1e-6)


def test_setting_the_shared_dropout_is_saved_with_the_model():
    model = tfxfer.ImageClassifier(_image_model().backbone, tasks=TASKS, dropout=0.2)
    heads.set_dropout(model, 0.4)  # what a search does between trials
    assert model.get_layer("dropout").rate == 0.4 and model.get_config()["dropout"] == 0.4


def test_one_head_code_refuses_a_multi_task_model_by_name():
    with pytest.raises(ConfigError, match=r"head per task \(colour, bright, tags\)"):
        heads.head_kind(_image_model())


def test_the_loss_weighs_each_task_and_skips_missing_labels():
    loss = losses.MultiTaskLoss({"a": 3, "b": Task(2, loss_weight=2.0), "t": Task(2, multi_label=True)})
    probabilities = {"a": np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]], "float32"),
                     "b": np.array([[0.9], [0.2], [0.6]], "float32"),
                     "t": np.array([[0.9, 0.2], [0.5, 0.5], [0.1, 0.7]], "float32")}
    labels = {"a": np.array([0, -1, 2]), "b": np.array([-1, 0, 1]),
              "t": np.array([[1, 0], [-1, -1], [0, 1]], "float32")}
    got = loss.call({k: tf.constant(v, tf.float32) for k, v in labels.items()}, probabilities).numpy()

    def bce(label, p):
        return -(label * np.log(p) + (1 - label) * np.log(1 - p))

    expected = [
        -np.log(0.7) + 0 + np.mean([bce(1, 0.9), bce(0, 0.2)]),
        0 + 2.0 * bce(0, 0.2) + 0,
        -np.log(0.4) + 2.0 * bce(1, 0.6) + np.mean([bce(0, 0.1), bce(1, 0.7)]),
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    accuracies = loss.task_accuracies(labels, probabilities)
    assert [float(tf.reduce_sum(v)) for v in accuracies["a"]] == [2.0, 2.0]  # both labelled ones right
    assert [float(tf.reduce_sum(v)) for v in accuracies["b"]] == [2.0, 2.0]
    assert [float(tf.reduce_sum(v)) for v in accuracies["t"]] == [2.0, 2.0]


def test_a_multi_hot_row_is_missing_only_when_all_of_it_is():
    # As the evaluation reads it: a -1 among 0s and 1s is a label that fits no class, which the loop refuses,
    # not a missing label (the row's 1 would be left out of the loss silently).
    loss = losses.MultiTaskLoss({"t": Task(2, multi_label=True)})
    labels = {"t": tf.constant([[-1, 1], [-1, -1], [1, 0]], tf.float32)}
    probabilities = {"t": tf.constant([[0.5, 0.5]] * 3)}
    assert loss.invalid_labels(labels, probabilities).numpy().tolist() == [1.0, 0.0, 0.0]
    assert loss.task_accuracies(labels, probabilities)["t"][1].numpy().tolist() == [1.0, 0.0, 1.0]


def test_each_tasks_accuracy_counts_only_the_examples_labelled_for_it():
    model = _image_model()
    images, labels = _images(40, seed=3, missing=0.4)
    model.compile(optimizer=keras.optimizers.SGD(0.0), **losses.MultiTaskLoss(model.tasks).compile_arguments())
    logs = TrainLoop(model, None, losses.MultiTaskLoss(model.tasks)).evaluate(_dataset(images, labels, 16))
    predicted = model.predict(images, verbose=0)
    expected = {}
    for name, probabilities in predicted.items():
        task = model.tasks[name]
        labelled = labels[name].reshape(len(images), -1)[:, 0] != MISSING_LABEL
        truth = labels[name][labelled]
        if task.kind is heads.HeadKind.MULTICLASS:
            right = probabilities[labelled].argmax(axis=1) == truth
        elif task.kind is heads.HeadKind.BINARY:
            right = (probabilities[labelled, 0] > 0.5) == truth
        else:
            right = ((probabilities[labelled] > 0.5) == truth).mean(axis=1)
        expected[name] = float(np.mean(right))
        assert logs[f"{name}_accuracy"] == pytest.approx(expected[name], abs=1e-6)
    assert logs["accuracy"] == pytest.approx(np.mean(list(expected.values())), abs=1e-6)


def test_a_task_without_labelled_examples_has_no_accuracy_and_stays_out_of_the_mean():
    model = _image_model()
    images, labels = _images(24, seed=3, missing=0.0)
    labels["bright"][:] = MISSING_LABEL
    loss = losses.MultiTaskLoss(model.tasks)
    model.compile(optimizer=keras.optimizers.SGD(0.0), **loss.compile_arguments())
    logs = TrainLoop(model, None, loss).evaluate(_dataset(images, labels, 8))
    assert "bright_accuracy" not in logs  # not 0: nothing was there to be right or wrong about
    assert logs["accuracy"] == pytest.approx((logs["colour_accuracy"] + logs["tags_accuracy"]) / 2, abs=1e-6)


@pytest.mark.parametrize("cache_features", [True, False])
def test_fine_tune_learns_every_task_and_a_task_without_labels_keeps_its_head(cache_features, tmp_path):
    images, labels = _images(120, seed=1)
    val_images, val_labels = _images(60, seed=2, missing=0.0)
    unlabelled = dict(labels, tags=np.full_like(labels["tags"], MISSING_LABEL))
    model = _image_model()
    before = model.get_layer("predictions_tags").get_weights()
    result = tfxfer.fine_tune(model, _dataset(images, unlabelled), _dataset(val_images, val_labels),
                              config=CONFIG, cache_features=cache_features, backup_dir=tmp_path / "backup",
                              verbose=0)
    assert not (tmp_path / "backup").exists()  # backed up each epoch, deleted once the run completed
    for weights, start in zip(model.get_layer("predictions_tags").get_weights(), before):
        np.testing.assert_array_equal(weights, start)  # no labels, no gradient, in both phases
    final = result.phase2.final_metrics
    # Chance is 1/3 and 1/2; the tasks are separable by the mean colour the backbone sees.
    assert final["val_colour_accuracy"] > 0.8 and final["val_bright_accuracy"] > 0.8
    # No training example is labelled for tags: no training accuracy of its own, and none in the mean.
    assert set(result.phase1.history) == {f"{prefix}{name}" for prefix in ("", "val_") for name in (
        "loss", "accuracy", "colour_accuracy", "bright_accuracy")} | {"val_tags_accuracy"}
    history = result.phase2.history
    assert history["accuracy"][-1] == pytest.approx((history["colour_accuracy"][-1]
                                                     + history["bright_accuracy"][-1]) / 2)


def test_fine_tune_checks_the_labels_of_every_task():
    model = _image_model()
    images, labels = _images(16)
    with pytest.raises(ConfigError, match=r"one entry per task, \['bright', 'colour', 'tags'\].*\['colour'\]"):
        tfxfer.fine_tune(model, _dataset(images, {"colour": labels["colour"]}), config=CONFIG, verbose=0)
    with pytest.raises(ConfigError, match="dict of labels"):
        tfxfer.fine_tune(model, _dataset(images, labels["colour"]), config=CONFIG, verbose=0)
    bad = dict(labels, colour=np.where(labels["colour"] == 2, 5, labels["colour"]))
    with pytest.raises(ConfigError, match=r"train_data\['colour'\] has label 5.*3 classes"):
        tfxfer.fine_tune(model, _dataset(images, bad), config=CONFIG, verbose=0)
    # A multi-hot row is missing only when all of it is -1: [-1, 1] is a wrong label, found in the first batch.
    half_missing = dict(labels, tags=np.array([[MISSING_LABEL, 1.0]] + [[0.0, 1.0]] * 15, "float32"))
    with pytest.raises(ConfigError, match=r"Multi-hot labels must be 0 or 1 in every column. Received: values "
                                          r"\[-1, 0, 1\] in the first batch of train_data\['tags'\]"):
        tfxfer.fine_tune(model, _dataset(images, half_missing), config=CONFIG, verbose=0)
    with pytest.raises(ConfigError, match="loss_weight"):
        tfxfer.fine_tune(model, _dataset(images, labels), config=CONFIG.replace(class_weight="balanced"), verbose=0)


def test_a_one_head_model_given_labels_per_task_names_tasks_and_the_map_to_one_task():
    # What load_image_csv gives with label_columns=["colour"]: a dict of one task's labels.
    images, labels = _images(16, missing=0.0)
    data = _dataset(images, {"colour": labels["colour"]})
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(16, 1, activation="relu")(inputs), name="backbone")
    model = tfxfer.ImageClassifier(backbone, num_classes=3, preprocessing="tf", dropout=0.0)
    expected = (r"The model has one head, but {}'s labels are a dict with an entry per task.*tasks=data\.tasks.*"
                r"labels\['colour'\].*Received: {} labels of the tasks \['colour'\]")
    with pytest.raises(ConfigError, match=expected.format("train_data", "train_data")):
        tfxfer.fine_tune(model, data, config=CONFIG, verbose=0)
    with pytest.raises(ConfigError, match=expected.format("dataset", "dataset")):
        tfxfer.evaluate_model(model, data, ["red", "green", "blue"])


def test_a_task_label_past_its_head_in_a_later_batch_stops_training_and_missing_labels_do_not():
    images, labels = _images(32)  # 30 % of each task's labels are missing: those pass the check
    bad = dict(labels, bright=labels["bright"].copy())
    bad["bright"][20] = 2  # the second batch's; the first, which the checks before training read, is in range
    with pytest.raises(ConfigError, match=r"A batch of the training data has labels that fit no class.*Received: 1 "):
        tfxfer.fine_tune(_image_model(), _dataset(images, bad), config=CONFIG, cache_features=False, verbose=0)


def test_search_and_the_learning_rate_finder_take_a_multi_task_model():
    images, labels = _images(64, seed=5)
    search = tfxfer.tune(_image_model(), _dataset(images, labels), max_trials=1, tune_epochs=1)
    # The held-out share of 64 examples, split by hashing each example with its dict of labels.
    assert 0 < search.holdout_size < 32 and search.best_trial["val_accuracy"] is not None
    sweep = tfxfer.find_learning_rate(_image_model(), _dataset(images, labels), steps=20)
    assert len(sweep.losses) == 20 and np.isfinite(sweep.losses).all()


def test_a_text_model_gets_a_head_per_task(tmp_path):
    preset = save_tiny_bert_preset(tmp_path / "bert", num_layers=1)
    model = tfxfer.build_text_classifier(preset, tasks={"sentiment": 2, "topic": 3}, sequence_length=8)
    texts = sentences(POSITIVE, 12, 0) + sentences(NEGATIVE, 12, 1)
    labels = {"sentiment": np.array([1] * 12 + [0] * 12), "topic": np.array([0, 1, 2, -1] * 6)}
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(8).map(
        lambda text, label: (model.preprocessor(text), label))
    # Phase 2 on LoRA adapters: the heads train beside them whatever their number.
    result = tfxfer.fine_tune(model, data, data, config=CONFIG.replace(epochs=1, lora_rank=2), verbose=0)
    assert {"val_sentiment_accuracy", "val_topic_accuracy"} <= set(result.phase2.final_metrics)
    adapters = [adapter for layer in lora_layers.lora_layers(model) for adapter in lora_layers.adapters(layer)]
    # The adapters and both heads (8 + 1 and 8 x 3 + 3), nothing else.
    assert adapters and result.phase2.trainable_parameters == sum(int(np.prod(a.shape)) for a in adapters) + 9 + 27
    assert {name: value.shape for name, value in model.predict(texts[:2], verbose=0).items()} == {
        "sentiment": (2, 1), "topic": (2, 3)}


# MirroredStrategy: a process of its own.

def test_mirrored_training_matches_one_device(script_server):
    process = script_server.run(os.path.abspath(__file__), "mirrored")
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    # The same global-batch mean over 2 replicas as on one device, missing labels and a partial batch included.
    assert result["largest_difference"] < 1e-5 and result["moved"] > 1e-3


def _mirrored():
    """Phase 1 (backbone run every step) on one device and on two mirrored CPU replicas; prints JSON."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    images, labels = _images(36, seed=4)  # 16 + 16 + 4: the last batch is partial
    config = CONFIG.replace(epochs=2, fine_tune_epochs=0)
    weights = {}
    for name, scope in (("one", tf.distribute.get_strategy()), ("mirrored", strategy)):
        with scope.scope():
            model = _image_model()
        start = [np.array(w) for w in model.get_weights()]
        tfxfer.fine_tune(model, _dataset(images, labels), config=config, cache_features=False, verbose=0)
        weights[name] = model.get_weights()
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "largest_difference": float(max(np.max(np.abs(a - b)) for a, b in zip(weights["one"], weights["mirrored"]))),
        "moved": float(max(np.max(np.abs(a - b)) for a, b in zip(weights["one"], start))),
    }))


if __name__ == "__main__" and sys.argv[1:2] == ["mirrored"]:
    with tempfile.TemporaryDirectory():
        _mirrored()
