"""Tests for tfxfer.export.tflite: four TFLite variants, measured against the Keras model.

The model is small but has enough weights (~25k) for quantization to shrink
the files, keeps the training-only augmentation layer (which the conversion
must leave out), and learns an easy task: noisy images of three colours.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.errors import ConfigError
from tfxfer.export import tflite

SIZE = 24
CLASS_NAMES = ["red", "green", "blue"]


def _colour_images(count, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.normal(60, 30, (count, SIZE, SIZE, 3))
    images[np.arange(count), :, :, labels] += 140  # the class's channel is bright
    return np.clip(images, 0, 255).astype(np.float32), labels.astype(np.int32)


def _dataset(count, seed):
    return tf.data.Dataset.from_tensor_slices(_colour_images(count, seed)).batch(16)


def _model(num_classes=3, multi_label=False):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="conv3")(x)
    backbone = keras.Model(inputs, x, name="small")
    return tfxfer.build_image_classifier(backbone, num_classes=num_classes, preprocessing="tf",
                                         multi_label=multi_label, augmentation=True, seed=0)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(_dataset(192, 0), epochs=4, shuffle=False, verbose=0)
    folder = tmp_path_factory.mktemp("tflite")
    return folder, model, tflite.export_tflite(model, folder, train=_dataset(192, 0), validation=_dataset(96, 1),
                                               class_names=CLASS_NAMES, representative_examples=64)


def test_exports_to_any_filesystem_tensorflow_writes(report):
    _, model, result = report
    folder = "ram://tflite_export"
    written = tflite.export_tflite(model, folder, train=_dataset(32, 0), validation=_dataset(32, 1),
                                   class_names=CLASS_NAMES, variants=("float32",))
    assert sorted(tf.io.gfile.listdir(folder)) == ["float32.tflite", "labels.txt", "tflite_report.json"]
    assert written["tflite"]["float32"]["size_bytes"] == tf.io.gfile.stat(f"{folder}/float32.tflite").length
    runner = tflite.interpreter(f"{folder}/float32.tflite")  # read through tf.io.gfile, not a local open
    image = _colour_images(1, 5)[0][0]
    np.testing.assert_allclose(tflite.run_tflite(runner, image), model.predict(image[None], verbose=0)[0], atol=1e-4)


def test_every_variant_is_written_with_labels_and_report(report):
    folder, _, result = report
    assert sorted(os.listdir(folder)) == ["dynamic_range.tflite", "float16.tflite", "float32.tflite",
                                          "int8.tflite", "labels.txt", "tflite_report.json"]
    assert (folder / "labels.txt").read_text(encoding="utf-8").splitlines() == CLASS_NAMES
    assert json.loads((folder / "tflite_report.json").read_text()) == result
    assert result["validation_size"] == 96
    for variant, entry in result["tflite"].items():
        assert entry["path"] == str(folder / f"{variant}.tflite")
        assert entry["size_bytes"] == os.path.getsize(entry["path"])


def test_quantized_variants_are_smaller(report):
    sizes = {variant: entry["size_bytes"] for variant, entry in report[2]["tflite"].items()}
    assert sizes["float16"] < 0.7 * sizes["float32"]
    assert sizes["dynamic_range"] < 0.5 * sizes["float32"]
    assert sizes["int8"] < 0.5 * sizes["float32"]


def test_accuracies_are_sane_and_close_to_keras(report):
    result = report[2]
    assert result["keras"]["accuracy"] >= 0.9  # an easy task: the model did learn it
    for variant, entry in result["tflite"].items():
        assert abs(entry["accuracy"] - result["keras"]["accuracy"]) <= 0.05, variant
        assert entry["agreement"] >= 0.95, variant
    assert result["tflite"]["float32"]["agreement"] == 1.0


def test_float32_variant_matches_keras_probabilities(report):
    folder, model, _ = report
    images, _ = _colour_images(4, 2)
    runner = tflite.interpreter(str(folder / "float32.tflite"))
    outputs = np.stack([tflite.run_tflite(runner, image) for image in images])
    np.testing.assert_allclose(outputs, model.predict(images, verbose=0), atol=1e-5)


def test_int8_variant_takes_and_returns_int8(report):
    runner = tflite.interpreter(str(report[0] / "int8.tflite"))
    (inputs,), (outputs,) = runner.get_input_details(), runner.get_output_details()
    assert inputs["dtype"] == np.int8 and outputs["dtype"] == np.int8
    assert list(inputs["shape"]) == [1, SIZE, SIZE, 3]
    scale, zero_point = inputs["quantization"]
    assert scale > 0  # [0, 255] pixels map onto int8 through (scale, zero_point)


def test_inference_model_leaves_out_the_augmentation_layer(report):
    model = report[1]
    assert "augmentation" in [layer.name for layer in model.layers]
    inference = tflite.inference_model(model)
    assert "augmentation" not in [layer.name for layer in inference.layers]
    images, _ = _colour_images(2, 3)
    np.testing.assert_allclose(inference.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_binary_model_accuracy_reads_one_sigmoid_unit(tmp_path):
    images, labels = _colour_images(32, 4)
    labels = (labels == 0).astype(np.int32)  # red or not
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    model = _model(num_classes=2)
    result = tflite.export_tflite(model, tmp_path, train=data, validation=data, class_names=["other", "red"],
                                  variants=["float32"])
    expected = np.mean((model.predict(images, verbose=0)[:, 0] > 0.5) == labels)
    assert result["keras"]["accuracy"] == pytest.approx(expected)
    assert result["tflite"]["float32"]["accuracy"] == pytest.approx(expected)


def test_unknown_variant_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"variants must be a non-empty subset of \['float32', .*Received: \['int4'\]"):
        tflite.export_tflite(_model(), tmp_path, train=_dataset(4, 0), validation=_dataset(4, 1),
                             class_names=CLASS_NAMES, variants=["int4"])
    with pytest.raises(ValueError, match=r"Received: \['int4'\]$"):  # one variant as a str, not its letters
        tflite.export_tflite(_model(), tmp_path, train=_dataset(4, 0), validation=_dataset(4, 1),
                             class_names=CLASS_NAMES, variants="int4")
    with pytest.raises(ValueError, match=r"variant must be one of .*Received: variant='int4'"):
        tflite.convert_tflite(_model(), "int4")


def test_int8_needs_representative_images():
    with pytest.raises(ValueError, match=r"int8 variant calibrates on real images: pass representative_images"):
        tflite.convert_tflite(_model(), "int8")


def test_multilabel_model_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"needs a multiclass or binary head\. Received: a multilabel model"):
        tflite.export_tflite(_model(multi_label=True), tmp_path, train=_dataset(4, 0), validation=_dataset(4, 1),
                             class_names=CLASS_NAMES)


@pytest.mark.parametrize("class_names, message", [
    (["a", "b"], r"The model predicts 3 classes but 2 class names were given\. Received: class_names=\['a', 'b'\]"),
    (["a", "b", "a"], r"Class names must be unique.*Received: \['a'\] more than once"),  # as the SavedModel's
    ("abc", r"must be a list of names in class-id order, not a single str"),  # not three classes a, b and c
])
def test_class_names_must_match_the_model_as_the_saved_models_do(tmp_path, class_names, message):
    with pytest.raises(ValueError, match=message):
        tflite.export_tflite(_model(), tmp_path, train=_dataset(4, 0), validation=_dataset(4, 1),
                             class_names=class_names)
    assert not (tmp_path / "labels.txt").exists()


def test_empty_validation_data_is_an_error(tmp_path):
    empty = _dataset(4, 1).take(0)
    with pytest.raises(ValueError, match="validation dataset is empty"):
        tflite.export_tflite(_model(), tmp_path, train=_dataset(4, 0), validation=empty,
                             class_names=CLASS_NAMES, variants=["float32"])


def test_missing_validation_data_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"pass validation batches .*Received: validation=None"):
        tflite.export_tflite(_model(), tmp_path, train=_dataset(4, 0), validation=None, class_names=CLASS_NAMES)


_IMAGES, _LABELS = _colour_images(8, 2)


@pytest.mark.parametrize("argument, data, message", [
    # Each failed only when read: unbatched train inside the int8 calibration, after the other variants' conversions
    # ("input->dims->size != 4 (3 != 4) ... failed to prepare"), unbatched validation in Keras' input check, and
    # train without labels or None in the loop that takes its images ("too many values to unpack").
    ("train", tf.data.Dataset.from_tensor_slices((_IMAGES, _LABELS)),
     r"^The model takes batches of shape \(None, 24, 24, 3\), so the data must be batched: dataset\.batch\(32\)\. "
     r"Received: train's inputs of shape \(24, 24, 3\)$"),
    ("validation", tf.data.Dataset.from_tensor_slices((_IMAGES, _LABELS)),
     r"Received: validation's inputs of shape \(24, 24, 3\)$"),
    ("train", tf.data.Dataset.from_tensor_slices(_IMAGES).batch(4),
     r"^export_tflite reads train as a tf\.data\.Dataset of \(images, labels\) batches, such as data\.train of "
     r"load_image_folders; map yours to such pairs\. Received: train with element_spec=TensorSpec\("
     r"shape=\(None, 24, 24, 3\), dtype=tf\.float32, name=None\)$"),
    ("train", None, r"Received: train with a NoneType$"),
])
def test_data_that_does_not_fit_the_model_is_refused_before_any_conversion(tmp_path, argument, data, message):
    datasets = {"train": _dataset(8, 0), "validation": _dataset(8, 1), argument: data}
    with pytest.raises(ValueError, match=message):
        tflite.export_tflite(_model(), tmp_path / "tflite", class_names=CLASS_NAMES,
                             variants=("float32", "int8"), **datasets)
    assert not (tmp_path / "tflite").exists()



@pytest.mark.parametrize("output", ["", "notes.txt"])
def test_an_output_dir_that_cannot_be_a_folder_is_refused_before_any_conversion(tmp_path, monkeypatch, output):
    # "" raised os.makedirs' bare FileNotFoundError, a file its FileExistsError, both after every conversion.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    error = ConfigError if output == "" else NotADirectoryError
    with pytest.raises(error, match=rf"^output_dir {'is empty' if output == '' else repr(output) + ' is a file'}; "
                                    r"pass a folder: the \.tflite files and labels\.txt are written inside it"):
        tflite.export_tflite(_model(), output, train=_dataset(4, 0), validation=_dataset(4, 1),
                             class_names=CLASS_NAMES)
    assert (tmp_path / "notes.txt").read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["notes.txt"]
