"""Tests for tfxfer.data: image folders and TFDS loaders, on tiny generated images.

Folder images are solid-colour 8x8 PNGs whose red channel encodes the class and
green channel a per-file id, so every example read back can be traced to its file.
TFDS tests fake the data with `_tfds_fake.fake_tfds` (no network): each fake
example's pixels hold its absolute index in the split, which makes the split
the loader takes observable.
"""

import functools
import io
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from _tfds_fake import fake_tfds, indexed_image
from PIL import Image

from tfxfer.data import ImageDatasets, load_image_csv, load_image_folders, load_tfds_images
from tfxfer.errors import ConfigError
from tfxfer.evaluation import labelled_data

IMAGE_SIZE = (6, 5)
HYMENOPTERA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hymenoptera"


# --- helpers ------------------------------------------------------------------


def _red(label: int) -> int:
    return 40 + 80 * label


def _write_image(path: Path, rgb, image_format: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), tuple(rgb)).save(path, format=image_format)
    return path


def _make_classes(root: Path, counts: dict[str, int]) -> None:
    """Writes `counts[name]` PNGs per class; classes are labelled in sorted order."""
    for label, name in enumerate(sorted(counts)):
        for i in range(counts[name]):
            _write_image(root / name / f"img_{i:02d}.png", (_red(label), 8 * i, 0))


def _noise_jpeg() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG")
    return buffer.getvalue()


def _examples(dataset: tf.data.Dataset) -> list[tuple[int, int, int]]:
    """(label, red, green) of every example, in dataset order."""
    found = []
    for images, labels in dataset:
        means = tf.reduce_mean(images, axis=[1, 2]).numpy().round().astype(int)
        found += [(int(y), int(m[0]), int(m[1])) for y, m in zip(labels.numpy(), means)]
    return found


def _check_batches(dataset: tf.data.Dataset, batch_size: int) -> None:
    images, labels = next(iter(dataset))
    assert images.dtype == tf.float32 and labels.dtype == tf.int32
    assert images.shape[1:] == (*IMAGE_SIZE, 3)
    assert 0 < images.shape[0] <= batch_size and labels.shape == images.shape[:1]
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0


# --- image folders: layouts ---------------------------------------------------


def test_train_and_val_folders(tmp_path):
    _make_classes(tmp_path / "train", {"cat": 3, "dog": 2, "fox": 4})
    _make_classes(tmp_path / "val", {"cat": 1, "dog": 2, "fox": 1})

    data = load_image_folders(tmp_path, image_size=IMAGE_SIZE, batch_size=4)

    assert isinstance(data, ImageDatasets)
    assert data.class_names == ["cat", "dog", "fox"]
    assert (data.train_size, data.validation_size) == (9, 4)
    assert data.train_class_counts == [3, 2, 4]
    assert data.skipped_files == []
    assert int(data.train.cardinality()) == 3  # ceil(9 / 4), known up front.
    assert int(data.validation.cardinality()) == 1
    _check_batches(data.train, batch_size=4)
    train = _examples(data.train)
    assert len(train) == 9 and all(red == _red(label) for label, red, _ in train)
    assert sorted(label for label, _, _ in _examples(data.validation)) == [0, 1, 1, 2]


def test_validation_folder_may_be_named_validation(tmp_path):
    _make_classes(tmp_path / "train", {"a": 2, "b": 2})
    _make_classes(tmp_path / "validation", {"a": 1, "b": 1})

    data = load_image_folders(tmp_path, image_size=IMAGE_SIZE)

    assert data.validation_size == 2 and data.validation is not None


