"""The recipes end to end, as a user runs them: a process of its own, flags in, files out."""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from tfxfer.export import warmup

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 40, 220)}


def _run_recipe(script_server, script, *flags, timeout=600):
    process = script_server.run_recipe(script, *flags, timeout=timeout)
    assert process.returncode == 0, process.stderr[-4000:]
    return process


def _write_colour_folders(root, per_class):
    """train/ and val/ of noisy solid-colour JPEGs, one colour per class."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", per_class // 2)):
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                size = rng.integers(20, 48, size=2)
                pixels = np.clip(rng.normal(colour, 25, size=(*size, 3)), 0, 255).astype(np.uint8)
                (folder / f"{index}.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    (root / "train" / "red" / "broken.jpg").write_bytes(b"not a jpeg")


def _tiny_backbone_file(path, size=32):
    """A small pretrained-looking model of the user's own, saved as .keras; `size` one side, or (height, width)."""
    inputs = keras.Input((*((size, size) if isinstance(size, int) else size), 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="old_head")(x)
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.mark.slow
def test_image_recipe_trains_on_own_backbone_and_exports(tmp_path, script_server):
    _write_colour_folders(tmp_path / "data", per_class=12)
    backbone = _tiny_backbone_file(tmp_path / "own.keras")
    process = _run_recipe(script_server,
        "image_classifier.py", f"--data_dir={tmp_path / 'data'}", f"--backbone={backbone}",
        "--backbone_output_layer=features", "--batch_size=8", "--epochs=12", "--fine_tune_epochs=2",
        "--learning_rate=0.03", "--fine_tune_at=0", f"--run_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'exports'}", "--model_name=colours", "--top_k=2", "--warmup_examples=2",
        f"--tflite_dir={tmp_path / 'tflite'}")

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["phase1"]["val_accuracy"] >= 0.9
    assert metrics["phase2"]["val_accuracy"] >= 0.9
    assert metrics["phase1"]["seconds"] > 0 and metrics["phase2"]["seconds"] > 0
    assert metrics["data"]["class_names"] == ["blue", "green", "red"]
    assert [os.path.basename(p) for p in metrics["data"]["skipped_files"]] == ["broken.jpg"]
    assert metrics["data"]["decoded_cache"] == "memory"  # a few images: well within the memory budget
    assert metrics["data"]["exact_copies"] == {"copies": 0, "copy_groups": 0, "groups_with_different_labels": 0,
                                               "validation_copies_of_training": 0}
    assert "exact copies" not in process.stdout  # the closing lines mention copies only when there are some
    _assert_run_report(tmp_path / "run", metrics, process)

    version = tmp_path / "exports" / "colours" / "1"
    assert (version / "saved_model.pb").exists()
    assert (version / "assets" / "labels.txt").read_text().split() == ["blue", "green", "red"]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    green = tf.io.encode_jpeg(np.full((40, 40, 3), COLOURS["green"], np.uint8)).numpy()
    outputs = serve(image_bytes=tf.constant([green]))
    assert outputs["class_names"].numpy().tolist() == [b"green"]
    assert outputs["top_k_class_names"].shape == (1, 2)
    warmup_requests = warmup.read_warmup_requests(str(version / "assets.extra" / "tf_serving_warmup_requests"))
    assert [len(inputs["image_bytes"]) for name, inputs in warmup_requests if name == "serving_default"] == [2]
    assert f"TFLite models: {tmp_path / 'tflite'} (their accuracies in tflite_report.json)" in process.stdout
    report = json.loads((tmp_path / "tflite" / "tflite_report.json").read_text())
    assert sorted(report["tflite"]) == ["dynamic_range", "float16", "float32", "int8"]
    assert report["tflite"]["float32"]["accuracy"] == report["keras"]["accuracy"] >= 0.9


def _assert_run_report(run_dir, metrics, process):
    """The evaluation, pictures, TensorBoard events and closing summary of a finished run."""
    evaluation = metrics["evaluation"]
    # The report evaluates the weights the run ended with, on the same validation data.
    assert evaluation["accuracy"] == pytest.approx(metrics["phase2"]["val_accuracy"], abs=1e-6)
    assert np.sum(evaluation["confusion_matrix"]) == metrics["data"]["validation_size"]
    assert sorted(evaluation["per_class"]) == metrics["data"]["class_names"]
    for picture in ("training_curves.png", "confusion_matrix.png"):
        width, height = PIL.Image.open(run_dir / picture).size
        assert width > 400 and height > 300, picture
    for phase in ("phase1", "phase2"):
        assert list((run_dir / "tensorboard" / phase / "train").glob("events.out.tfevents.*")), phase
    assert "precision" in process.stdout and "macro avg" in process.stdout
    assert f"Run folder: {run_dir}" in process.stdout and metrics["export"] in process.stdout
    assert f"rerun with --flagfile={run_dir / 'flags.txt'}" in process.stdout
    # New data is checked for copies of the files the run trained on.
    assert f"--data_dir=<labelled data> --training_data={run_dir.parent / 'data'}" in process.stdout
    assert max(len(line) for line in process.stderr.splitlines()) < 600


@pytest.mark.slow
def test_image_recipe_registry_backbone_with_flagfile_and_split(tmp_path, script_server):
    _write_colour_folders(tmp_path / "data", per_class=6)
    flagfile = tmp_path / "run.flags"
    flagfile.write_text("\n".join([
        f"--data_dir={tmp_path / 'data' / 'train'}", "--validation_split=0.34", "--backbone=mobilenet_v2",
        "--alpha=0.35", "--weights=none", "--image_size=32", "--batch_size=8", "--epochs=1",
        "--fine_tune_epochs=1", "--fine_tune_at=0.5", f"--run_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'exports'}", "--model_name=m"]))
    _run_recipe(script_server, "image_classifier.py", f"--flagfile={flagfile}")
    first = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # The run's own flagfile reruns it (into another run folder; a flag after it wins).
    _run_recipe(script_server, "image_classifier.py", f"--flagfile={tmp_path / 'run' / 'flags.txt'}",
                "--fine_tune_epochs=0", f"--run_dir={tmp_path / 'rerun'}")

    metrics = json.loads((tmp_path / "rerun" / "metrics.json").read_text())
    assert metrics["data"] == first["data"]
    assert metrics["data"]["train_size"] + metrics["data"]["validation_size"] == 18
    assert metrics["image_size"] == 32 and "phase2" not in metrics
    assert sorted(os.listdir(tmp_path / "exports" / "m")) == ["1", "2"]


@pytest.mark.slow
def test_image_recipe_with_deterministic_repeats_its_metrics_exactly(tmp_path):
    _write_colour_folders(tmp_path / "data", per_class=4)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    runs = []
    for run in ("a", "b"):  # side by side: half the wall time, and no shared state but the data
        # MobileNet v1 at width 0.25: the registry backbone that traces and exports fastest.
        flags = [f"--data_dir={tmp_path / 'data'}", "--backbone=mobilenet", "--alpha=0.25", "--weights=none",
                 "--image_size=32", "--batch_size=4", "--epochs=1", "--fine_tune_epochs=1", "--fine_tune_at=0.5",
                 "--learning_rate=0.03", "--fine_tune_learning_rate=0.01", "--deterministic",
                 "--warmup_examples=0", "--top_k=0", f"--run_dir={tmp_path / run}",
                 f"--export_dir={tmp_path / run / 'exports'}"]
        runs.append(subprocess.Popen([sys.executable, os.path.join(REPO, "recipes", "image_classifier.py"), *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO))
    for process in runs:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-4000:]
        assert "Deterministic ops on, seed 42" in stderr

    first, second = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("a", "b"))
    assert first["deterministic"] is True and first["seed"] == 42
    for phase in ("phase1", "phase2"):
        for name in ("val_loss", "val_accuracy"):
            assert first[phase][name] == second[phase][name], (phase, name)
    assert first["phase1"]["val_loss"] != first["phase2"]["val_loss"]  # phase 2 trained: numbers to compare


