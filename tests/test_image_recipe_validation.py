"""The image recipe's validation data when the data has none of its own: a held-out share by default."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from _tfds_fake import write_recipe_wrapper
from test_recipes import COLOURS, REPO, _run_recipe, _tiny_backbone_file

PER_CLASS = 10  # of which the default fifth, 2 per class, is held out


def _write_class_folders(root, per_class=PER_CLASS):
    """One class-folder tree (no split folders) of noisy solid-colour JPEGs, one colour per class."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.clip(rng.normal(colour, 25, size=(24, 24, 3)), 0, 255).astype(np.uint8)
            (root / name / f"{index}.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    return root


def _tiny_run_flags(tmp_path, data_dir, run):
    """A 1-epoch phase-1 run on a tiny own backbone, with nothing exported beyond the SavedModel."""
    backbone = tmp_path / "own.keras"
    if not backbone.exists():
        _tiny_backbone_file(backbone)
    return [f"--data_dir={data_dir}", f"--backbone={backbone}", "--backbone_output_layer=features",
            "--batch_size=8", "--epochs=1", "--fine_tune_epochs=0", "--warmup_examples=0", "--top_k=0",
            f"--run_dir={tmp_path / run}", f"--export_dir={tmp_path / 'exports'}", "--model_name=colours"]


@pytest.mark.slow
def test_image_recipe_holds_out_a_fifth_of_each_class_of_folders_without_val_unless_told_0(tmp_path, script_server):
    data = _write_class_folders(tmp_path / "data")
    process = _run_recipe(script_server, "image_classifier.py", *_tiny_run_flags(tmp_path, data, "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["class_names"] == ["blue", "green", "red"]
    assert metrics["data"]["train_class_counts"] == [8, 8, 8]
    assert metrics["data"]["validation_size"] == 6
    # Training validated on them (early stopping watches val_loss), and the report scores 2 of each class.
    assert "val_loss" in metrics["phase1"]
    assert [metrics["evaluation"]["per_class"][name]["support"] for name in ("blue", "green", "red")] == [2, 2, 2]
    assert (f"--data_dir={data} has no val/, valid/ or validation/ folder: holding out 20% of each class for "
            "validation (seeded by --seed)") in process.stderr
    assert "--validation_split=0 trains on all of it, without validation" in process.stderr
    assert "No validation data" not in process.stderr
    # An unset flag stays out of flags.txt: its rerun holds out the same share.
    assert "--validation_split" not in (tmp_path / "run" / "flags.txt").read_text()

    process = _run_recipe(script_server, "image_classifier.py", *_tiny_run_flags(tmp_path, data, "all"),
                          "--validation_split=0")
    metrics = json.loads((tmp_path / "all" / "metrics.json").read_text())
    assert metrics["data"]["train_class_counts"] == [10, 10, 10] and metrics["data"]["validation_size"] == 0
    assert "val_loss" not in metrics["phase1"] and metrics["evaluation"] is None
    assert "holding out" not in process.stderr and "No validation data" in process.stderr


def _write_image_csv(root):
    """A CSV of image paths with one label column, `colour`, over the class folders' images."""
    _write_class_folders(root / "images", per_class=4)
    rows = ["path,colour"] + [f"images/{name}/{index}.jpg,{name}" for name in COLOURS for index in range(4)]
    (root / "colours.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "colours.csv"


@pytest.mark.slow
def test_image_recipe_trains_on_every_row_of_a_csv_with_validation_split_0(tmp_path, script_server):
    path = _write_image_csv(tmp_path)
    process = _run_recipe(script_server, "image_classifier.py", *_tiny_run_flags(tmp_path, path, "run"),
                          "--image_column=path", "--label_columns=colour", "--validation_split=0")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["train_size"] == 12 and metrics["data"]["validation_size"] == 0
    assert "val_loss" not in metrics["phase1"] and metrics["evaluation"] is None
    assert "holding out" not in process.stderr and "No validation data" in process.stderr


@pytest.mark.slow
def test_image_recipe_trains_a_registry_backbone_and_its_student_at_a_height_and_width(tmp_path, script_server):
    data = _write_class_folders(tmp_path / "data", per_class=5)
    _run_recipe(script_server, "image_classifier.py", f"--data_dir={data}", "--backbone=mobilenet_v2", "--alpha=0.35",
                "--weights=none", "--image_size=32,48", "--distill_into=mobilenet_v2", "--student_alpha=0.35",
                "--student_weights=none", "--student_image_size=40,32", "--batch_size=8", "--epochs=1",
                "--fine_tune_epochs=0", "--warmup_examples=0", "--top_k=0", f"--run_dir={tmp_path / 'run'}",
                f"--export_dir={tmp_path / 'exports'}", "--model_name=colours")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["image_size"] == [32, 48]
    flag_lines = (tmp_path / "run" / "flags.txt").read_text().splitlines()  # a rerun takes the same sizes
    assert "--image_size=32,48" in flag_lines and "--student_image_size=40,32" in flag_lines
    photo = tf.io.encode_jpeg(np.full((30, 60, 3), COLOURS["green"], np.uint8)).numpy()
    for model, size in (("colours", [32, 48]), ("colours_student", [40, 32])):
        served = tf.saved_model.load(str(tmp_path / "exports" / model / "1"))
        images_input = served.signatures["serving_images"].structured_input_signature[1]["images"]
        assert images_input.shape.as_list() == [None, *size, 3], model
        # Images of any size are resized to it.
        outputs = served.signatures["serving_default"](image_bytes=tf.constant([photo]))
        assert outputs["probabilities"].shape == (1, 3), model


def _run_on_fake_tfds(script_server, tmp_path, name, splits, run, *flags):
    """(the process, metrics.json) of a tiny run on TFDS dataset `name`, faked with `splits` (each example `i` a
    solid image labelled `i % classes`, see `_tfds_fake.indexed_image`)."""
    data_dir = tmp_path / f"tfds_{run}"
    wrapper = write_recipe_wrapper(tmp_path / f"in_fake_tfds_{run}.py", data_dir, name, splits, "indexed_image")
    process = script_server.run(wrapper, os.path.join(REPO, "recipes", "image_classifier.py"), f"--tfds_name={name}",
                                *_tiny_run_flags(tmp_path, data_dir, run), *flags, timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    return process, json.loads((tmp_path / run / "metrics.json").read_text())


@pytest.mark.slow
def test_image_recipe_trains_on_all_of_a_tfds_train_split_with_validation_split_0(tmp_path, script_server):
    process, metrics = _run_on_fake_tfds(script_server, tmp_path, "tf_flowers", {"train": list(range(20))}, "run",
                                         "--validation_split=0")
    # As --validation_split=0 of image folders: every training image trained on, no validation.
    assert metrics["data"]["train_class_counts"] == [4, 4, 4, 4, 4] and metrics["data"]["validation_size"] == 0
    assert "val_loss" not in metrics["phase1"] and metrics["evaluation"] is None
    assert "holding out" not in process.stderr and "No validation data" in process.stderr

    # A dataset with a validation split of its own is still validated on it.
    process, metrics = _run_on_fake_tfds(script_server, tmp_path, "beans",
                                         {"train": list(range(6)), "validation": [0, 1, 2]}, "own",
                                         "--validation_split=0")
    assert metrics["data"]["train_class_counts"] == [2, 2, 2] and metrics["data"]["validation_size"] == 3
    assert [metrics["evaluation"]["per_class"][name]["support"]
            for name in ("angular_leaf_spot", "bean_rust", "healthy")] == [1, 1, 1]
    assert "validating on its 'validation' split" in process.stderr and "No validation data" not in process.stderr