def test_class_folders_split_is_stratified_seeded_and_disjoint(tmp_path):
    _make_classes(tmp_path, {"a": 10, "b": 5})

    def split(seed):
        data = load_image_folders(
            tmp_path, image_size=IMAGE_SIZE, validation_split=0.2, seed=seed, batch_size=4
        )
        return data, set(_examples(data.train)), set(_examples(data.validation))

    data, train, validation = split(seed=3)
    _, train_again, validation_again = split(seed=3)
    _, _, validation_other = split(seed=4)

    assert (data.train_size, data.validation_size) == (12, 3)
    assert data.train_class_counts == [8, 4]  # 20% of each class held out.
    assert sorted(label for label, _, _ in validation) == [0, 0, 1]
    assert not train & validation and len(train | validation) == 15
    assert (train_again, validation_again) == (train, validation)
    assert validation_other != validation


def test_class_folders_without_split_train_only_with_warning(tmp_path, caplog):
    _make_classes(tmp_path, {"a": 2, "b": 3})

    with caplog.at_level(logging.WARNING):
        data = load_image_folders(tmp_path, image_size=IMAGE_SIZE)

    assert data.validation is None and data.validation_size == 0
    assert data.train_size == 5
    assert "No validation data" in caplog.text


def test_files_beside_the_class_folders_are_named_as_not_read(tmp_path, caplog):
    _make_classes(tmp_path / "train", {"a": 2, "b": 2})
    _make_classes(tmp_path / "val", {"a": 1, "b": 1})
    _write_image(tmp_path / "train" / "stray.png", (0, 0, 0))  # one folder too high: in no class
    (tmp_path / "README.txt").write_text("about the photos")  # beside train/ and val/: not a class root
    with caplog.at_level(logging.WARNING):
        data = load_image_folders(tmp_path, image_size=IMAGE_SIZE)
    assert (data.train_size, data.validation_size) == (4, 2)
    assert (f"Not read: 1 file in {str(tmp_path / 'train')!r} beside the class folders, in no class: "
            "['stray.png']. Move each into the folder of its class to use it.") in caplog.text
    assert caplog.text.count("Not read") == 1


def test_a_test_folder_beside_train_is_left_for_evaluation_and_evaluation_reads_it(tmp_path, caplog):
    _make_classes(tmp_path / "train", {"a": 3, "b": 3})
    _make_classes(tmp_path / "test", {"a": 1, "b": 2})
    with caplog.at_level(logging.WARNING):
        data = load_image_folders(tmp_path, image_size=IMAGE_SIZE)
    assert data.train_size == 6 and data.validation is None
    assert "Its test/ folder is not read: training leaves it for evaluation (rename it val/" in caplog.text
    evaluated = labelled_data.read_image_folders(str(tmp_path))
    assert evaluated.source == str(tmp_path / "test") and evaluated.labels == ["a", "b", "b"]
    assert labelled_data.read_image_folders(str(tmp_path), part="training").labels == ["a"] * 3 + ["b"] * 3


def test_evaluation_reads_the_split_folders_whatever_their_spelling(tmp_path, caplog):
    _make_classes(tmp_path / "roboflow" / "Train", {"a": 3, "b": 3})
    _make_classes(tmp_path / "roboflow" / "Valid", {"a": 2, "b": 1})
    _make_classes(tmp_path / "roboflow" / "TEST", {"a": 1, "b": 1})
    evaluated = labelled_data.read_image_folders(str(tmp_path / "roboflow"))
    assert evaluated.source == str(tmp_path / "roboflow" / "Valid") and evaluated.labels == ["a", "a", "b"]
    _make_classes(tmp_path / "kaggle" / "TRAIN", {"a": 3, "b": 3})
    _make_classes(tmp_path / "kaggle" / "TEST", {"a": 1, "b": 2})
    with caplog.at_level(logging.WARNING):
        assert load_image_folders(tmp_path / "kaggle", image_size=IMAGE_SIZE).class_names == ["a", "b"]
    assert "Its TEST/ folder is not read: training leaves it for evaluation" in caplog.text
    evaluated = labelled_data.read_image_folders(str(tmp_path / "kaggle"))
    assert evaluated.source == str(tmp_path / "kaggle" / "TEST") and evaluated.labels == ["a", "b", "b"]
    _make_classes(tmp_path / "alone" / "Training", {"a": 1, "b": 1})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="absl"):
        assert labelled_data.read_image_folders(str(tmp_path / "alone")).labels == ["a", "b"]
        labelled_data.read_image_folders(str(tmp_path / "kaggle"))
    assert (f"holds Training/ but no val/, valid/ or validation/ folder: evaluating on the training data "
            f"{tmp_path / 'alone' / 'Training'}") in caplog.text
    assert f"holds TRAIN/ and TEST/: evaluating on {tmp_path / 'kaggle' / 'TEST'}" in caplog.text


