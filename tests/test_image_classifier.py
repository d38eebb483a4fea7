"""build_image_classifier: layer names, heads, augmentation, your own backbone."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.data import image_ops
from tfxfer.errors import ConfigError
from tfxfer.models.heads import HeadKind, head_kind
from tfxfer.models.image_classifier import resolve_image_size


def _images(n=2, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name, alpha", [("mobilenet_v2", 0.35), ("efficientnet_b0", None), ("densenet121", None)])
def test_registry_classifier_has_named_layers_and_softmax_outputs(name, alpha):
    model = tfxfer.build_image_classifier(name, 4, weights=None, image_size=32, alpha=alpha)
    names = [layer.name for layer in model.layers]
    assert names == ["images", "augmentation", "preprocessing", "backbone", "pooler", "predictions"]
    assert model.get_layer("preprocessing").mode == tfxfer.get_backbone_spec(name).preprocessing
    probabilities = model.predict(_images(), verbose=0)
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_a_dropout_rate_adds_the_dropout_layer_before_the_predictions():
    model = tfxfer.build_image_classifier("mobilenet_v2", 4, weights=None, image_size=32, alpha=0.35, dropout=0.2)
    assert [layer.name for layer in model.layers][-3:] == ["pooler", "dropout", "predictions"]
    assert model.get_layer("dropout").rate == 0.2 and model.dropout == 0.2


@pytest.mark.parametrize("num_classes, multi_label, kind, units", [
    (2, False, HeadKind.BINARY, 1), (5, False, HeadKind.MULTICLASS, 5), (5, True, HeadKind.MULTILABEL, 5)])
def test_head_kind_follows_the_task(num_classes, multi_label, kind, units):
    model = tfxfer.build_image_classifier("mobilenet_v2", num_classes, weights=None, image_size=32, alpha=0.35,
                                          multi_label=multi_label, augmentation=False)
    assert head_kind(model) is kind
    assert model.get_layer("predictions").units == units


def test_a_numpy_count_of_classes_is_taken_as_the_int_it_holds(tmp_path):
    num_classes = np.max([0, 1, 2]) + 1  # an np.int64, as counts computed with NumPy are
    model = tfxfer.build_image_classifier("mobilenet_v2", num_classes, weights=None, image_size=32, alpha=0.35,
                                          augmentation=False)
    assert model.get_layer("predictions").units == 3 and type(model.num_classes) is int
    model.save(tmp_path / "m.keras")  # its config is JSON
    assert keras.models.load_model(tmp_path / "m.keras").num_classes == 3


def test_one_class_is_rejected():
    with pytest.raises(ValueError, match="at least 2 classes"):
        tfxfer.build_image_classifier("mobilenet_v2", 1, weights=None, image_size=32)


def test_augmentation_runs_only_in_training():
    model = tfxfer.build_image_classifier("mobilenet_v2", 3, weights=None, image_size=32, alpha=0.35, dropout=0.0,
                                          seed=1)
    images = _images(4)
    augmentation = model.get_layer("augmentation")
    np.testing.assert_array_equal(augmentation(images, training=False), images)
    assert not np.allclose(augmentation(images, training=True), images)
    np.testing.assert_allclose(model(images, training=False), model(images, training=False))


def test_a_registry_backbone_is_built_at_its_default_size_not_its_pretraining_size():
    assert tfxfer.default_image_size("efficientnet_b3") == 416
    assert tfxfer.default_image_size("mobilenet_v2") == 320
    model = tfxfer.build_image_classifier("mobilenet_v2", 3, weights=None, alpha=0.35, augmentation=False)
    assert model.image_size == (320, 320)
    assert model.get_layer("backbone").output_shape == (None, 10, 10, 1280)
    # The backbone alone keeps keras.applications' default: the pretraining size.
    assert tfxfer.create_backbone("mobilenet_v2", weights=None, alpha=0.35).input_shape == (None, 224, 224, 3)


def _own_model(path=None):
    inputs = keras.Input((40, 40, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(6, 3, name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(7, name="old_head")(x))
    if path:
        model.save(path)
    return model


def test_own_keras_file_is_cut_at_the_named_layer(tmp_path):
    source = _own_model(tmp_path / "own.keras")
    model = tfxfer.build_image_classifier(str(tmp_path / "own.keras"), 3, backbone_output_layer="features",
                                          augmentation=False)
    backbone = model.get_layer("backbone")
    assert backbone.output_shape == (None, 36, 36, 6)
    assert model.get_layer("preprocessing").mode == "none"
    np.testing.assert_array_equal(backbone.get_layer("features").kernel, source.get_layer("features").kernel)
    assert tfxfer.default_image_size(backbone) == 40


def test_flatten_pooling_keeps_where_each_feature_is():
    source = _own_model()
    model = tfxfer.build_image_classifier(source, 3, backbone_output_layer="features", pooling="flatten",
                                          augmentation=False, dropout=0.0)
    assert isinstance(model.get_layer("pooler"), keras.layers.Flatten)
    assert model.get_layer("predictions").kernel.shape == (36 * 36 * 6, 3)
    # Moving a blob to another corner changes the features a flattened head sees, not only their mean.
    images = np.zeros((2, 40, 40, 3), "float32")
    images[0, :8, :8] = 255.0
    images[1, -8:, -8:] = 255.0
    pooled = keras.Model(model.input, model.get_layer("pooler").output).predict(images, verbose=0)
    assert not np.allclose(pooled[0], pooled[1])


def test_unknown_pooling_lists_the_choices():
    with pytest.raises(ValueError, match=r"pooling must be one of \['avg', 'flatten', 'max'\].*Received: pooling='sum'"):
        tfxfer.build_image_classifier(_own_model(), 3, backbone_output_layer="features", pooling="sum")


def test_own_model_image_size_must_match():
    with pytest.raises(ValueError, match=r"image_size must match"):
        tfxfer.build_image_classifier(_own_model(), 3, image_size=64, backbone_output_layer="features")


def test_own_model_must_take_rgb():
    inputs = keras.Input((32, 32, 1))
    grey = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="features")(inputs))
    with pytest.raises(ValueError, match="RGB images"):
        tfxfer.build_image_classifier(grey, 3)


def test_registry_backbone_rejects_cut_layer():
    with pytest.raises(ValueError, match="apply only to your own model"):
        tfxfer.build_image_classifier("mobilenet_v2", 3, weights=None, backbone_output_layer="out_relu")


def test_saved_classifier_round_trips(tmp_path):
    model = tfxfer.build_image_classifier("mobilenet_v2", 3, weights=None, image_size=32, alpha=0.35)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    images = _images()
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


# --- your own model with an open input size, as keras.Input((None, None, 3)) gives ------------------------------


def _open_size_model_file(path, input_shape=(None, None, 3)):
    """A model of the user's own that takes images of any size (as keras.applications models built with
    input_shape=(None, None, 3) do), saved as .keras."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(6, 3, name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    keras.Model(inputs, keras.layers.Dense(7, name="old_head")(x)).save(path)
    return str(path)


