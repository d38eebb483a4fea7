"""Exact copies: found by content, reported, and never on both sides of a loader's split.

Images here are solid 8x8 PNGs whose green channel is a per-content id: a copy
is the same file's bytes under another name, so two examples read back with the
same (red, green) are copies, and a split that holds one out must hold out both.
"""

import io
import logging
import re

import numpy as np
import pytest
import tensorflow as tf
from _tfds_fake import fake_tfds, indexed_image
from _text_helpers import texts_and_labels
from PIL import Image

import tfxfer
from tfxfer.data import exact_copies, splits
from tfxfer.errors import ConfigError
from tfxfer.tasks import MISSING_LABEL

IMAGE_SIZE = (4, 4)


def _png(red: int, green: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (red, green, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def _colours(dataset) -> list[tuple[int, int]]:
    """(red, green) of every image of a batched dataset."""
    found = []
    for images, _ in dataset:
        means = tf.reduce_mean(images, axis=[1, 2]).numpy().round().astype(int)
        found += [(int(m[0]), int(m[1])) for m in means]
    return found


# --- the split ----------------------------------------------------------------


def test_copy_groups_are_numbered_in_order_of_first_appearance():
    group, first = exact_copies.copy_groups(["b", "a", "b", "c", "a"])

    assert group.tolist() == [0, 1, 0, 2, 1]
    assert first.tolist() == [0, 1, 3]


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_without_copies_the_split_is_the_split_without_keys(fraction):
    labels = np.random.default_rng(0).integers(0, 3, 57)
    for seed in range(5):
        plain = splits.split_per_class(labels, fraction, seed)
        keyed = splits.split_per_class(labels, fraction, seed, copies=[f"text {i}" for i in range(57)])
        np.testing.assert_array_equal(plain[0], keyed[0])
        np.testing.assert_array_equal(plain[1], keyed[1])


def test_copies_land_on_one_side_and_every_class_keeps_training_examples():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 60, 100)  # about 40 keys with more than one example
    labels = keys % 3  # copies share their label
    for seed in range(20):
        train, validation = splits.split_per_class(labels, 0.2, seed, copies=keys)

        assert sorted(np.concatenate([train, validation]).tolist()) == list(range(100))
        assert not set(keys[train]) & set(keys[validation])
        assert set(labels[train]) == {0, 1, 2}
        # Groups fill each class's quota (20 examples in all) without exceeding it.
        assert 15 <= len(validation) <= 20


def test_a_class_whose_groups_are_all_larger_than_its_quota_still_holds_one_out():
    # 5 texts a class, 4 copies each: a 10 % quota of 2 a class fits no group of 4.
    keys = np.repeat(np.arange(10), 4)
    labels = keys % 2

    train, validation = splits.split_per_class(labels, 0.1, seed=0, copies=keys)

    assert len(validation) == 8  # one whole group per class
    assert sorted(set(labels[validation])) == [0, 1]
    assert not set(keys[train]) & set(keys[validation])


def test_a_class_of_copies_of_one_example_stays_in_training():
    keys = np.array([7, 7, 7] + list(range(10)))
    labels = np.array([0, 0, 0] + [1] * 10)

    for seed in range(10):
        train, validation = splits.split_per_class(labels, 0.3, seed, copies=keys)
        assert {0, 1, 2} <= set(train.tolist())
        assert set(labels[validation]) == {1}


def test_a_class_held_only_by_a_copy_labelled_otherwise_keeps_it_in_training():
    # Example 1 (class 1, the only one) copies example 0 (class 0): the group counts as class 0.
    keys = np.array([0, 0] + list(range(1, 11)))
    labels = np.array([0, 1] + [0] * 10)
    for seed in range(20):
        train, validation = splits.split_per_class(labels, 0.5, seed, copies=keys)

        assert {0, 1} <= set(train.tolist())
        assert len(validation) and not set(keys[train]) & set(keys[validation])


def test_copies_held_out_by_every_draw_raise_a_clear_error():
    # One group per class: no class can hold anything out without losing its training examples.
    with pytest.raises(ConfigError, match=r"leaves no validation texts.*exact copies stay together.*remove copies"):
        splits.split_per_class([0, 0, 1, 1], 0.5, seed=0, what="texts", copies=["a", "a", "b", "b"])


def test_split_for_tasks_keeps_copies_together_and_every_class_in_training():
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 40, 80)
    colour, size = keys % 3, (keys // 3) % 2
    membership = np.concatenate([colour[:, None] == np.arange(3), size[:, None] == np.arange(2)], axis=1)
    for seed in range(10):
        train, validation = splits.split_for_tasks(membership, 0.25, seed, copies=keys)

        assert sorted(np.concatenate([train, validation]).tolist()) == list(range(80))
        assert not set(keys[train]) & set(keys[validation])
        assert membership[train].any(axis=0).all()


# --- the report ---------------------------------------------------------------


def test_fingerprints_are_equal_for_equal_bytes_only():
    first, again, other = exact_copies.fingerprint(tf.constant([b"abc", b"abc", b"abd"])).numpy()

    assert first == again and first != other


def test_report_copies_counts_copies_and_warns_of_different_labels(caplog):
    keys = ["ok", "ok", "ok", "refund", "refund", "late"]
    labels = np.array([0, 0, 0, 0, 1, 1])
    with caplog.at_level(logging.INFO, logger="absl"):
        counts = exact_copies.report_copies(keys, labels, keys, what="texts", source="tickets.csv")

    assert counts == {"copies": 3, "copy_groups": 2, "groups_with_different_labels": 1}
    assert "3 texts in tickets.csv are exact copies of another (2 groups of copies)" in caplog.text
    assert "'ok' = 'ok' = 'ok'" in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("1 groups of exact copies among the texts in tickets.csv carry different labels, "
                                  "e.g. 'refund' = 'refund'")


def test_multi_label_copies_differ_when_their_sets_of_classes_differ():
    keys = ["a", "a", "b", "b", "c", "c"]
    multi_hot = np.array([[1, 0], [1, 0], [1, 1], [1, 0], [0, 1], [0, 1]], np.float32)

    counts = exact_copies.report_copies(keys, multi_hot, keys, what="texts", source="s")

    assert counts["groups_with_different_labels"] == 1  # b: {0, 1} against {0}


def test_a_missing_task_label_differs_from_no_copy(caplog):
    # Per task: copies agree where labelled; group "c" disagrees on task y, beside a copy without y's label.
    keys = ["a", "a", "b", "b", "c", "c", "c"]
    labels = {"x": np.array([0, MISSING_LABEL, 1, 1, 0, 0, 0]),
              "y": np.array([MISSING_LABEL, 2, 1, MISSING_LABEL, MISSING_LABEL, 1, 2])}
    with caplog.at_level(logging.WARNING, logger="absl"):
        counts = exact_copies.report_copies(keys, labels, keys, what="texts", source="s")

    assert counts == {"copies": 4, "copy_groups": 3, "groups_with_different_labels": 1}
    assert "e.g. 'c' = 'c' = 'c'" in caplog.text and "'a'" not in caplog.text


def test_report_copies_warns_of_validation_copies_of_training_examples(caplog):
    train = np.array([11, 12, 13])
    with caplog.at_level(logging.WARNING, logger="absl"):
        counts = exact_copies.report_copies(train, np.zeros(3, int), ["a.jpg", "b.jpg", "c.jpg"], what="images",
                                            source="photos", validation_keys=np.array([13, 99]),
                                            validation_names=["val/x.jpg", "val/y.jpg"])

    assert counts["validation_copies_of_training"] == 1
    assert ("1 of the 2 validation images are exact copies of training images in photos, e.g. 'val/x.jpg' = "
            "'c.jpg'") in caplog.text


def test_report_copies_is_silent_without_copies(caplog):
    with caplog.at_level(logging.INFO, logger="absl"):
        counts = exact_copies.report_copies(np.arange(5), np.zeros(5, int), "row {}".format, what="images",
                                            source="s", validation_keys=np.arange(5, 8), validation_names=["v"] * 3)

    assert "exact copies" not in caplog.text
    assert counts == {"copies": 0, "copy_groups": 0, "groups_with_different_labels": 0,
                      "validation_copies_of_training": 0}


# --- the loaders --------------------------------------------------------------


def _photos_with_copies(root) -> None:
    """Classes a and b, 10 distinct photos each, and 3 copies of each of the first 4 of a class under new names."""
    for label, name in enumerate(("a", "b")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(10):
            contents = _png(40 + 80 * label, 10 * i)
            (folder / f"{i}.png").write_bytes(contents)
            for copy in range(3 if i < 4 else 0):
                (folder / f"{i}_copy{copy}.png").write_bytes(contents)


@pytest.mark.parametrize("cache", [True, False])
def test_image_folders_split_keeps_copies_on_one_side(tmp_path, cache, caplog):
    _photos_with_copies(tmp_path)
    for seed in range(4):
        with caplog.at_level(logging.INFO, logger="absl"):
            data = tfxfer.load_image_folders(tmp_path, image_size=IMAGE_SIZE, validation_split=0.25, seed=seed,
                                             cache=cache)
        train, validation = _colours(data.train), _colours(data.validation)

        assert len(train) + len(validation) == 44 == data.train_size + data.validation_size
        assert not set(train) & set(validation)
    assert "24 images in" in caplog.text and "(8 groups of copies)" in caplog.text
    assert data.summary()["exact_copies"] == {"copies": 24, "copy_groups": 8, "groups_with_different_labels": 0}


def test_image_folders_warn_of_copies_across_classes_and_in_val(tmp_path, caplog):
    for split, count in (("train", 4), ("val", 2)):
        for label, name in enumerate(("ants", "bees")):
            for i in range(count):
                (tmp_path / split / name).mkdir(parents=True, exist_ok=True)
                green = 10 * i + 100 * (split == "val")  # val/ photos differ from train/ ones
                (tmp_path / split / name / f"{i}.png").write_bytes(_png(40 + 80 * label, green))
    (tmp_path / "train" / "bees" / "ant.png").write_bytes((tmp_path / "train" / "ants" / "0.png").read_bytes())
    (tmp_path / "val" / "ants" / "9.png").write_bytes((tmp_path / "train" / "ants" / "1.png").read_bytes())

    with caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_image_folders(tmp_path, image_size=IMAGE_SIZE)

    assert (data.train_size, data.validation_size) == (9, 5)  # reported, not dropped
    assert data.summary()["exact_copies"] == {"copies": 1, "copy_groups": 1, "groups_with_different_labels": 1,
                                              "validation_copies_of_training": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "1 groups of exact copies among the images in" in warnings[0] and "carry different labels" in warnings[0]
    assert "ants/0.png' = '" in warnings[0] and "bees/ant.png'" in warnings[0]
    assert "1 of the 5 validation images are exact copies of training images in" in warnings[1]
    assert "val/ants/9.png' = '" in warnings[1] and "train/ants/1.png'" in warnings[1]


def test_image_csv_rows_of_one_file_stay_together(tmp_path, caplog):
    rows = ["image,kind"]
    for i in range(12):
        (tmp_path / f"{i}.png").write_bytes(_png(40 + 80 * (i % 2), 10 * i))
        rows += [f"{i}.png,{'ab'[i % 2]}"] * (3 if i < 4 else 1)  # the first 4 listed three times
    (tmp_path / "photos.csv").write_text("\n".join(rows) + "\n")

    for seed in range(4):
        with caplog.at_level(logging.INFO, logger="absl"):
            data = tfxfer.load_image_csv(tmp_path / "photos.csv", label_columns=["kind"], image_size=IMAGE_SIZE,
                                         validation_split=0.25, seed=seed)
        train, validation = _colours(data.train), _colours(data.validation)
        assert len(train) + len(validation) == 20
        assert validation and not set(train) & set(validation)
    assert data.exact_copies == {"copies": 8, "copy_groups": 4, "groups_with_different_labels": 0}
    assert "8 images in" in caplog.text and re.search(r"0\.png' = '[^']*/0\.png' = '[^']*/0\.png'", caplog.text)


def test_tfds_held_out_share_keeps_copies_together(tmp_path):
    values = list(range(20)) + [0, 1, 2, 3, 0, 1, 2, 3]  # 8 copies of the first 4 (same pixels, same label)
    with fake_tfds(tmp_path, "tf_flowers", {"train": values}, indexed_image):
        for seed in range(4):
            data = tfxfer.load_tfds_images("tf_flowers", image_size=IMAGE_SIZE, data_dir=str(tmp_path),
                                           validation_split=0.25, seed=seed)
            train = {red for red, _ in _colours(data.train)}
            validation = {red for red, _ in _colours(data.validation)}
            assert data.train_size + data.validation_size == 28
            assert validation and not train & validation
    assert data.exact_copies == {"copies": 8, "copy_groups": 4, "groups_with_different_labels": 0}


def test_tfds_own_validation_split_is_checked_for_copies_of_training_images(tmp_path, caplog):
    with fake_tfds(tmp_path, "beans", {"train": range(6), "validation": [10, 4, 11]}, indexed_image):
        with caplog.at_level(logging.WARNING, logger="absl"):
            data = tfxfer.load_tfds_images("beans", image_size=IMAGE_SIZE, data_dir=str(tmp_path))

    assert (data.train_size, data.validation_size) == (6, 3)  # reported, not dropped
    assert data.exact_copies == {"copies": 0, "copy_groups": 0, "groups_with_different_labels": 0,
                                 "validation_copies_of_training": 1}
    assert ("1 of the 3 validation images are exact copies of training images in beans, e.g. 'validation[1]' = "
            "'train[4]'") in caplog.text


def test_text_split_keeps_copies_together_and_warns_of_different_labels(tmp_path, caplog):
    rows = ["text,label"] + [f"ticket {i},{'ab'[i % 2]}" for i in range(30)]
    rows += ["ticket 0,a", "ticket 0,a", "ticket 2,a", "ticket 3,a"]  # copies; ticket 3 is b above
    (tmp_path / "tickets.csv").write_text("\n".join(rows) + "\n")

    for seed in range(4):
        with caplog.at_level(logging.INFO, logger="absl"):
            data = tfxfer.load_text_data(tmp_path / "tickets.csv", label_column="label", validation_split=0.2,
                                         seed=seed)
        train, validation = texts_and_labels(data.train)[0], texts_and_labels(data.validation)[0]
        assert len(train) + len(validation) == 34
        assert validation and not set(train) & set(validation)
    assert data.summary()["exact_copies"] == {"copies": 4, "copy_groups": 3, "groups_with_different_labels": 1}
    assert "4 texts in" in caplog.text and "(3 groups of copies)" in caplog.text
    assert "1 groups of exact copies among the texts" in caplog.text and "'ticket 3' = 'ticket 3'" in caplog.text


def test_multi_task_copies_differ_only_where_both_are_labelled(tmp_path, caplog):
    rows = ["text,topic,urgency"] + [f"ticket {i},{'ab'[i % 2]},{('low', 'high')[i % 3 == 0]}" for i in range(20)]
    rows += ["ticket 0,a,", "ticket 2,a,high"]  # a copy without an urgency; one labelled high where it was low
    (tmp_path / "tickets.csv").write_text("\n".join(rows) + "\n")

    with caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_text_data(tmp_path / "tickets.csv", label_columns=["topic", "urgency"],
                                     validation_split=0.2)

    assert data.summary()["exact_copies"] == {"copies": 2, "copy_groups": 2, "groups_with_different_labels": 1}
    assert "e.g. 'ticket 2' = 'ticket 2'" in caplog.text and "'ticket 0'" not in caplog.text
