"""Text export: `serving_default` takes raw UTF-8 strings and must run in a fresh
process that imports only tensorflow and tensorflow_text (TF Serving's op set)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from _serving_child import run_child
from _text_helpers import NEGATIVE, POSITIVE, save_tiny_bert_preset, write_word_vectors

import tfxfer

TEXTS = ["the movie was good", "awful plot, I hated it", "café crème unknown words", "", "GOOD " * 40]


def _serve_in_fresh_process(path, texts, tmp_path):
    """`serving_default` on `texts` and on an empty batch, in a child with tensorflow and tensorflow_text only."""
    jobs = {"texts": ("serving_default", {"texts": np.array(texts, dtype=object)}),
            "empty": ("serving_default", {"texts": np.array([], dtype=object)})}
    # tensorflow_text registers the tokenizer ops, as TF Serving links them.
    reply = run_child(tmp_path, path=path, jobs=jobs, imports=("tensorflow_text",))
    outputs = reply["results"]["texts"]
    loaded = reply["tensorflow_modules"] + reply["modules"]  # all of the child's modules
    return {
        "probabilities": outputs["probabilities"].tolist(),
        "class_ids": outputs["class_ids"].tolist(),
        "class_names": [n.decode() for n in outputs["class_names"]],
        "empty_shape": list(reply["results"]["empty"]["probabilities"].shape),
        "inputs": sorted(reply["input_specs"]["serving_default"]),
        "modules": sorted(m for m in loaded if m.split(".")[0] in ("keras_hub", "keras_nlp", "tfxfer")),
    }


def _keras_probabilities(model, texts):
    return model.predict(model.preprocessor(tf.constant(texts)), verbose=0)


@pytest.mark.slow
def test_bert_export_serves_raw_strings_like_keras(tmp_path):
    preset = save_tiny_bert_preset(tmp_path / "preset")
    names = ["negative", "neutral", "positive ✓"]
    model = tfxfer.build_text_classifier(preset, num_classes=3, sequence_length=16, pooling="mean")
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 20.0)  # A sharper head, so texts land in different classes.
    path = tfxfer.export_saved_model(model, tmp_path / "exports", class_names=names)
    served = _serve_in_fresh_process(path, TEXTS, tmp_path)
    expected = _keras_probabilities(model, TEXTS)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["class_ids"] == expected.argmax(axis=1).tolist()
    assert served["class_names"] == [names[i] for i in expected.argmax(axis=1)]
    assert served["empty_shape"] == [0, 3]
    assert served["inputs"] == ["texts"]
    assert served["modules"] == []
    with open(os.path.join(path, "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert metadata["signatures"] == ["serving_default", "serving_token_ids"]
    assert metadata["input_shape"] == [None] and metadata["preprocessor"] == "BertTextClassifierPreprocessor"
    assert metadata["class_names"] == names


def test_word_vector_export_serves_binary_probabilities(tmp_path):
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE, dim=4)
    backbone = tfxfer.load_word_vector_backbone(vectors, ["good film", "bad plot", "the movie was fine"],
                                                sequence_length=8, encoder="mean", seed=0)
    model = tfxfer.build_text_classifier(backbone, num_classes=2)
    path = tfxfer.export_saved_model(model, tmp_path / "exports", class_names=["neg", "pos"])
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    outputs = loaded(texts=tf.constant(TEXTS))
    p1 = _keras_probabilities(model, TEXTS)[:, 0]
    # An empty text pools to zeros rather than dividing by a zero token count.
    assert np.isfinite(outputs["probabilities"].numpy()).all() and np.isfinite(p1).all()
    np.testing.assert_allclose(outputs["probabilities"].numpy(), np.stack([1 - p1, p1], axis=1), atol=1e-5)
    assert outputs["class_names"].numpy().tolist() == [[b"neg", b"pos"][int(p > 0.5)] for p in p1]