def _colour_images(sizes, seed=0):
    """uint8 images of the given (height, width), each noise around a colour of its own."""
    rng = np.random.default_rng(seed)
    return [np.clip(rng.uniform(0, 255, 3) + rng.normal(0, 30, (*size, 3)), 0, 255).astype(np.uint8)
            for size in sizes]


def test_own_keras_file_with_an_open_input_size_is_built_at_image_size_and_trains(tmp_path):
    path = _open_size_model_file(tmp_path / "own.keras")
    model = tfxfer.build_image_classifier(path, 3, image_size=(24, 32), backbone_output_layer="features", seed=0)
    assert model.input_shape == (None, 24, 32, 3) and model.image_size == (24, 32)
    backbone = model.get_layer("backbone")
    assert backbone.output_shape == (None, 9, 13, 6)  # 24 -> 11 -> 9 and 32 -> 15 -> 13: the map has a size now
    np.testing.assert_array_equal(backbone.get_layer("features").kernel,
                                  keras.saving.load_model(path).get_layer("features").kernel)
    images = np.stack(_colour_images([(24, 32)] * 6)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(6) % 3)).batch(3)
    head = np.array(model.get_layer("predictions").kernel)
    tfxfer.fine_tune(model, data, data, config=tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=1), verbose=0)
    assert not np.allclose(model.get_layer("predictions").kernel, head)
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (6, 3)
    model.save(tmp_path / "trained.keras")
    restored = keras.saving.load_model(tmp_path / "trained.keras")
    assert restored.input_shape == (None, 24, 32, 3)
    np.testing.assert_allclose(restored.predict(images, verbose=0), probabilities, atol=1e-6)


def test_export_of_an_open_input_size_backbone_resizes_image_bytes_to_image_size(tmp_path):
    model = tfxfer.build_image_classifier(_open_size_model_file(tmp_path / "own.keras"), 3, image_size=(24, 32),
                                          backbone_output_layer="features", preprocessing="tf", augmentation=False)
    head = model.get_layer("predictions")
    head.kernel.assign(head.kernel * 20.0)  # sharper than the random init: the images' probabilities differ
    served = tf.saved_model.load(tfxfer.export_saved_model(model, tmp_path / "export", class_names=["a", "b", "c"]))
    images_input = served.signatures["serving_images"].structured_input_signature[1]["images"]
    assert images_input.shape.as_list() == [None, 24, 32, 3]
    jpegs = [tf.io.encode_jpeg(image).numpy() for image in _colour_images([(50, 40), (24, 32), (17, 90)])]
    outputs = served.signatures["serving_default"](image_bytes=tf.constant(jpegs))
    decoded = np.stack([image_ops.decode_and_resize(tf.constant(jpeg), (24, 32)).numpy() for jpeg in jpegs])
    expected = model.predict(decoded, verbose=0)
    assert np.ptp(expected, axis=0).max() > 0.01
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-4)