def test_train_folder_without_val_folder_can_be_split(tmp_path):
    _make_classes(tmp_path / "train", {"a": 5, "b": 5})

    data = load_image_folders(tmp_path, image_size=IMAGE_SIZE, validation_split=0.2)

    assert (data.train_size, data.validation_size) == (8, 2)


# --- image folders: file handling ---------------------------------------------


def test_undecodable_files_are_skipped_and_listed(tmp_path, caplog):
    _make_classes(tmp_path, {"a": 3, "b": 3})
    text = tmp_path / "a" / "text.jpg"
    text.write_text("this is not a JPEG")
    empty = tmp_path / "b" / "empty.png"
    empty.write_bytes(b"")
    _write_image(tmp_path / "b" / "good.jpg", (_red(1), 0, 0), "JPEG")
    truncated = tmp_path / "b" / "truncated.jpg"
    truncated.write_bytes(_noise_jpeg()[:-300])  # Cut inside the compressed scan data.

    with caplog.at_level(logging.WARNING):
        data = load_image_folders(tmp_path, image_size=IMAGE_SIZE, validation_split=0.3)

    assert data.skipped_files == sorted(str(p) for p in (text, empty, truncated))
    assert data.train_size + data.validation_size == 7
    assert sum(data.train_class_counts) == data.train_size
    assert "Skipping 3 files" in caplog.text
    # Whole epochs run: nothing undecodable is left in either pipeline.
    assert len(_examples(data.train)) == data.train_size
    assert len(_examples(data.validation)) == data.validation_size


def test_non_image_files_are_ignored_and_extensions_are_case_insensitive(tmp_path):
    _make_classes(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "README.txt").write_text("notes")
    (tmp_path / "b" / "labels.csv").write_text("x,y")
    (tmp_path / "b" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "b" / "._img_00.png").write_bytes(b"\0\5\26\7")  # A macOS resource fork.
    (tmp_path / "notes.md").write_text("not in a class folder")
    _write_image(tmp_path / ".ipynb_checkpoints" / "x.png", (0, 0, 0))  # Not a class.
    _write_image(tmp_path / "a" / "nested" / "upper.JPEG", (_red(0), 0, 0), "JPEG")
    _write_image(tmp_path / "b" / "photo.BmP", (_red(1), 0, 0), "BMP")
    _write_image(tmp_path / "b" / "anim.GIF", (_red(1), 0, 0), "GIF")

    data = load_image_folders(tmp_path, image_size=IMAGE_SIZE)

    assert data.class_names == ["a", "b"]
    assert data.train_class_counts == [3, 4]
    assert data.skipped_files == []


def test_training_order_changes_every_epoch_validation_order_does_not(tmp_path):
    _make_classes(tmp_path, {"a": 12, "b": 12})

    data = load_image_folders(
        tmp_path, image_size=IMAGE_SIZE, validation_split=0.25, batch_size=32
    )

    first, second = _examples(data.train), _examples(data.train)
    assert sorted(first) == sorted(second) and first != second
    assert _examples(data.validation) == _examples(data.validation)


def test_file_cache_is_written_once_while_loading_and_replayed(tmp_path):
    # One cache file for both splits, written by the decoding pass: the split
    # is made after decoding, on the files that decode.
    _make_classes(tmp_path / "images", {"a": 3, "b": 3})
    prefix = tmp_path / "cache" / "flowers"

    data = load_image_folders(
        tmp_path / "images", image_size=IMAGE_SIZE, validation_split=0.4, cache=str(prefix)
    )

    written = os.listdir(tmp_path / "cache")
    assert any(name.startswith("flowers_decoded_") for name in written), written
    assert data.decoded_cache == "files"
    first = sorted(_examples(data.train))
    assert sorted(_examples(data.train)) == first
    assert len(first) + len(_examples(data.validation)) == 6


