"""The recipes' `--distill_into`: the trained model distilled into a student, both exported, compared in
metrics.json."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import FILLER, NEGATIVE, POSITIVE, sentences, write_word_vectors
from test_recipes import COLOURS, _run_recipe, _tiny_backbone_file, _write_colour_folders

import tfxfer


@pytest.mark.slow
def test_image_recipe_distils_into_a_registry_student_and_exports_both(tmp_path, script_server):
    _write_colour_folders(tmp_path / "data", per_class=8)
    _write_colour_folders(tmp_path / "more", per_class=2)  # 6 + 3 of them (and a broken file) as unlabelled images
    backbone = _tiny_backbone_file(tmp_path / "own.keras", size=48)
    process = _run_recipe(
        script_server, "image_classifier.py", f"--data_dir={tmp_path / 'data'}", f"--backbone={backbone}",
        "--backbone_output_layer=features", "--batch_size=8", "--epochs=6", "--learning_rate=0.03",
        "--fine_tune_epochs=0", "--distill_into=mobilenet_v2", "--student_alpha=0.35", "--student_weights=none",
        "--student_image_size=32",
        "--distill_temperature=2", "--distill_alpha=0.5", f"--unlabelled_data={tmp_path / 'more'}",
        f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}", "--model_name=colours",
        "--top_k=2", f"--tflite_dir={tmp_path / 'tflite'}")

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    distillation = metrics["distillation"]
    student_export = tmp_path / "exports" / "colours_student" / "1"
    assert distillation["student_export"] == str(student_export)
    assert (distillation["student_backbone"], distillation["temperature"], distillation["alpha"]) == (
        "mobilenet_v2", 2.0, 0.5)
    # The teacher's figures are the teacher run's own, on the same validation images.
    assert distillation["teacher"]["accuracy"] == pytest.approx(metrics["phase1"]["val_accuracy"], abs=1e-6)
    assert 0 <= distillation["student"]["accuracy"] <= 1 and 0 <= distillation["agreement"] <= 1
    assert distillation["student_parameters"] > 100_000 > distillation["teacher_parameters"]
    assert distillation["student_saved_model_mb"] > distillation["teacher_saved_model_mb"] > 0
    # The run's phases (early stopping may end phase 1 before its 6 epochs), phase 2 skipped.
    assert 1 <= distillation["phase1"]["epochs_run"] <= 6 and "phase2" not in distillation
    assert distillation["unlabelled_examples"] == 9
    # The closing summary ends with the student: where it went, how it compares, and its TFLite models.
    assert process.stdout.endswith("\n".join([
        f"TFLite models: {tmp_path / 'tflite'} (their accuracies in tflite_report.json)",
        f"Exported distilled student: {student_export}",
        f"  validation accuracy {distillation['student']['accuracy']:.4f} (teacher "
        f"{distillation['teacher']['accuracy']:.4f}), {distillation['student_parameters']:,} parameters (teacher "
        f"{distillation['teacher_parameters']:,})",
        f"TFLite models of the student: {tmp_path / 'tflite' / 'student'} (their accuracies in tflite_report.json)",
    ]) + "\n"), process.stdout[-2000:]
    for folder in (tmp_path / "tflite", tmp_path / "tflite" / "student"):
        assert (folder / "tflite_report.json").exists(), folder

    # The student takes smaller images than the teacher; it serves like any export (top-k too), and its
    # metadata names its teacher.
    serve = tf.saved_model.load(str(student_export)).signatures["serving_default"]
    red = tf.io.encode_jpeg(np.full((40, 40, 3), COLOURS["red"], np.uint8)).numpy()
    outputs = serve(image_bytes=tf.constant([red, red]))
    assert outputs["probabilities"].shape == (2, 3) and outputs["top_k_class_names"].shape == (2, 2)
    assert serve.structured_outputs["probabilities"].shape[1:] == (3,)
    assert tf.saved_model.load(str(student_export)).signatures["serving_images"].structured_input_signature[1][
        "images"].shape[1:3] == (32, 32)
    metadata = json.loads((student_export / "assets.extra" / "tfxfer_metadata.json").read_text())
    assert metadata["teacher"] == metrics["export"] == str(tmp_path / "exports" / "colours" / "1")


def test_an_unknown_student_fails_before_any_training(tmp_path, script_server):
    _write_colour_folders(tmp_path / "data", per_class=2)
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path / 'data'}",
                                       "--backbone=mobilenet_v2", "--weights=none", "--image_size=32",
                                       "--distill_into=mobilenet_v9", f"--run_dir={tmp_path / 'run'}")
    assert "mobilenet_v9" in stderr and not (tmp_path / "run" / "metrics.json").exists()


def test_a_fine_tune_at_layer_the_student_lacks_fails_before_the_teacher_trains(tmp_path, script_server):
    _write_colour_folders(tmp_path / "data", per_class=2)
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path / 'data'}",
                                       "--backbone=mobilenet_v2", "--alpha=0.35", "--weights=none", "--image_size=32",
                                       "--fine_tune_at=block_13_expand", "--distill_into=mobilenet_v3_small",
                                       "--student_weights=none", f"--run_dir={tmp_path / 'run'}")
    assert ("--fine_tune_at=block_13_expand is where phase 2 starts unfreezing the --distill_into student's backbone "
            "too, which cannot take it (No backbone layer is named 'block_13_expand'.") in stderr, stderr[-3000:]
    assert stderr.endswith("Received: --fine_tune_at=block_13_expand --distill_into=mobilenet_v3_small\n"
                           "Run image_classifier.py --helpshort for its flags.\n")
    assert "phase 1 epoch" not in stderr and not (tmp_path / "run" / "metrics.json").exists()


_OFFLINE = """import runpy, sys
from keras.src.utils import file_utils

