"""Tests for load_tfds_text on faked TFDS datasets (`_tfds_fake.fake_tfds`, no network)."""

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow_datasets as tfds
from _text_helpers import texts_and_labels
from _tfds_fake import fake_tfds, labelled_text

import tfxfer
from tfxfer.data import text_tfds, tfds_builders


def _mock_tfds(data_dir, name, examples):
    """Fakes a prepared TFDS text dataset holding `examples[split]`: `(text bytes, label)` pairs.

    Records the splits read in the yielded list.
    """
    return fake_tfds(data_dir, name, examples, labelled_text)


def _reviews(prefix, count, first_label=0):
    """`count` labelled texts of 1 to 5 words: `b"<prefix> <i> ..."`, labels alternating."""
    return [((f"{prefix} {i} " + "word " * (i % 5)).strip().encode(), (i + first_label) % 2) for i in range(count)]


def test_imdb_reviews_trains_on_train_and_validates_on_test_with_a_warning(tmp_path, caplog):
    train = _reviews("train", 10) + [(b"\xff\xfe bad bytes", 0), (b"   ", 1)]
    splits = {"train": train, "test": _reviews("test", 4), "unsupervised": [(b"no label", -1)]}
    with _mock_tfds(tmp_path, "imdb_reviews", splits) as reads, caplog.at_level(logging.WARNING):
        data = tfxfer.load_tfds_text("imdb_reviews", data_dir=str(tmp_path), batch_size=4)
    assert "validating on its test split" in caplog.text
    assert "unsupervised" not in reads
    assert data.source_format == "tfds" and not data.multi_label
    assert data.class_names == ["neg", "pos"]
    assert data.skipped == {"undecodable": 1, "empty": 1, "no_label": 0}
    assert (data.train_size, data.validation_size, data.train_class_counts) == (10, 4, [5, 5])
    assert sorted(zip(*texts_and_labels(data.train))) == sorted((t.decode(), label) for t, label in _reviews("train", 10))
    assert texts_and_labels(data.validation) == ([t.decode() for t, _ in _reviews("test", 4)], [0, 1, 0, 1])
    assert int(data.train.cardinality()) == len(list(data.train))


def test_glue_sst2_finds_its_keys_and_validates_on_validation_not_unlabelled_test(tmp_path):
    splits = {"train": _reviews("train", 12), "validation": _reviews("val", 3, first_label=1),
              "test": [(b"secret", -1)] * 5}
    with _mock_tfds(tmp_path, "glue/sst2", splits) as reads:
        data = tfxfer.load_tfds_text("glue/sst2", data_dir=str(tmp_path), batch_size=8, bucket_by_length=False)
    assert "test" not in reads
    assert data.class_names == ["negative", "positive"]
    assert (data.train_size, data.validation_size) == (12, 3)
    assert texts_and_labels(data.validation) == (["val 0", "val 1 word", "val 2 word word"], [1, 0, 1])


def test_validation_split_holds_out_a_seeded_share_of_train(tmp_path):
    splits = {"train": _reviews("train", 20), "validation": _reviews("val", 3)}
    with _mock_tfds(tmp_path, "glue/sst2", splits):
        load = lambda seed: tfxfer.load_tfds_text(  # noqa: E731
            "glue/sst2", data_dir=str(tmp_path), validation_split=0.2, seed=seed)
        data, same, other = load(1), load(1), load(2)
    assert (data.train_size, data.validation_size, data.train_class_counts) == (16, 4, [8, 8])
    assert all(text.startswith("train") for text in texts_and_labels(data.validation)[0])
    assert texts_and_labels(data.validation) == texts_and_labels(same.validation) != texts_and_labels(other.validation)


def test_without_labelled_validation_or_test_a_tenth_of_train_is_held_out(tmp_path, caplog):
    splits = {"train": _reviews("train", 20), "test": [(b"secret", -1)] * 3}
    # On the absl logger itself: an earlier test may have left absl's verbosity at WARNING.
    with _mock_tfds(tmp_path, "glue/sst2", splits), caplog.at_level(logging.INFO, logger="absl"):
        data = tfxfer.load_tfds_text("glue/sst2", data_dir=str(tmp_path))
    assert (data.train_size, data.validation_size) == (18, 2)
    assert "holding out 10% of train" in caplog.text
    assert np.bincount(texts_and_labels(data.validation)[1]).tolist() == [1, 1]


def test_validation_split_0_trains_on_all_of_train_without_labelled_validation_or_test(tmp_path, caplog):
    splits = {"train": _reviews("train", 20), "test": [(b"secret", -1)] * 3}
    with _mock_tfds(tmp_path, "glue/sst2", splits), caplog.at_level(logging.INFO, logger="absl"):
        data = tfxfer.load_tfds_text("glue/sst2", data_dir=str(tmp_path), validation_split=0)
    assert (data.train_size, data.validation_size, data.validation, data.train_class_counts) == (20, 0, None, [10, 10])
    assert "validation_split=0 holds out none of train: training on all of it, without validation" in caplog.text
    assert ("No validation data: \"TFDS 'glue/sst2' (train='train', validation=none)\" has no labelled validation "
            "or test split") in caplog.text
    assert "holding out" not in caplog.text