def _run_unquiet(script, *flags):
    """The recipe as a user starts it: TF_CPP_MIN_LOG_LEVEL unset, so the recipe quiets TensorFlow itself."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, os.path.join(REPO, "recipes", script), *flags],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


def test_image_recipe_without_data_is_a_usage_error_and_nothing_else(tmp_path):
    process = _run_unquiet("image_classifier.py")
    assert process.returncode == 2
    lines = process.stderr.splitlines()
    assert lines[-2:] == ["image_classifier.py: error: Pass --data_dir (image folders) or --tfds_name.",
                          "Run image_classifier.py --helpshort for its flags."]
    # Before it, tfxfer's own log lines only: none of TensorFlow's start-up noise (CUDA probes, cuInit).
    assert all(" distribute.py:" in line or " training_flags.py:" in line for line in lines[:-2]), lines


@pytest.mark.parametrize("script, own_flag", [("image_classifier.py", "--tflite_dir"),
                                              ("text_classifier.py", "--word_vectors")])
def test_help_lists_every_flag_of_the_recipe(script, own_flag):
    process = _run_unquiet(script, "--help")
    assert process.stderr == ""  # no TensorFlow start-up noise either
    for flag in (own_flag, "--data_dir", "--backbone", "--epochs", "--fine_tune_epochs", "--learning_rate",
                 "--run_dir", "--export_dir", "--strategy", "--backup_dir", "--find_learning_rate", "--seed"):
        assert f"  {flag}:" in process.stdout, flag
    assert "--verbosity" not in process.stdout  # absl's own flags stay in --helpfull


@pytest.mark.slow
def test_offline_main_job_transfers_better_than_scratch(tmp_path, script_server):
    process = _run_recipe(script_server, "digits_transfer.py", f"--run_dir={tmp_path / 'run'}",
                          f"--export_dir={tmp_path / 'exports'}")
    comparison = json.loads((tmp_path / "run" / "metrics.json").read_text())["comparison"]
    assert comparison["source_val_accuracy"] >= 0.9
    # The margin the design has on every seed, oneDNN on and off (benchmarks/digits_seeds.py,
    # README): at least 0.15 of 846 validation images, so 0.05 leaves room for other CPUs.
    assert comparison["transfer_val_accuracy"] - comparison["scratch_val_accuracy"] >= 0.05
    assert comparison["transfer_val_accuracy"] >= 0.88
    assert 0.5 < comparison["pixel_logistic_regression_val_accuracy"] <= 1.0
    assert "trained from scratch" in process.stdout
    version = tmp_path / "exports" / "digits" / "1"
    # It ends, as the other recipes do, with where its files went.
    assert process.stdout.endswith("\n".join([
        f"Run folder: {tmp_path / 'run'}", "  metrics.json", "  source_digits_0_4.keras",
        f"Exported SavedModel: {version}",
        f"  evaluate it: python recipes/evaluate.py --model_dir={version} --data_dir=<labelled data>",
        f"  predict: python recipes/predict.py --model_dir={version} <inputs>"]) + "\n"), process.stdout
    assert "Epoch " not in process.stdout and "shuffle=True" not in process.stderr
    assert (version / "assets" / "labels.txt").read_text().split() == ["5", "6", "7", "8", "9"]


# Runs the recipe named by its first argument with the others, SIGKILLed where it would export its SavedModel:
# right after training, as a kill during the export or the report would be.
_KILLED_AT_EXPORT = """
import os, runpy, signal, sys
import tfxfer

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