@pytest.mark.shared
@pytest.mark.skipif(not HYMENOPTERA.is_dir(), reason="shared hymenoptera data not present")
def test_hymenoptera_gif_is_decodable_not_skipped():
    data = load_image_folders(HYMENOPTERA, image_size=IMAGE_SIZE)

    assert data.class_names == ["ants", "bees"]
    assert data.skipped_files == []
    assert data.train_size > 0 and data.validation_size > 0


# --- image folders: errors ----------------------------------------------------


def test_missing_data_dir_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"existing folder.*Received: data_dir="):
        load_image_folders(tmp_path / "nope", image_size=IMAGE_SIZE)


def test_validation_split_with_val_folder_raises(tmp_path):
    _make_classes(tmp_path / "train", {"a": 2})
    _make_classes(tmp_path / "val", {"a": 1})

    with pytest.raises(ValueError, match=r"Drop `validation_split`.*validation_split=0.2"):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE, validation_split=0.2)


def test_both_val_and_validation_folders_raise(tmp_path):
    for split in ("train", "val", "validation"):
        _make_classes(tmp_path / split, {"a": 1})

    with pytest.raises(ValueError, match="both val/ and validation/"):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_different_train_and_val_classes_raise(tmp_path):
    _make_classes(tmp_path / "train", {"a": 1, "b": 1, "fox": 1})
    _make_classes(tmp_path / "val", {"a": 1, "b": 1, "wolf": 1})

    expected = r"Only in .*train': \['fox'\]; only in .*val': \['wolf'\]"
    with pytest.raises(ValueError, match=expected):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_empty_class_folder_raises_with_its_path(tmp_path):
    _make_classes(tmp_path, {"a": 2})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("no images here")

    expected = re.escape(f"Class folder '{tmp_path / 'b'}' holds no images")
    with pytest.raises(ValueError, match=expected):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_folder_without_class_folders_raises(tmp_path):
    _write_image(tmp_path / "loose.png", (0, 0, 0))

    with pytest.raises(ValueError, match="Found no class sub-folders"):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_one_class_folder_is_refused_naming_the_fix(tmp_path):
    _make_classes(tmp_path, {"ants": 3})
    with pytest.raises(ConfigError, match=r"at least 2 classes, one folder each; '.*' has one class folder\. Add a "
                                          r"folder of images for every other class .*Received: class folders \['ants'\]"):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_class_with_only_undecodable_files_raises(tmp_path):
    _make_classes(tmp_path, {"a": 2})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "broken.jpg").write_text("not an image")

    expected = r"No decodable images left in class folders \[.*/b'\]"
    with pytest.raises(ValueError, match=expected):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_split_too_small_for_any_validation_raises(tmp_path):
    _make_classes(tmp_path, {"a": 2, "b": 2})

    with pytest.raises(ValueError, match="rounds to no validation images"):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE, validation_split=0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"validation_split": 1.5}, r"strictly between 0 and 1.*validation_split=1.5"),
        ({"image_size": (8,)}, r"\(height, width\).*image_size=\(8,\)"),
        ({"batch_size": 0}, r"positive integer.*batch_size=0"),
        ({"cache": ""}, r"cache file path prefix.*cache=''"),
        ({"shuffle_buffer": -1}, r"positive number.*shuffle_buffer=-1"),
        ({"cache_memory_mb": 0}, r"positive whole number of MB.*e\.g\. 1024.*cache_memory_mb=0"),
        ({"cache_memory_mb": 0.5}, r"positive whole number of MB.*cache_memory_mb=0\.5"),
        ({"spill_dir": ""}, r"folder path.*spill_dir=''"),
    ],
)
def test_invalid_arguments_raise(tmp_path, kwargs, match):
    _make_classes(tmp_path, {"a": 2})
    kwargs = {"image_size": IMAGE_SIZE, **kwargs}

    with pytest.raises(ValueError, match=match):
        load_image_folders(tmp_path, **kwargs)