def test_validation_split_0_still_validates_on_the_datasets_own_split(tmp_path):
    splits = {"train": _reviews("train", 20), "validation": _reviews("val", 3)}
    with _mock_tfds(tmp_path, "glue/sst2", splits):
        data = tfxfer.load_tfds_text("glue/sst2", data_dir=str(tmp_path), validation_split=0.0)
    assert (data.train_size, data.validation_size) == (20, 3)
    assert all(text.startswith("val") for text in texts_and_labels(data.validation)[0])


def test_keys_that_are_not_text_and_class_label_are_an_error(tmp_path):
    with _mock_tfds(tmp_path, "glue/sst2", {"train": _reviews("train", 4)}):
        with pytest.raises(ValueError, match=r"needs a text feature and a ClassLabel.*text_key='idx'"):
            tfxfer.load_tfds_text("glue/sst2", data_dir=str(tmp_path), text_key="idx")


def test_unknown_name_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown TFDS dataset 'no_such_reviews'.*load_text_data"):
        tfxfer.load_tfds_text("no_such_reviews", data_dir=str(tmp_path))


def test_not_prepared_offline_explains_what_to_do(tmp_path):
    with pytest.raises(RuntimeError) as raised:
        tfxfer.load_tfds_text("imdb_reviews", data_dir=str(tmp_path), download=False)
    message = str(raised.value)
    assert "'imdb_reviews' is not prepared" in message
    assert f"data_dir={str(tmp_path)!r}" in message
    assert "tfds build imdb_reviews --data_dir=DIR" in message
    assert "pass it as data_dir" in message


def test_download_failure_explains_what_to_do(tmp_path, monkeypatch):
    def fail(self, *args, **kwargs):
        raise ConnectionError("Temporary failure in name resolution")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
    with pytest.raises(RuntimeError, match=r"(?s)not prepared.*tfds build glue/sst2.*Temporary failure"):
        tfxfer.load_tfds_text("glue/sst2", data_dir=str(tmp_path))


def test_bad_examples_cost_only_themselves_counted_by_reason(tmp_path, caplog):
    train = _reviews("train", 6) + [(b"caf\xe9", 0), (b"", 1), (b"x" * 40, 1), (b"no class", 7), (b"unlabelled", -1)]
    splits = {"train": train, "validation": _reviews("val", 2) + [(b"y" * 35, 0)]}
    with _mock_tfds(tmp_path, "glue/sst2", splits), caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_tfds_text("glue/sst2", data_dir=str(tmp_path), max_text_chars=30)
    assert data.skipped == {"undecodable": 1, "empty": 1, "no_label": 1, "unknown_label": 1}
    assert data.changed == {"truncated_chars": 2}
    assert sorted(texts_and_labels(data.train)[0]) == sorted([t.decode() for t, _ in _reviews("train", 6)] + ["x" * 30])
    assert texts_and_labels(data.validation)[0] == ["val 0", "val 1 word", "y" * 30]
    assert "unknown_label 1 (a label outside the class names; first at example 9 (label 7))" in caplog.text


def test_max_text_chars_must_be_a_positive_integer(tmp_path):
    with pytest.raises(ValueError, match=r"max_text_chars must be a positive integer.*Received: max_text_chars=-1"):
        tfxfer.load_tfds_text("glue/sst2", data_dir=str(tmp_path), max_text_chars=-1)


@pytest.mark.parametrize("supervised_keys, expected", [
    (("review", "stars"), ("review", "stars")),  # named by the dataset: taken as they are
    (None, ("review", "sentiment")),  # else the only text feature and the only ClassLabel
    ({"inputs": "review"}, ("review", "sentiment")),  # not a pair of names: as if there were none
])
def test_default_feature_keys_are_the_supervised_ones_else_the_only_candidates(supervised_keys, expected):
    features = {"review": tfds.features.Text(), "sentiment": tfds.features.ClassLabel(names=["neg", "pos"]),
                "stars": tfds.features.Tensor(shape=(), dtype=np.int64)}
    info = SimpleNamespace(supervised_keys=supervised_keys, features=features)
    assert tfds_builders.default_feature_keys(info, text_tfds.is_text_feature) == expected
    two_texts = SimpleNamespace(supervised_keys=None, features={**features, "title": tfds.features.Text()})
    assert tfds_builders.default_feature_keys(two_texts, text_tfds.is_text_feature) == (None, "sentiment")


def test_tfds_finds_a_real_builders_files_without_a_download():
    # download_and_prepare starts here, before any network access: TFDS needs importlib_resources for it, which it
    # does not declare (setup.cfg installs it), so --tfds_name failed for any dataset on a fresh install.
    assert tfds.builder_cls("tf_flowers").code_path.name == "tf_flowers_dataset_builder.py"