def test_own_model_with_an_open_input_size_needs_image_size(tmp_path):
    path = _open_size_model_file(tmp_path / "own.keras")
    message = re.escape(
        "Your backbone takes images of any size (input shape (None, None, 3)), so there is no image size to infer: "
        "pass the size to build the classifier at, e.g. image_size=224 (recipes: --image_size=224), and load the "
        "images at that size. Received: image_size=None")
    with pytest.raises(ConfigError, match=message):
        tfxfer.build_image_classifier(path, 3, backbone_output_layer="features")
    backbone = tfxfer.backbone_from_model(path, "features")
    with pytest.raises(ConfigError, match=message):
        resolve_image_size(backbone)
    with pytest.raises(ConfigError, match=message):
        tfxfer.default_image_size(backbone)
    assert resolve_image_size(backbone, 24) == 24


def test_own_model_with_an_open_input_size_refuses_sizes_it_cannot_take(tmp_path):
    backbone = tfxfer.backbone_from_model(_open_size_model_file(tmp_path / "own.keras"), "features")
    too_small = r"Your backbone cannot take 4x4 images: Computed output size would be zero or negative\."
    with pytest.raises(ConfigError, match=too_small):
        resolve_image_size(backbone, 4)  # 4 -> 1 after the strided convolution: nothing left for a 3x3 one
    with pytest.raises(ConfigError, match=too_small):
        tfxfer.build_image_classifier(backbone, 3, image_size=4)
    with pytest.raises(ConfigError, match=r"image_size must be a positive integer or a \(height, width\) pair of "
                                          r"them, e\.g\. 224 or \(224, 320\)\. Received: image_size=0"):
        tfxfer.build_image_classifier(backbone, 3, image_size=0)


def test_own_model_open_in_width_only_keeps_its_height(tmp_path):
    path = _open_size_model_file(tmp_path / "own.keras", input_shape=(24, None, 3))
    model = tfxfer.build_image_classifier(path, 3, image_size=(24, 40), backbone_output_layer="features")
    assert model.input_shape == (None, 24, 40, 3)
    with pytest.raises(ConfigError, match=re.escape(
            "Your backbone takes (24, None) images; image_size must match it where it is not None. "
            "Received: image_size=32")):
        tfxfer.build_image_classifier(path, 3, image_size=32, backbone_output_layer="features")
    with pytest.raises(ConfigError, match=r"e\.g\. image_size=24 \(recipes: --image_size=24\)"):
        tfxfer.build_image_classifier(path, 3, backbone_output_layer="features")


@pytest.mark.parametrize("input_shape, example", [((None, None, 3), 224), ((24, None, 3), 24)])
def test_image_classifier_refuses_an_open_size_backbone_naming_build_image_classifier(tmp_path, input_shape,
                                                                                       example):
    backbone = tfxfer.backbone_from_model(_open_size_model_file(tmp_path / "own.keras", input_shape), "features")
    with pytest.raises(ConfigError, match=re.escape(
            f"ImageClassifier needs a backbone of one input size, but this one takes images of any size (input "
            f"shape {input_shape}). Build the classifier with tfxfer.build_image_classifier(backbone, ..., "
            f"image_size={example}), which builds the backbone at that size, and load the images at that size. "
            f"Received: backbone with input shape {(None, *input_shape)}")):
        tfxfer.ImageClassifier(backbone, 3)
    model = tfxfer.build_image_classifier(backbone, 3, image_size=example, augmentation=False)
    assert model.image_size == (example, example)


def _write_two_colour_folders(root):
    for name, image in zip(("blue", "red"), _colour_images([(30, 26), (20, 36)])):
        (root / name).mkdir(parents=True)
        for index in range(4):
            (root / name / f"{index}.jpg").write_bytes(tf.io.encode_jpeg(np.clip(image + index, 0, 255)).numpy())
    return root


def test_image_recipe_asks_for_image_size_with_an_open_size_backbone(tmp_path, script_server):
    stderr = script_server.usage_error(
        "image_classifier.py", f"--data_dir={_write_two_colour_folders(tmp_path / 'data')}",
        f"--backbone={_open_size_model_file(tmp_path / 'own.keras')}", "--backbone_output_layer=features",
        f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}")
    assert ("image_classifier.py: error: Your backbone takes images of any size (input shape (None, None, 3)), so "
            "there is no image size to infer: pass the size to build the classifier at, e.g. image_size=224 "
            "(recipes: --image_size=224)") in stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "exports").exists()


@pytest.mark.slow
def test_image_recipe_builds_an_open_size_backbone_at_image_size(tmp_path, script_server):
    process = script_server.run_recipe(
        "image_classifier.py", f"--data_dir={_write_two_colour_folders(tmp_path / 'data')}",
        f"--backbone={_open_size_model_file(tmp_path / 'own.keras')}", "--backbone_output_layer=features",
        "--image_size=40", "--validation_split=0.25", "--epochs=1", "--fine_tune_epochs=1", "--batch_size=4",
        f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}", "--model_name=colours",
        timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["image_size"] == 40
    served = tf.saved_model.load(str(tmp_path / "exports" / "colours" / "1"))
    images_input = served.signatures["serving_images"].structured_input_signature[1]["images"]
    assert images_input.shape.as_list() == [None, 40, 40, 3]
