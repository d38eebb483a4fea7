"""Tests for what every loader shares: the split, the argument check, the result type,
the train/ + val/ layout rule."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tfxfer
from tfxfer.data import (
    Datasets,
    ImageDatasets,
    TextDatasets,
    check_loader_args,
    split_per_class,
)
from tfxfer.errors import ConfigError


def _validation_per_class(labels, validation):
    return np.bincount(np.asarray(labels)[validation], minlength=max(labels) + 1).tolist()


# --- split_per_class ------------------------------------------------------------


def test_every_index_is_in_exactly_one_split_each_sorted():
    labels = np.random.default_rng(0).integers(0, 4, 101)
    train, validation = split_per_class(labels, 0.3, seed=7)
    assert sorted(np.concatenate([train, validation]).tolist()) == list(range(101))
    assert train.tolist() == sorted(train.tolist()) and validation.tolist() == sorted(validation.tolist())


def test_each_class_gives_its_share():
    labels = [0] * 50 + [1] * 30 + [2] * 20
    _, validation = split_per_class(labels, 0.2, seed=0)
    assert _validation_per_class(labels, validation) == [10, 6, 4]


def test_same_seed_same_split_other_seed_other_split():
    labels = [0, 1] * 20
    first, again, other = (split_per_class(labels, 0.25, seed=s)[1].tolist() for s in (3, 3, 4))
    assert first == again != other


def test_total_rounds_half_up_and_leftovers_go_to_the_largest_remainders():
    # Shares 1.4, 1.05, 1.05 (3.5 in all): whole parts 1 each, the 4th to class 0.
    labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    _, validation = split_per_class(labels, 0.35, seed=0)
    assert _validation_per_class(labels, validation) == [2, 1, 1]


def test_equal_remainders_are_broken_by_the_seed():
    labels = np.arange(20) % 5  # 0.4 of each class: 2 of the 5 classes give one.
    picked = {tuple(np.flatnonzero(_validation_per_class(labels, split_per_class(labels, 0.1, s)[1])))
              for s in range(10)}
    assert all(len(classes) == 2 for classes in picked) and len(picked) > 1


def test_tiny_classes_keep_a_training_example():
    labels = [0, 1, 1, 2, 2, 2, 2]  # A single example never goes to validation.
    train, validation = split_per_class(labels, 0.9, seed=0)
    assert _validation_per_class(labels, validation) == [0, 1, 3]
    assert sorted(set(np.asarray(labels)[train].tolist())) == [0, 1, 2]


def test_labels_need_not_be_contiguous_or_sorted():
    labels = [9, 4, 9, 4, 9, 4, 9, 4, 9, 4]
    _, validation = split_per_class(labels, 0.4, seed=0)
    assert sorted(np.asarray(labels)[validation].tolist()) == [4, 4, 9, 9]


def test_a_split_holding_out_nothing_is_an_error_naming_the_fix():
    with pytest.raises(ConfigError, match=r"validation_split=0.1 of 4 texts in 2 classes rounds to no "
                                          r"validation texts.*validation_split=None"):
        split_per_class([0, 0, 1, 1], 0.1, seed=0, what="texts")


# --- check_loader_args ----------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, r"batch_size must be a positive integer. Received: batch_size=0"),
    ({"validation_split": 1.0}, r"validation_split must be None or a fraction strictly between 0 and 1"),
    ({"validation_split": True}, r"Received: validation_split=True"),
    ({"image_size": (8, 0)}, r"\(height, width\).*image_size=\(8, 0\)"),
    ({"image_size": None}, r"image_size=None"),
    ({"cache": None}, r"cache file path prefix.*cache=None"),
    ({"shuffle_buffer": 0}, r"shuffle_buffer=0"),
    ({"max_text_chars": True}, r"max_text_chars must be a positive integer.*max_text_chars=True"),
])
def test_check_loader_args_names_the_argument_and_value(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        check_loader_args(**{"batch_size": 8, "validation_split": 0.2, **kwargs})


def test_check_loader_args_checks_only_what_it_is_given():
    check_loader_args(batch_size=1, validation_split=None)
    check_loader_args(batch_size=1, validation_split=0.5, image_size=(2, 3), cache="c", shuffle_buffer=None)
    check_loader_args(batch_size=1, validation_split=0.5, max_text_chars=10)


# --- one result type ------------------------------------------------------------


def test_image_and_text_datasets_share_the_base_fields_and_summary():
    shared = [field.name for field in dataclasses.fields(Datasets)]
    assert shared == ["train", "validation", "class_names", "train_size", "validation_size", "train_class_counts",
                      "exact_copies"]
    for cls in (ImageDatasets, TextDatasets):
        assert issubclass(cls, Datasets) and [f.name for f in dataclasses.fields(cls)][:len(shared)] == shared
    assert tfxfer.ImageDatasets is ImageDatasets and tfxfer.TextDatasets is TextDatasets
    values = dict(train=None, validation=None, class_names=["a", "b"], train_size=3, validation_size=1,
                  train_class_counts=[2, 1])
    image = ImageDatasets(**values, skipped_files=["x.jpg"], decoded_cache="files").summary()
    text = TextDatasets(**values, skipped={"empty": 0}, source_format="csv").summary()
    base = Datasets(**values).summary()
    assert "exact_copies" not in base  # unless a loader looked
    assert image == {**base, "skipped_files": ["x.jpg"], "decoded_cache": "files"}
    copies = {"copies": 1, "copy_groups": 1, "groups_with_different_labels": 0}
    assert Datasets(**values, exact_copies=copies).summary() == {**base, "exact_copies": copies}
    assert {key: text[key] for key in base} == base


# --- the train/ + val/ + validation/ rule -----------------------------------------


def _both_validation_folders(root: Path, write):
    for split in ("train", "val", "validation"):
        for name in ("a", "b"):
            write(root / split / name)
    return root


def _png(folder: Path):
    folder.mkdir(parents=True)
    Image.new("RGB", (4, 4), (9, 9, 9)).save(folder / "1.png")


def _txt(folder: Path):
    folder.mkdir(parents=True)
    (folder / "1.txt").write_text(f"a text of {folder.name}")


@pytest.mark.parametrize("load", [
    lambda root: tfxfer.load_image_folders(root / "images", image_size=(4, 4)),
    lambda root: tfxfer.load_text_data(str(root / "texts")),
], ids=["images", "texts"])
def test_both_val_and_validation_folders_are_an_error_for_images_and_texts(tmp_path, load):
    _both_validation_folders(tmp_path / "images", _png)
    _both_validation_folders(tmp_path / "texts", _txt)
    with pytest.raises(ConfigError, match=r"has both val/ and validation/ folders; keep only one.*merge them"):
        load(tmp_path)


def _split_layout(root: Path, splits: dict[str, int], write):
    """`root/<split>/<class>/` for each split, with `splits[split]` files per class (classes a and b)."""
    for split, count in splits.items():
        for name in ("a", "b"):
            for i in range(count):
                write(root / split / name / str(i))
    return root


def _png_file(stem: Path):
    stem.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (40 * len(stem.parts[-3]) % 256, 9 * int(stem.name), ord(stem.parent.name))).save(
        f"{stem}.png")


def _txt_file(stem: Path):
    stem.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}.txt").write_text(f"text {stem.name} of {stem.parent.name} in {stem.parts[-3]}")


_LOADERS = {
    "images": (_png_file, lambda root, **kwargs: tfxfer.load_image_folders(root, image_size=(4, 4), **kwargs)),
    "texts": (_txt_file, lambda root, **kwargs: tfxfer.load_text_data(str(root), **kwargs)),
}


@pytest.mark.parametrize("kind", sorted(_LOADERS))
@pytest.mark.parametrize("train,validation", [("Train", "Val"), ("training", "validation"), ("train", "valid"),
                                              ("TRAIN", "VALID")])
def test_split_folders_are_matched_in_any_case_and_common_spellings_never_become_classes(
        tmp_path, kind, train, validation):
    write, load = _LOADERS[kind]
    root = _split_layout(tmp_path / kind, {train: 3, validation: 2}, write)
    data = load(root)
    assert data.class_names == ["a", "b"]
    assert (data.train_size, data.validation_size) == (6, 4)
    # The folder is the validation data: a validation_split beside it is refused, not silently ignored.
    with pytest.raises(ConfigError, match=r"already has a validation folder \('.*" + validation + "'\)"):
        load(root, validation_split=0.3)


@pytest.mark.parametrize("kind", sorted(_LOADERS))
def test_a_test_folder_in_capitals_is_not_a_class_and_the_warning_names_the_validation_spellings(
        tmp_path, kind, caplog):
    write, load = _LOADERS[kind]
    root = _split_layout(tmp_path / kind, {"TRAIN": 3, "TEST": 1}, write)
    with caplog.at_level("WARNING", logger="absl"):
        data = load(root)
    assert data.class_names == ["a", "b"] and (data.train_size, data.validation) == (6, None)
    assert (f"No validation data: {str(root)!r} has no val/, valid/ or validation/ folder (any case), and none of "
            "it is held out") in caplog.text


@pytest.mark.parametrize("kind", sorted(_LOADERS))
@pytest.mark.parametrize("splits,message", [
    (("train", "val", "valid"), r"has both val/ and valid/ folders; keep only one so it is clear which holds the "
                                r"validation data.*Received: \['.*val', '.*valid'\]"),
    (("train", "Training", "val"), r"has both Training/ and train/ folders; keep only one so it is clear which "
                                   r"holds the training data"),
])
def test_two_folders_of_one_split_are_an_error_naming_both(tmp_path, kind, splits, message):
    write, load = _LOADERS[kind]
    root = _split_layout(tmp_path / kind, dict.fromkeys(splits, 1), write)
    with pytest.raises(ConfigError, match=message):
        load(root)


@pytest.mark.parametrize("kind", sorted(_LOADERS))
@pytest.mark.parametrize("splits,root", [(("Val", "test"), ""), (("train/train", "train/val"), "train")])
def test_class_folders_that_are_all_split_folders_of_folders_are_an_error_explaining_the_layout(
        tmp_path, kind, splits, root):
    write, load = _LOADERS[kind]
    data_dir = _split_layout(tmp_path / kind, dict.fromkeys(splits, 2), write)
    names = sorted(f"{split.split('/')[-1]}/" for split in splits)
    with pytest.raises(ConfigError, match=(
            r"The class folders of '.*' are all named like data splits and hold folders: read as classes, the model "
            r"would learn which split a file is in\. Expected data_dir/<training folder>/<class>/<file>, the training "
            r"folder named train/ or training/ \(any case\), with fixed validation data beside it in val/, valid/ or "
            rf"validation/.*Received: data_dir='.*' with class folders {re.escape(str(names))} in "
            rf"'{re.escape(str(data_dir / root) if root else str(data_dir))}'")):
        load(data_dir)
