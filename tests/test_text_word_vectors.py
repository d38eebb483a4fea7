"""Tests for word-vector backbones: reading GloVe/word2vec text files, the Embedding,
and phase 1 / phase 2 freezing on the shared engine."""

import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import FILLER, NEGATIVE, POSITIVE, sentences, write_word_vectors

import tfxfer
from tfxfer.data.token_batches import preprocess_dataset
from tfxfer.models.backbones.word_vectors import read_word_vectors

TEXTS = sentences(POSITIVE, 24, 0) + sentences(NEGATIVE, 24, 1)
LABELS = [1] * 24 + [0] * 24


@pytest.mark.parametrize("header", [False, True])
def test_reads_glove_and_word2vec_formats(tmp_path, header):
    path = tmp_path / "vectors.txt"
    written = write_word_vectors(path, ["good", "Bad", "movie", "unused"], dim=3, header=header)
    vectors, found = read_word_vectors(path, ["", "[UNK]", "good", "bad", "missing", "movie"])
    assert vectors.shape == (6, 3) and vectors.dtype == np.float32
    assert found.tolist() == [False, False, True, True, False, True]
    np.testing.assert_allclose(vectors[2], written["good"], atol=1e-5)
    np.testing.assert_allclose(vectors[3], written["Bad"], atol=1e-5)  # Case-folded match.
    assert not vectors[4].any()


def test_reads_vectors_from_any_filesystem_tensorflow_reads():
    path = "ram://word_vectors/vectors.txt"
    tf.io.gfile.makedirs("ram://word_vectors")
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("good 1 2\nbad\xa0 3 4\nmovie 5 6\n")
    vectors, found = read_word_vectors(path, ["good", "movie", "missing"])
    assert vectors.tolist() == [[1.0, 2.0], [5.0, 6.0], [0.0, 0.0]] and found.tolist() == [True, True, False]


def test_exact_match_wins_over_case_folded(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("Good 1 1\ngood 2 2\nGOOD 3 3\n", encoding="utf-8")
    vectors, _ = read_word_vectors(path, ["good"])
    assert vectors[0].tolist() == [2.0, 2.0]


def test_vector_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="GloVe/word2vec text-format file"):
        read_word_vectors(tmp_path / "missing.txt", ["a"])
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2 3\nb 1 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must have 3 values.*2 values on line 2"):
        read_word_vectors(bad, ["a", "b"])
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="No word vectors in"):
        read_word_vectors(empty, ["a"])
    with pytest.raises(ValueError, match=r"encoder must be one of \('bilstm', 'mean'\). Received: encoder='gru'"):
        tfxfer.load_word_vector_backbone(bad, ["a"], encoder="gru")


def test_embedding_holds_pretrained_vectors_for_the_training_vocabulary(tmp_path):
    path = tmp_path / "vectors.txt"
    written = write_word_vectors(path, POSITIVE + NEGATIVE + FILLER[:3], dim=4)
    backbone = tfxfer.load_word_vector_backbone(path, TEXTS, sequence_length=6, encoder="mean", seed=0)
    vocabulary = backbone.preprocessor.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"] and set(POSITIVE + NEGATIVE) <= set(vocabulary)
    table = backbone.encoder.get_layer("embedding").embeddings.numpy()
    np.testing.assert_allclose(table[vocabulary.index("good")], written["good"], atol=1e-5)
    assert not table[0].any()  # Padding.
    assert table[vocabulary.index("was")].any()  # Not in the file: random, not zero.
    assert backbone.encoder.name == "backbone"
    assert backbone.preprocessor(tf.constant(["good film"])).shape == (1, 6)


def test_bilstm_encoder_gives_one_vector_per_text(tmp_path):
    path = tmp_path / "vectors.txt"
    write_word_vectors(path, POSITIVE + NEGATIVE, dim=4)
    backbone = tfxfer.load_word_vector_backbone(path, TEXTS, sequence_length=6, encoder="bilstm", units=3)
    model = tfxfer.build_text_classifier(backbone, num_classes=3)
    assert model.get_layer("backbone").output_shape == (None, 6)  # 3 units, both directions.
    assert model.predict(model.preprocessor(tf.constant(["good", "bad film"])), verbose=0).shape == (2, 3)


def test_phase1_freezes_vectors_and_phase2_trains_them(tmp_path):
    encoder = "mean"
    path = tmp_path / "vectors.txt"
    write_word_vectors(path, POSITIVE + NEGATIVE + FILLER, dim=4)
    backbone = tfxfer.load_word_vector_backbone(path, TEXTS, sequence_length=6, encoder=encoder, units=4, seed=0)
    model = tfxfer.build_text_classifier(backbone, num_classes=2, dropout=0.0)
    assert [layer.name for layer in model.layers] == ["token_ids", "backbone", "predictions"]
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).shuffle(48, seed=0).batch(16)
    tokenized = preprocess_dataset(dataset, model.preprocessor)
    table = model.get_layer("backbone").get_layer("embedding").embeddings
    before = table.numpy()
    config = tfxfer.FineTuneConfig(epochs=3, fine_tune_epochs=0, learning_rate=5e-2, label_smoothing=0.0)
    result = tfxfer.fine_tune(model, tokenized, tokenized, config=config)
    np.testing.assert_array_equal(table.numpy(), before)
    # A linear probe on averaged vectors: the class signal is in dimension 0.
    assert result.phase1.final_metrics["val_accuracy"] >= 0.9
    config = config.replace(epochs=1, fine_tune_epochs=1, fine_tune_at=0)
    tfxfer.fine_tune(model, tokenized, tokenized, config=config)
    assert not np.array_equal(table.numpy(), before)


def test_sequence_length_error(tmp_path):
    path = tmp_path / "vectors.txt"
    write_word_vectors(path, POSITIVE, dim=2)
    with pytest.raises(ValueError, match="sequence_length must be a positive integer. Received: sequence_length=0"):
        tfxfer.load_word_vector_backbone(path, TEXTS, sequence_length=0)
