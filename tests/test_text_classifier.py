"""Tests for build_text_classifier on a tiny keras-hub BERT saved as a local preset."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import (
    NEGATIVE,
    POSITIVE,
    VOCAB,
    save_tiny_bert_preset,
    save_tiny_hf_bert,
    sentences,
)

import tfxfer
from tfxfer.data.token_batches import preprocess_dataset
from tfxfer.errors import ConfigError, UserError
from tfxfer.models.token_pooling import TokenPooling
from tfxfer.training import freezing


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    return save_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert"))


def test_model_takes_token_ids_and_carries_its_preprocessor(preset):
    model = tfxfer.build_text_classifier(preset, num_classes=3, sequence_length=12)
    assert [layer.name for layer in model.layers[-4:]] == ["backbone", "pooler", "dropout", "predictions"]
    inputs = model.preprocessor(tf.constant(["the movie was good", "bad"]))
    assert inputs["token_ids"].shape == (2, 12)
    probabilities = model.predict(inputs, verbose=0)
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.output_shape == (None, 3)


def test_backbone_lists_transformer_layers_so_unfreeze_top_picks_them(preset):
    model = tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8)
    backbone = model.get_layer("backbone")
    names = [layer.name for layer in backbone.layers]
    assert names[-2:] == ["transformer_layer_0", "transformer_layer_1"]
    assert "pooled_dense" not in names  # Unused by the head; it would get no gradients.
    freezing.freeze_backbone(backbone)
    freezing.unfreeze_top(backbone, "transformer_layer_1")
    assert [layer.name for layer in backbone.layers if layer.trainable] == ["transformer_layer_1"]
    freezing.unfreeze_top(backbone, 0.3)  # 3 of 11 layers: padding_mask input and both blocks.
    assert {layer.name for layer in backbone.layers if layer.trainable and layer.weights} == {
        "transformer_layer_0", "transformer_layer_1"}


def test_binary_and_multi_label_heads(preset):
    binary = tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8)
    multi = tfxfer.build_text_classifier(preset, num_classes=4, sequence_length=8, multi_label=True)
    assert tfxfer.HeadKind.BINARY == tfxfer.models.heads.head_kind(binary) and binary.output_shape == (None, 1)
    assert tfxfer.models.heads.head_kind(multi) is tfxfer.HeadKind.MULTILABEL and multi.output_shape == (None, 4)


def test_mean_pooling_ignores_padding():
    pooling = TokenPooling("mean")
    sequence = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], "float32")
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(pooling(sequence, mask), [[2.0, 3.0]])
    np.testing.assert_allclose(TokenPooling("cls")(sequence, mask), [[1.0, 2.0]])
    np.testing.assert_allclose(pooling(sequence, np.zeros((1, 3), bool)), [[0.0, 0.0]])


def test_pooling_error():
    with pytest.raises(ValueError, match=r"pooling must be one of \('avg', 'cls'\). Received: pooling='max'"):
        TokenPooling("max")


def _token_embedding(model):
    return model.get_layer("backbone").get_layer("token_embedding").embeddings.numpy()


def test_weights_pretrained_random_or_from_a_file(preset, tmp_path):
    pretrained = _token_embedding(tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8))
    np.testing.assert_array_equal(
        pretrained, keras_hub.models.Backbone.from_preset(preset).get_layer("token_embedding").embeddings.numpy())

    random = _token_embedding(tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8, weights=None))
    assert random.shape == pretrained.shape and not np.allclose(random, pretrained)

    adapted = keras_hub.models.Backbone.from_preset(preset)
    adapted.get_layer("token_embedding").embeddings.assign(pretrained + 1.0)
    adapted.save_weights(tmp_path / "adapted.weights.h5")
    loaded = tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8,
                                          weights=tmp_path / "adapted.weights.h5")
    np.testing.assert_allclose(_token_embedding(loaded), pretrained + 1.0)


def test_weights_errors(preset, tmp_path):
    with pytest.raises(FileNotFoundError, match="No weights file at this path"):
        tfxfer.build_text_classifier(preset, num_classes=2, weights=tmp_path / "missing.weights.h5")
    backbone = tfxfer.load_hub_backbone(preset, sequence_length=8)
    with pytest.raises(ValueError, match="a TextBackbone .* brings its own"):
        tfxfer.build_text_classifier(backbone, num_classes=2, weights=None)


def test_weights_of_another_backbone_size_name_the_file_and_the_fix(preset, tmp_path):
    wider = keras_hub.models.BertBackbone(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=16,
                                          intermediate_dim=16, max_sequence_length=32)
    wider.save_weights(tmp_path / "wider.weights.h5")
    with pytest.raises(ConfigError, match=r"The weights file does not fit the text backbone .*Pass a \.weights\.h5 "
                                          r"file saved with save_weights\(\) from this same backbone.*Received: "
                                          r"weights='.*wider\.weights\.h5'"):
        tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8, weights=tmp_path / "wider.weights.h5")


def test_sequence_length_beyond_backbone_is_an_error(preset):
    with pytest.raises(ValueError, match="at most 32 tokens per text.*sequence_length=64"):
        tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=64)
    with pytest.raises(ValueError, match="sequence_length must be an integer >= 2"):
        tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=1)


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder at that path"):
        tfxfer.build_text_classifier(str(tmp_path / "no_such_preset"), num_classes=2)


def test_preset_download_failure_says_how_to_work_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Failed to resolve 'api.kaggle.com'")

    monkeypatch.setattr(keras_hub.models.Backbone, "from_preset", offline)
    with pytest.raises(RuntimeError, match="needs a download.*Offline, pass a local folder") as info:
        tfxfer.build_text_classifier("bert_tiny_en_uncased", num_classes=2)
    assert isinstance(info.value, UserError)  # The recipes show it as a message, not a traceback.
    assert "Failed to resolve 'api.kaggle.com'" in str(info.value)
    assert str(info.value).endswith("Received: backbone='bert_tiny_en_uncased'")


@pytest.mark.slow
def test_fine_tune_trains_on_tokenized_strings_and_unfreezes_top_block(preset, tmp_path):
    texts = sentences(POSITIVE, 16, 0) + sentences(NEGATIVE, 16, 1)
    labels = [1] * 16 + [0] * 16
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels)).shuffle(32, seed=0).batch(8)
    model = tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8, pooling="mean")
    tokenized = preprocess_dataset(dataset, model.preprocessor)
    block0 = [w.numpy() for w in model.get_layer("backbone").get_layer("transformer_layer_0").weights]
    block1 = [w.numpy() for w in model.get_layer("backbone").get_layer("transformer_layer_1").weights]
    config = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=1, fine_tune_at="transformer_layer_1",
                                   fine_tune_learning_rate=1e-2)
    result = tfxfer.fine_tune(model, tokenized, config=config)  # No validation: fewer graphs to trace.
    assert set(result.metrics()) == {"phase1", "phase2"}
    assert result.phase2.trainable_parameters > result.phase1.trainable_parameters == 9  # 8 weights + bias
    after0 = model.get_layer("backbone").get_layer("transformer_layer_0").weights
    after1 = model.get_layer("backbone").get_layer("transformer_layer_1").weights
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(block0, after0))
    assert not all(np.array_equal(a, b.numpy()) for a, b in zip(block1, after1))


def test_hugging_face_folder_is_converted_by_keras_hub(tmp_path):
    tensors = save_tiny_hf_bert(tmp_path / "hf_bert")
    model = tfxfer.build_text_classifier(str(tmp_path / "hf_bert"), num_classes=2, sequence_length=10)
    backbone = model.get_layer("backbone")
    np.testing.assert_allclose(backbone.get_layer("token_embedding").embeddings.numpy(),
                               tensors["embeddings.word_embeddings.weight"])
    assert [layer.name for layer in backbone.layers][-1] == "transformer_layer_0"
    inputs = model.preprocessor(tf.constant(["the film was lovely"]))
    assert inputs["token_ids"].numpy()[0, :6].tolist() == [2, 5, 8, 12, 16, 3]  # [CLS] ... [SEP] from vocab.txt
    assert model.predict(inputs, verbose=0).shape == (1, 1)


def test_text_backbone_errors():
    token_ids = keras.Input((4,), dtype="int32", name="token_ids")
    sequence = keras.layers.Embedding(10, 3)(token_ids)
    unnamed = tfxfer.TextBackbone(keras.Model(token_ids, sequence, name="encoder"), preprocessor=None, name="x")
    with pytest.raises(ValueError, match="must be named 'backbone'.*Received: name='encoder'"):
        tfxfer.build_text_classifier(unnamed, num_classes=2)
    no_mask = tfxfer.TextBackbone(keras.Model(token_ids, sequence, name="backbone"), preprocessor=None, name="x")
    with pytest.raises(ValueError, match="pooling='avg' needs the encoder's 'padding_mask' input"):
        tfxfer.build_text_classifier(no_mask, num_classes=2, pooling="mean")


def test_preprocess_dataset_trims_padding_without_changing_predictions(preset):
    model = tfxfer.build_text_classifier(preset, num_classes=3, sequence_length=16, pooling="mean")
    texts = tf.constant(["good", "the movie was bad", "i liked it"])
    dataset = tf.data.Dataset.from_tensors((texts, tf.constant([0, 1, 2])))
    full, _ = next(iter(preprocess_dataset(dataset, model.preprocessor, trim_padding=False)))
    exact, _ = next(iter(preprocess_dataset(dataset, model.preprocessor, pad_to_multiple_of=1)))
    rounded, _ = next(iter(preprocess_dataset(dataset, model.preprocessor)))
    assert full["token_ids"].shape == (3, 16)
    assert exact.keys() == full.keys() and {v.shape for v in exact.values()} == {(3, 6)}  # [CLS] 4 words [SEP]
    for key in full:
        np.testing.assert_array_equal(exact[key], full[key][:, :6])
    assert not full["padding_mask"].numpy()[:, 6:].any()  # Only padding was cut.
    assert rounded["token_ids"].shape == (3, 8)
    np.testing.assert_allclose(model.predict(exact, verbose=0), model.predict(full, verbose=0), atol=1e-5)
    np.testing.assert_allclose(model.predict(rounded, verbose=0), model.predict(full, verbose=0), atol=1e-5)


def test_trimming_leaves_plain_token_id_tensors_alone():
    from tfxfer.data.token_batches import trim_to_longest

    token_ids = tf.constant([[3, 4, 0, 0]])
    assert trim_to_longest(token_ids) is token_ids
    trimmed = trim_to_longest({"token_ids": tf.constant([[3, 0, 0], [0, 0, 0]]),
                               "padding_mask": tf.zeros((2, 3), tf.bool)})
    assert trimmed["token_ids"].numpy().tolist() == [[3], [0]]  # An all-padding batch keeps one column.
    with pytest.raises(ValueError, match="must be a positive integer. Received: pad_to_multiple_of=0"):
        preprocess_dataset(tf.data.Dataset.range(1), lambda texts: texts, pad_to_multiple_of=0)
