"""build_image_classifier: layer names, heads, augmentation, your own backbone."""

import keras
import numpy as np
import pytest

import tfxfer
from tfxfer.models.heads import HeadKind, head_kind


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
