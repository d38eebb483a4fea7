"""A classifier saved with `model.save` comes back whole in a fresh process: it
predicts raw images or raw strings as before, fine-tunes again and exports."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import (
    NEGATIVE,
    POSITIVE,
    VOCAB,
    save_tiny_bert_preset,
    sentences,
    write_word_vectors,
)

import tfxfer

CHILD = os.path.join(os.path.dirname(__file__), "_reload_child.py")


def _image_case(folder):
    # Your own small backbone, BatchNorm included (its moving statistics must come back too);
    # benchmarks/round_trip.py does the same with ImageNet MobileNetV2.
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    own = keras.Model(inputs, keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x), name="own")
    model = tfxfer.build_image_classifier(own, 3, preprocessing="tf", seed=0)  # with augmentation
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    return model, images, np.arange(8) % 3, tfxfer.FineTuneConfig()


def _bert_case(folder):
    model = tfxfer.build_text_classifier(save_tiny_bert_preset(folder / "bert"), 3, sequence_length=16)
    texts = sentences(POSITIVE, 4, seed=0) + sentences(NEGATIVE, 4, seed=1)
    # The text defaults train phase 2 with layer-wise AdamW: a saved model must not need it to load.
    return model, np.array(texts), np.arange(8) % 3, tfxfer.defaults.TextDefaults.fine_tune_config()


def _word_vector_case(folder):
    write_word_vectors(folder / "vectors.txt", VOCAB)
    texts = sentences(POSITIVE, 4, seed=0) + sentences(NEGATIVE, 4, seed=1)
    backbone = tfxfer.load_word_vector_backbone(folder / "vectors.txt", texts, sequence_length=8, seed=0)
    config = tfxfer.defaults.TextDefaults.fine_tune_config(word_vectors=True)
    return tfxfer.build_text_classifier(backbone, 2), np.array(texts), np.array([1] * 4 + [0] * 4), config


CASES = {"image": _image_case, "bert": _bert_case, "word_vectors": _word_vector_case}


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    """Each case's model, fine-tuned and saved here, then reloaded, used and exported in one fresh process."""
    folders, expected = [], {}
    for name, case in CASES.items():
        folder = tmp_path_factory.mktemp(name)
        model, inputs, labels, config = case(folder)
        # Trained first, as users save models.
        dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(4)
        if model.task == "text":
            dataset = dataset.map(lambda texts, y, model=model: (model.preprocessor(texts), y))
        tfxfer.fine_tune(model, dataset, config=config.replace(epochs=1, fine_tune_epochs=1))
        expected[name] = (model.predict(inputs, verbose=0), model.task, model.backbone_name)
        model.save(folder / "model.keras")
        np.savez(folder / "data.npz", inputs=inputs, labels=labels)
        folders.append(folder)
    child = subprocess.run([sys.executable, CHILD, *map(str, folders)], capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    return {name: (np.load(folder / "result.npz"), *expected[name]) for name, folder in zip(CASES, folders)}


@pytest.mark.parametrize("name, kind, head", [
    ("image", "ImageClassifier", "multiclass"),
    ("bert", "TextClassifier", "multiclass"),
    ("word_vectors", "TextClassifier", "binary"),
])
def test_saved_classifier_predicts_fine_tunes_and_exports_in_a_fresh_process(reloaded, name, kind, head):
    result, expected, task, backbone_name = reloaded[name]
    assert (str(result["type"]), str(result["head"])) == (kind, head)
    assert str(result["task"]) == task and str(result["backbone"]) == backbone_name
    np.testing.assert_allclose(result["before"], expected, atol=1e-6)
    assert not np.allclose(result["after"], expected, atol=1e-4)  # fine-tuning moved the reloaded weights
    # A binary head's one unit is P(class 1); the export serves both classes' probabilities.
    np.testing.assert_allclose(result["served"][:, -result["after"].shape[1]:], result["after"], atol=1e-5)


def test_config_describes_the_model_without_layer_names():
    model = tfxfer.build_image_classifier("mobilenet_v2", 2, weights=None, image_size=32, alpha=0.35,
                                          pooling="max", augmentation=False)
    config = model.get_config()
    assert {key: config[key] for key in ("num_classes", "multi_label", "pooling", "backbone_name", "preprocessing")} \
        == {"num_classes": 2, "multi_label": False, "pooling": "max", "backbone_name": "mobilenet_v2",
            "preprocessing": "tf"}
    rebuilt = tfxfer.ImageClassifier.from_config(config)
    assert rebuilt.head_kind is tfxfer.HeadKind.BINARY and rebuilt.image_size == (32, 32)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]


def test_text_classifier_predicts_raw_strings_like_token_ids(tmp_path):
    model, texts, _, _ = _word_vector_case(tmp_path)
    from_tokens = model.predict(model.preprocessor(tf.constant(list(texts))), verbose=0)
    np.testing.assert_allclose(model.predict(list(texts), batch_size=3, verbose=0), from_tokens, atol=1e-6)
    batches = tf.data.Dataset.from_tensor_slices(list(texts)).batch(5)
    np.testing.assert_allclose(model.predict(batches, verbose=0), from_tokens, atol=1e-6)
    with pytest.raises(ValueError, match="wrap one text in a list"):
        model.predict("one text")


def test_a_preprocessor_that_cannot_be_saved_is_refused():
    token_ids = keras.Input((4,), dtype="int32", name="token_ids")
    encoder = keras.Model(token_ids, keras.layers.Embedding(10, 3)(token_ids), name="backbone")
    with pytest.raises(ValueError, match="must be a keras.Layer .* so that it saves with the model"):
        tfxfer.TextClassifier(encoder, lambda texts: texts, 2, pooling="cls")