def offline(*args, **kwargs):  # what keras' download raises without internet
    raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno 101] Network is unreachable")

file_utils.get_file = offline
sys.path.insert(0, {recipes!r})
sys.argv[0] = {recipe!r}
runpy.run_path({recipe!r}, run_name="__main__")
"""


def test_a_student_whose_imagenet_weights_cannot_be_downloaded_names_student_weights(tmp_path, script_server):
    # The library's message names --weights, which is the teacher's flag and, here, already none.
    _write_colour_folders(tmp_path / "data", per_class=2)
    recipes = str(Path(__file__).resolve().parents[1] / "recipes")
    (tmp_path / "offline.py").write_text(_OFFLINE.format(recipes=recipes, recipe=f"{recipes}/image_classifier.py"))
    process = script_server.run(tmp_path / "offline.py", f"--data_dir={tmp_path / 'data'}", "--backbone=mobilenet_v2",
                                "--weights=none", "--image_size=32", "--distill_into=mobilenet_v2",
                                "--student_alpha=0.35", f"--run_dir={tmp_path / 'run'}")
    assert process.returncode == 2 and "Traceback" not in process.stderr, process.stderr[-3000:]
    assert ("error: The student's ImageNet weights (mobilenet_v2) could not be downloaded (this machine may have no "
            "internet access): pass them as a file, --student_weights=/path/to/<file>.weights.h5, or start the "
            "student from random weights with --student_weights=none. Received: --student_weights=pretrained"
            ) in process.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_temperature_float32_cannot_distil_at_is_a_usage_error_before_any_work(tmp_path, script_server):
    # Above 100 the loss is rounding noise (NaN by 2e19): it would fail, or train on noise, after the teacher.
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path}",
                                       "--distill_into=mobilenet_v3_small", "--student_weights=none",
                                       "--distill_temperature=1000")
    assert stderr.endswith("error: --distill_temperature must be at most 100: above it float32 cannot tell the "
                           "softened probabilities apart, and the loss is rounding noise, or NaN (2 to 10 is usual "
                           "for distillation), e.g. 4.0. Received: --distill_temperature=1000.0\n"), stderr[-2000:]


def test_unlabelled_data_without_a_student_is_a_usage_error(tmp_path, script_server):
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path}",
                                       f"--unlabelled_data={tmp_path}")
    assert "--unlabelled_data is for the student of --distill_into" in stderr


@pytest.mark.slow
def test_text_recipe_distils_on_altered_copies_of_its_training_texts(tmp_path, script_server):
    path = tmp_path / "reviews.csv"
    texts = sentences(POSITIVE, 16, seed=0) + sentences(NEGATIVE, 16, seed=1)
    path.write_text("text,label\n" + "".join(f"{text},{'pos' if i < 16 else 'neg'}\n" for i, text in enumerate(texts)),
                    encoding="utf-8")
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE + FILLER, dim=4)
    process = script_server.run_recipe(
        "text_classifier.py", f"--data_dir={path}", f"--word_vectors={vectors}", "--encoder=mean",
        "--sequence_length=6", "--epochs=2", "--fine_tune_epochs=0", "--validation_split=0.25", "--seed=5",
        f"--distill_into={vectors}", "--distill_augment=3", f"--run_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'exports'}", "--model_name=reviews", timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    distillation = json.loads((tmp_path / "run" / "metrics.json").read_text())["distillation"]
    # The copies of the recipe's own training split, made with its seed, are the student's unlabelled examples.
    data = tfxfer.load_text_data(path, validation_split=0.25, seed=5)
    training_texts = sorted(text.decode() for text in data.texts("train").unbatch().as_numpy_iterator())
    expected = tfxfer.augment_texts(training_texts, 3, seed=5)
    assert len(training_texts) == 24 and 0 < len(expected) <= 3 * 24
    assert distillation["unlabelled_examples"] == len(expected)
    serve = tf.saved_model.load(distillation["student_export"]).signatures["serving_default"]
    assert serve(texts=tf.constant(["the film was good", "a plot was awful"]))["probabilities"].shape == (2, 2)


def test_distill_augment_without_a_student_is_a_usage_error(tmp_path, script_server):
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={tmp_path}", "--distill_augment=2")
    assert "--distill_augment makes texts for the student of --distill_into" in stderr