# --- image CSV: errors ---------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n\r\n"], ids=["zero_bytes", "blank_lines"])
def test_an_empty_image_csv_says_it_is_empty_and_what_it_needs(tmp_path, content):
    path = tmp_path / "leaves.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"leaves\.csv is empty: it needs a header row naming its columns, "
                                          r"\['file', 'species', 'Health'\] separated by ',', then one row per image "
                                          r"below it\. Received: an empty file \(or only blank lines\)"):
        load_image_csv(str(path), image_column="file", label_columns=["species", "Health"], image_size=IMAGE_SIZE)


# --- TFDS ---------------------------------------------------------------------


def _mock_tfds(data_dir: Path, name: str, split_sizes: dict[str, int]):
    """Fakes a prepared TFDS dataset with `split_sizes` examples per split.

    Example `i` of a split is a solid image of value `i` with label `i % classes`,
    so tests can tell which examples a loader's split really holds.
    """
    return fake_tfds(data_dir, name, {split: range(n) for split, n in split_sizes.items()}, indexed_image)


def _indices(dataset: tf.data.Dataset) -> list[int]:
    found = []
    for images, _ in dataset:
        found += tf.reduce_mean(images, axis=[1, 2, 3]).numpy().round().astype(int).tolist()
    return found


def test_tfds_train_only_dataset_holds_out_a_seeded_share_per_class(tmp_path):
    with _mock_tfds(tmp_path, "tf_flowers", {"train": 20}):
        load = functools.partial(
            load_tfds_images, "tf_flowers", image_size=IMAGE_SIZE, data_dir=str(tmp_path)
        )
        data, same, other = load(batch_size=8, seed=5), load(seed=5), load(seed=6)

        assert data.class_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
        assert (data.train_size, data.validation_size) == (18, 2)  # Default 10%.
        assert data.skipped_files == []
        assert int(data.train.cardinality()) == 3
        _check_batches(data.train, batch_size=8)
        train, validation = _indices(data.train), _indices(data.validation)
        assert sorted(train + validation) == list(range(20))
        expected_counts = np.bincount(np.array(train) % 5, minlength=5)
        assert data.train_class_counts == expected_counts.tolist()
        assert _indices(same.validation) == validation
        assert _indices(other.validation) != validation
        # 0.4 of each class's 4 examples: the 2 go to two classes drawn from the seed.
        assert len({index % 5 for index in validation}) == 2


def test_tfds_uses_builder_validation_split(tmp_path):
    with _mock_tfds(tmp_path, "beans", {"train": 6, "validation": 3, "test": 4}):
        data = load_tfds_images("beans", image_size=IMAGE_SIZE, data_dir=str(tmp_path))

        assert data.class_names == ["angular_leaf_spot", "bean_rust", "healthy"]
        assert (data.train_size, data.validation_size) == (6, 3)
        assert data.train_class_counts == [2, 2, 2]
        assert sorted(_indices(data.validation)) == [0, 1, 2]


def test_tfds_explicit_validation_split_slices_train(tmp_path):
    with _mock_tfds(tmp_path, "beans", {"train": 10, "validation": 3}):
        data = load_tfds_images(
            "beans", image_size=IMAGE_SIZE, data_dir=str(tmp_path), validation_split=0.35
        )

        assert (data.train_size, data.validation_size) == (6, 4)  # 3.5 rounds up.