tfxfer.export_saved_model = killed
recipe = sys.argv.pop(1)
sys.argv[0] = recipe  # as `python <recipe>` runs it: its flags are the key flags of that script
sys.path.insert(0, os.path.dirname(recipe))
runpy.run_path(recipe, run_name="__main__")
"""
# As _KILLED_AT_EXPORT, SIGKILLed where it would write its report instead: after its SavedModel was exported.
_KILLED_AT_REPORT = """
import os, runpy, signal, sys

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

recipe = sys.argv.pop(1)
sys.argv[0] = recipe
sys.path.insert(0, os.path.dirname(recipe))
import run_report  # the module the recipe imports by that name
run_report.finish = killed
runpy.run_path(recipe, run_name="__main__")
"""


def _tiny_own_backbone_flags(tmp_path, size=32, phase2=False):
    """The image recipe's flags for a 1-epoch run of phase 1 (and of phase 2) on a few colour images and a tiny
    own backbone."""
    _write_colour_folders(tmp_path / "data", per_class=4)
    backbone = _tiny_backbone_file(tmp_path / "own.keras", size)
    return [f"--data_dir={tmp_path / 'data'}", f"--backbone={backbone}", "--backbone_output_layer=features",
            "--batch_size=8", "--epochs=1", *(["--fine_tune_epochs=1", "--fine_tune_at=0"] if phase2 else
                                             ["--fine_tune_epochs=0"]),
            "--warmup_examples=0", "--top_k=0", f"--run_dir={tmp_path / 'run'}",
            f"--export_dir={tmp_path / 'exports'}", "--model_name=colours"]


@pytest.mark.slow
def test_image_recipe_killed_after_training_exports_when_rerun_without_training_again(tmp_path, script_server):
    flags = [*_tiny_own_backbone_flags(tmp_path, phase2=True), f"--backup_dir={tmp_path / 'backup'}"]
    wrapper = tmp_path / "killed_at_export.py"
    wrapper.write_text(_KILLED_AT_EXPORT)
    killed = script_server.run(wrapper, os.path.join(REPO, "recipes", "image_classifier.py"), *flags)
    assert killed.returncode == -9, killed.stderr[-4000:]
    assert "phase 2 done in" in killed.stderr and "val_loss: " in killed.stdout  # Keras' line per epoch
    assert not (tmp_path / "exports").exists()
    trained = json.loads((tmp_path / "backup" / "trained_result.json").read_text())

    # Other flags would export a model they did not train: refused before any work, naming the difference.
    stderr = script_server.usage_error("image_classifier.py", *flags, "--epochs=2")
    assert "it had --epochs=1; this run has --epochs=2" in stderr
    assert f"Rerun that run with --flagfile={tmp_path / 'backup' / 'flags.txt'}" in stderr

    process = _run_recipe(script_server, "image_classifier.py", *flags)
    # No training: the killed run's model is exported.
    assert "phase 1 done in" not in process.stderr and "val_loss: " not in process.stdout
    assert f"Training skipped: {tmp_path / 'backup'} holds the model a run with the same flags trained" in \
        process.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [metrics[phase]["seconds"] for phase in ("phase1", "phase2")] == \
        [round(phase["seconds"], 2) for phase in trained]
    assert (tmp_path / "exports" / "colours" / "1" / "saved_model.pb").exists()
    assert not (tmp_path / "backup").exists()  # the finished run leaves nothing to resume


@pytest.mark.slow
def test_image_recipe_killed_after_tuning_and_training_reports_its_search_when_rerun_without_searching_again(
        tmp_path, script_server):
    flags = [*_tiny_own_backbone_flags(tmp_path), "--tune=random", "--max_trials=1",
             f"--backup_dir={tmp_path / 'backup'}"]
    wrapper = tmp_path / "killed_at_export.py"
    wrapper.write_text(_KILLED_AT_EXPORT)
    killed = script_server.run(wrapper, os.path.join(REPO, "recipes", "image_classifier.py"), *flags)
    assert killed.returncode == -9, killed.stderr[-4000:]
    assert "Search done in" in killed.stderr and not (tmp_path / "run" / "tuning").exists()
    search = json.loads((tmp_path / "backup" / "trained_search.json").read_text())

    process = _run_recipe(script_server, "image_classifier.py", *flags)
    # Neither searched nor trained again: the killed run's search is reported with its model.
    assert "Trial defaults" not in process.stderr and "Search done in" not in process.stderr
    assert "phase 1 done in" not in process.stderr
    assert f"Search skipped: {tmp_path / 'backup'} holds the search that chose the settings" in process.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["tuning"]["best_trial"] == search["best_trial"]["trial"]
    assert metrics["tuning"]["trials"] == len(search["trials"]) == 2
    assert metrics["tuning"]["seconds"] == round(search["seconds"], 2)
    assert metrics["learning_rate"] == pytest.approx(search["config"]["learning_rate"])
    with open(tmp_path / "run" / "tuning" / "trials.csv", encoding="utf-8") as f:
        trials = list(csv.DictReader(f))
    assert [(row["trial"], float(row["val_loss"])) for row in trials] == \
        [(row["trial"], pytest.approx(row["val_loss"])) for row in search["trials"]]
    assert "--noscale_learning_rate" in (tmp_path / "run" / "tuning" / "best_flags.txt").read_text().splitlines()
    assert not (tmp_path / "backup").exists()


@pytest.mark.slow
def test_image_recipe_metrics_name_the_strategy_auto_resolved_to(tmp_path, script_server):
    flags = _tiny_own_backbone_flags(tmp_path)
    _run_recipe(script_server, "image_classifier.py", *flags)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # No TPU, one CPU: auto resolves to TensorFlow's default strategy.
    assert metrics["strategy"] == "default" and metrics["strategy_requested"] == "auto"
    assert metrics["num_replicas"] == 1


@pytest.mark.slow
def test_image_recipe_loads_images_at_a_non_square_own_backbone_s_size(tmp_path, script_server):
    flags = _tiny_own_backbone_flags(tmp_path, size=(24, 40))
    _run_recipe(script_server, "image_classifier.py", *flags)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["image_size"] == [24, 40]
    model = tf.saved_model.load(str(tmp_path / "exports" / "colours" / "1"))
    green = tf.io.encode_jpeg(np.full((30, 30, 3), COLOURS["green"], np.uint8)).numpy()
    assert model.signatures["serving_default"](image_bytes=tf.constant([green]))["probabilities"].shape == (1, 3)
    # The signature on decoded images takes them at the backbone's (height, width).
    images = [fn for fn in model.signatures.values()
              if next(iter(fn.structured_input_signature[1].values())).dtype == tf.float32]
    assert [tuple(next(iter(fn.structured_input_signature[1].values())).shape[1:3]) for fn in images] == [(24, 40)]


def test_digits_job_refuses_a_run_folder_holding_an_earlier_run(tmp_path, script_server):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text('{"comparison": {}}')
    stderr = script_server.usage_error("digits_transfer.py", f"--run_dir={tmp_path / 'run'}",
                                       f"--export_dir={tmp_path / 'exports'}")
    assert f"--run_dir holds an earlier run (its metrics.json), which this run would overwrite; pass a new " \
           f"folder, or leave --run_dir unset for a new one under runs/. Received: --run_dir={tmp_path / 'run'}" \
           in stderr
    assert (tmp_path / "run" / "metrics.json").read_text() == '{"comparison": {}}'
    assert sorted(os.listdir(tmp_path / "run")) == ["metrics.json"]
