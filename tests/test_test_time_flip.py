"""Flip test-time augmentation: predictions average each image with its mirror image, outside training only."""

import keras
import numpy as np
import tensorflow as tf

import tfxfer
from tfxfer.export import tflite


def _backbone():
    inputs = keras.Input((24, 24, 3))
    # Lopsided kernels: an image and its mirror image give different features.
    features = keras.layers.Conv2D(6, 3, activation="relu", name="features")(inputs / 255.0)
    return keras.Model(inputs, features)


def _classifier(tasks=None, **kwargs):
    kwargs.setdefault("augmentation", False)
    model = tfxfer.build_image_classifier(_backbone(), None if tasks else 3, tasks=tasks, dropout=0.0,
                                          seed=0, **kwargs)
    rng = np.random.default_rng(0)
    # The heads start at zero, which would predict the same for an image and its mirror image.
    model.set_weights([rng.normal(0, 1, weight.shape).astype("float32") for weight in model.get_weights()])
    return model


def _images(n=4):
    return np.random.default_rng(1).uniform(0, 255, size=(n, 24, 24, 3)).astype("float32")


def _single_view(model, images):
    """The model's probabilities for `images` as they are, and for their mirror images."""
    model.test_time_flip = False
    try:
        return model(images, training=False), model(images[:, :, ::-1], training=False)
    finally:
        model.test_time_flip = True


def test_predictions_average_each_image_with_its_mirror_image():
    model = _classifier(test_time_flip=True)
    images = _images()
    as_is, mirrored = _single_view(model, images)
    assert np.abs(as_is - mirrored).max() > 1e-3  # else the test could not tell
    expected = (as_is + mirrored) / 2
    np.testing.assert_allclose(model(images, training=False), expected, atol=1e-6)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-6)


def test_training_steps_see_each_image_once():
    model = _classifier(test_time_flip=True)
    images = _images()
    as_is, _ = _single_view(model, images)
    np.testing.assert_allclose(model(images, training=True), as_is, atol=1e-6)


def test_every_head_of_a_multi_task_model_is_averaged():
    model = _classifier(tasks={"kind": 3, "grade": 2}, test_time_flip=True)
    images = _images()
    as_is, mirrored = _single_view(model, images)
    outputs = model.predict(images, verbose=0)
    for task in ("kind", "grade"):
        np.testing.assert_allclose(outputs[task], (as_is[task] + mirrored[task]) / 2, atol=1e-6)


def test_it_is_off_unless_asked_for():
    assert _classifier(augmentation=True).test_time_flip is False
    assert tfxfer.ImageClassifier(_backbone(), 3).test_time_flip is False


def test_the_setting_and_the_averaged_predictions_survive_a_save(tmp_path):
    model = _classifier(test_time_flip=True)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert restored.test_time_flip is True
    images = _images()
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_the_export_serves_the_averaged_predictions(tmp_path):
    model = _classifier(test_time_flip=True)
    images = _images()
    as_is, _ = _single_view(model, images)
    path = tfxfer.export_saved_model(model, tmp_path / "flips", class_names=["a", "b", "c"])
    serve = tf.saved_model.load(str(path)).signatures["serving_images"]
    served = serve(images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(served, model.predict(images, verbose=0), atol=1e-5)
    assert np.abs(served - as_is).max() > 1e-3


def test_the_tflite_model_averages_too(tmp_path):
    # With an augmentation layer, which the TFLite export leaves out of the graph it converts.
    model = _classifier(test_time_flip=True, augmentation=True)
    images = _images(2)
    runner = tflite.interpreter(tflite.convert_tflite(model, "float32"))
    outputs = np.stack([tflite.run_tflite(runner, image) for image in images])
    np.testing.assert_allclose(outputs, model.predict(images, verbose=0), atol=1e-5)