def test_tfds_explicit_validation_split_holds_out_the_same_share_of_every_class(tmp_path):
    # Labels are `index % 3`: 10 examples per class; 20% of each is held out, as for folders.
    with _mock_tfds(tmp_path, "beans", {"train": 30, "validation": 3}):
        data = load_tfds_images("beans", image_size=IMAGE_SIZE, data_dir=str(tmp_path), validation_split=0.2, seed=1)
        validation = _indices(data.validation)

    assert data.train_class_counts == [8, 8, 8]
    assert np.bincount(np.array(validation) % 3).tolist() == [2, 2, 2]
    assert sorted(_indices(data.train) + validation) == list(range(30))


def test_tfds_validation_split_0_trains_on_all_of_train_without_labelled_validation_or_test(tmp_path, caplog):
    with _mock_tfds(tmp_path, "tf_flowers", {"train": 20}), caplog.at_level(logging.INFO, logger="absl"):
        data = load_tfds_images("tf_flowers", image_size=IMAGE_SIZE, data_dir=str(tmp_path), validation_split=0)
        train = _indices(data.train)

    assert (data.train_size, data.validation_size, data.validation) == (20, 0, None)
    assert data.train_class_counts == [4, 4, 4, 4, 4] and sorted(train) == list(range(20))
    assert "validation_split=0 holds out none of train: training on all of it, without validation" in caplog.text
    assert ("No validation data: \"TFDS 'tf_flowers' (train='train', validation=none)\" has no labelled validation "
            "or test split") in caplog.text
    assert "holding out" not in caplog.text


def test_tfds_validation_split_0_still_validates_on_the_builders_own_split(tmp_path):
    with _mock_tfds(tmp_path, "beans", {"train": 6, "validation": 3}):
        data = load_tfds_images("beans", image_size=IMAGE_SIZE, data_dir=str(tmp_path), validation_split=0.0)

        assert (data.train_size, data.validation_size) == (6, 3)
        assert sorted(_indices(data.train)) == list(range(6)) and sorted(_indices(data.validation)) == [0, 1, 2]


def test_tfds_grayscale_falls_back_to_test_split_and_becomes_rgb(tmp_path, caplog):
    with _mock_tfds(tmp_path, "mnist", {"train": 10, "test": 4}):
        with caplog.at_level(logging.WARNING):
            data = load_tfds_images("mnist", image_size=IMAGE_SIZE, data_dir=str(tmp_path))

        assert len(data.class_names) == 10
        assert (data.train_size, data.validation_size) == (10, 4)
        assert "validating on its test split" in caplog.text
        _check_batches(data.validation, batch_size=32)
        images, _ = next(iter(data.train))
        # Gray to RGB copies the channel: the three channels are equal.
        assert float(tf.reduce_max(tf.abs(images[..., 0] - images[..., 2]))) == 0.0


def test_tfds_unknown_name_raises(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown TFDS dataset 'no_such_flowers'"):
        load_tfds_images("no_such_flowers", image_size=IMAGE_SIZE, data_dir=str(tmp_path))


def test_tfds_not_prepared_offline_explains_what_to_do(tmp_path):
    with pytest.raises(RuntimeError) as raised:
        load_tfds_images(
            "tf_flowers", image_size=IMAGE_SIZE, data_dir=str(tmp_path), download=False
        )

    message = str(raised.value)
    assert "'tf_flowers' is not prepared" in message
    assert f"data_dir={str(tmp_path)!r}" in message
    assert "tfds build tf_flowers --data_dir=DIR" in message
    assert "class sub-folders" in message


def test_tfds_download_failure_explains_what_to_do(tmp_path, monkeypatch, caplog):
    def fail(self, *args, **kwargs):
        raise ConnectionError("Temporary failure in name resolution")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)

    expected = r"(?s)not prepared.*tfds build.*Temporary failure in name resolution"
    with pytest.raises(RuntimeError, match=expected), caplog.at_level(logging.INFO, logger="absl"):
        load_tfds_images("tf_flowers", image_size=IMAGE_SIZE, data_dir=str(tmp_path))
    # Said before the download starts, which offline retries for minutes before it fails.
    assert ("TFDS dataset 'tf_flowers' is not prepared in" in caplog.text
            and "downloading and preparing it, which needs internet access" in caplog.text)
