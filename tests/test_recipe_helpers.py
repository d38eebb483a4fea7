"""The recipes' own helpers, which turn flags into library values and write run files.

They live with the recipes (`recipes/`), not in `tfxfer`: the library never
reads flags, and a run's `metrics.json` is the app's report.
"""

import json
import logging
import os
import re
import socket
import subprocess
import sys

import keras
import metrics_file  # recipes/metrics_file.py
import numpy as np
import pytest
import quiet_start  # recipes/quiet_start.py
import run_folder  # recipes/run_folder.py
import run_report  # recipes/run_report.py
import tensorflow as tf
import training_flags  # recipes/training_flags.py
from absl import app, flags

import tfxfer

# training_flags.parse_fine_tune_at is tested with freezing (tests/test_freezing.py).

@pytest.mark.parametrize("text, expected", [
    (None, None), ("", None), ("none", None), (" None ", None), ("imagenet", "imagenet"),
    ("pretrained", "pretrained"), ("weights/model.weights.h5", "weights/model.weights.h5"),
])
def test_parse_weights(text, expected):
    assert training_flags.parse_weights(text) == expected


def test_write_metrics_writes_sorted_json_and_replaces_it(tmp_path):
    run_dir = tmp_path / "runs" / "flowers"
    path = metrics_file.write_metrics(str(run_dir), {"val_accuracy": 0.5, "data": {"train": 10}, "path": run_dir})
    assert path == os.path.join(str(run_dir), "metrics.json")
    text = (run_dir / "metrics.json").read_text(encoding="utf-8")
    assert json.loads(text) == {"data": {"train": 10}, "path": str(run_dir), "val_accuracy": 0.5}
    assert text.index('"data"') < text.index('"val_accuracy"')
    metrics_file.write_metrics(str(run_dir), {"val_accuracy": 0.75})
    assert json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")) == {"val_accuracy": 0.75}
    assert os.listdir(run_dir) == ["metrics.json"]  # no staging file left


def test_the_closing_summary_names_the_tflite_folders_and_the_students_accuracy_against_the_teachers():
    distillation = {"student_export": "exports/m_student/1", "student": {"accuracy": 0.875, "loss": 0.4},
                    "teacher": {"accuracy": 0.9375, "loss": 0.2}, "student_parameters": 410208,
                    "teacher_parameters": 2257984}
    summary = run_report.closing_summary("runs/m", "runs/m/flags.txt", ["runs/m/metrics.json"], "exports/m/1",
                                         distillation, tflite_dir="tflite", student_tflite_dir="tflite/student")
    assert summary.splitlines()[-5:] == [
        "  predict: python recipes/predict.py --model_dir=exports/m/1 <inputs>",
        "TFLite models: tflite (their accuracies in tflite_report.json)",
        "Exported distilled student: exports/m_student/1",
        "  validation accuracy 0.8750 (teacher 0.9375), 410,208 parameters (teacher 2,257,984)",
        "TFLite models of the student: tflite/student (their accuracies in tflite_report.json)"]
    # Without validation data there is no accuracy to compare; without --tflite_dir, no TFLite line.
    summary = run_report.closing_summary("runs/m", "runs/m/flags.txt", [], "exports/m/1",
                                         {**distillation, "student": None, "teacher": None})
    assert summary.splitlines()[-2:] == ["  predict: python recipes/predict.py --model_dir=exports/m/1 <inputs>",
                                         "Exported distilled student: exports/m_student/1"]


def test_recipe_helpers_are_not_library_api():
    for name in ("parse_fine_tune_at", "parse_weights", "write_metrics", "flag_values", "reporting"):
        assert not hasattr(tfxfer, name), name
        assert name not in tfxfer.__all__


def test_the_package_names_its_public_api_and_loads_it_on_use():
    assert set(tfxfer.__all__) <= set(dir(tfxfer))
    for name in tfxfer.__all__:
        assert getattr(tfxfer, name) is not None, name
    assert tfxfer.__version__ == tfxfer.version.__version__
    with pytest.raises(AttributeError, match="module 'tfxfer' has no attribute 'no_such_name'"):
        tfxfer.no_such_name  # noqa: B018


def test_a_run_without_run_dir_gets_a_new_folder_each_time(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run_folder.choose(None, "flowers")
    assert not os.path.exists(first)  # made by the first file written: a failed run leaves no folder
    run_folder.write_flagfile(first, flags.FlagValues(), script="recipe.py")
    second = run_folder.choose(None, "flowers")  # the same second: a suffix, never the same folder
    assert first != second
    assert os.path.dirname(first) == os.path.dirname(second) == os.path.join("runs", "flowers")
    assert re.fullmatch(r"\d{8}-\d{6}(-\d+)?", os.path.basename(second))


def test_a_finished_run_is_never_overwritten_but_a_killed_one_is_continued(tmp_path):
    finished, killed = tmp_path / "finished", tmp_path / "killed"
    metrics_file.write_metrics(str(finished), {"val_accuracy": 0.5})
    with pytest.raises(app.UsageError, match="holds an earlier run"):
        run_folder.choose(str(finished), "flowers")
    killed.mkdir()
    (killed / "events.out.tfevents.1").write_text("")
    assert run_folder.choose(str(killed), "flowers") == str(killed)
    assert run_folder.choose(str(tmp_path / "new" / "run"), "flowers") == str(tmp_path / "new" / "run")


def test_the_search_backed_up_with_the_trained_model_is_read_back_as_it_was(tmp_path):
    trials = [{"trial": "defaults", "status": "COMPLETED", "learning_rate": 0.003, "val_accuracy": np.float32(0.5),
               "val_loss": 0.75, "phase2_epochs": 1, "seconds": 1.25},
              {"trial": "0", "status": "COMPLETED", "learning_rate": 0.01, "val_accuracy": np.float32(0.75),
               "val_loss": 0.5, "phase2_epochs": 1, "seconds": 1.5}]
    config = tfxfer.FineTuneConfig(learning_rate=0.01, fine_tune_at="block_3", class_weight={0: 2.0, 2: 0.5})
    search = tfxfer.TuneResult(config, None, trials[1], trials, "val_accuracy", 4, 12.5)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    result = tfxfer.FineTuneResult(tfxfer.PhaseResult({"loss": [0.5]}, 1.0, 1, {"val_loss": 0.25}, 6), None)
    backup = str(tmp_path / "backup")
    assert run_folder.load_search(backup) is None  # nothing backed up
    run_folder.save_trained(backup, model, result, search)
    restored = run_folder.load_search(backup)
    assert restored == search
    assert restored.config.class_weight == {0: 2.0, 2: 0.5}  # class ids, not JSON's string keys
    assert type(restored.trials[0]["phase2_epochs"]) is int  # trials.csv gets 1, not 1.0
    run_folder.save_trained(str(tmp_path / "untuned"), model, result)
    assert run_folder.load_search(str(tmp_path / "untuned")) is None


def test_a_recorded_export_is_reused_only_while_its_version_is_complete(tmp_path, caplog):
    backup, version = tmp_path / "backup", tmp_path / "exports" / "m" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    run_folder.save_exported(str(backup), str(version))  # no backup of a trained model: nothing to record
    assert not backup.exists() and run_folder.load_exported(str(backup)) is None
    backup.mkdir()
    (backup / run_folder.FLAGS_FILE).write_text("# the marker of a complete backup\n")
    assert run_folder.load_exported(str(backup)) is None  # trained, not exported yet
    run_folder.save_exported(str(backup), str(version))
    with caplog.at_level(logging.WARNING, logger="absl"):
        assert run_folder.load_exported(str(backup)) == str(version)
        (version / "saved_model.pb").unlink()  # deleted since, say
        assert run_folder.load_exported(str(backup)) is None
    assert f"Export skipped: the run stopped after training had exported its model to {version}" in caplog.text
    assert f"Exporting again: {backup} records that the run stopped after training exported its model to " \
           f"{str(version)!r}, which holds no complete SavedModel now." in caplog.text


def test_the_flagfile_holds_the_recipes_key_flags_and_reruns_them(tmp_path):
    values = flags.FlagValues()
    flags.DEFINE_string("data_dir", None, "data", flag_values=values, module_name="recipe.py")
    flags.DEFINE_integer("epochs", 10, "epochs", flag_values=values, module_name="recipe.py")
    flags.DEFINE_bool("deterministic", False, "deterministic", flag_values=values, module_name="recipe.py")
    flags.DEFINE_string("run_dir", None, "run", flag_values=values, module_name="recipe.py")
    flags.DEFINE_string("tpu", None, "unset flags are left out", flag_values=values, module_name="recipe.py")
    flags.DEFINE_integer("other", 1, "another module's flag", flag_values=values, module_name="other.py")
    values(["recipe.py", "--data_dir=photos dir", "--epochs=3", "--deterministic", f"--run_dir={tmp_path}"])

    path = run_folder.write_flagfile(str(tmp_path), values, script="recipe.py")
    lines = open(path, encoding="utf-8").read().splitlines()
    assert [line for line in lines if not line.startswith("#")] == [
        "--data_dir=photos dir", "--deterministic", "--epochs=3"]
    assert f"--flagfile={path}" in lines[0]
    rerun = flags.FlagValues()
    flags.DEFINE_string("data_dir", None, "data", flag_values=rerun)
    flags.DEFINE_integer("epochs", 10, "epochs", flag_values=rerun)
    flags.DEFINE_bool("deterministic", False, "deterministic", flag_values=rerun)
    rerun(rerun.read_flags_from_files(["recipe.py", f"--flagfile={path}"]))
    assert (rerun.data_dir, rerun.epochs, rerun.deterministic) == ("photos dir", 3, True)


@pytest.mark.parametrize("line", [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796143286.442748   19473 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1796143291.398749   19473 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796609270.269277    1497 util.cc:131] oneDNN supports DT_UINT8 only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
])
def test_tensorflow_start_up_noise_is_recognised(line):
    assert quiet_start._NOISE.search(line)


@pytest.mark.parametrize("line", [
    "E0000 00:00:1796143291.398749 19473 gpu_device.cc:2020] Cannot dlopen some GPU libraries.",
    "Traceback (most recent call last):", "ImportError: libcudnn.so.9: cannot open shared object file",
])
def test_other_start_up_lines_are_kept(line):
    assert not quiet_start._NOISE.search(line)


def test_log_records_longer_than_a_screen_are_cut():
    record = logging.LogRecord("tensorflow", logging.INFO, __file__, 1, "inputs %s", (", ".join(
        f"input_{i}" for i in range(1, 300)),), None)
    quiet_start._Shorten().filter(record)
    message = record.getMessage()
    assert len(message) < quiet_start.MAX_LOG_CHARS + 40
    assert message.startswith("inputs input_1, input_2") and message.endswith("more characters)")


def test_tensorflows_own_info_records_are_dropped_but_its_warnings_kept():
    tensorflow_file = os.path.join(os.path.dirname(tf.__file__), "python", "saved_model", "save.py")
    quiet = quiet_start._Shorten(quiet_tensorflow=True)
    info = logging.LogRecord("absl", logging.INFO, tensorflow_file, 1, "Sharding callback duration", None, None)
    warning = logging.LogRecord("absl", logging.WARNING, tensorflow_file, 1, "Retracing", None, None)
    ours = logging.LogRecord("absl", logging.INFO, metrics_file.__file__, 1, "Wrote metrics.json", None, None)
    assert [quiet.filter(record) for record in (info, warning, ours)] == [False, True, True]
    assert quiet_start._Shorten(quiet_tensorflow=False).filter(info)


_LOGGING_MAIN = """
def main(argv):
    module = tf.Module()
    module.weight = tf.Variable(1.0)
    tf.saved_model.save(module, argv[1])  # TensorFlow logs "Assets written to: ..." at INFO
    tf.get_logger().warning("A warning through TensorFlow's logger.")
    tf.transpose(tf.zeros((2, 2), tf.uint8))  # where oneDNN lacks AVX-512, its notice came here, mid-run
"""


def _run_as_a_user(main: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """A recipe whose `main(argv)` is the source `main`, run through `cli.run` with TF_CPP_MIN_LOG_LEVEL unset,
    as a user runs one (so that `quiet_start` filters TensorFlow's output)."""
    recipes = os.path.dirname(quiet_start.__file__)
    program = (f"import sys\nsys.path.insert(0, {recipes!r})\nimport cli\nimport tensorflow as tf\n"
               f"{main}\ncli.run(main)\n")
    env = {**{name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}, **env}
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_a_recipe_writes_tensorflows_warnings_once_and_not_its_info_records_or_notices(tmp_path):
    process = _run_as_a_user(_LOGGING_MAIN, str(tmp_path / "saved"))
    assert process.returncode == 0, process.stderr
    assert (tmp_path / "saved" / "saved_model.pb").exists()
    assert "Assets written" not in process.stderr
    assert process.stderr.count("A warning through TensorFlow's logger.") == 1, process.stderr
    assert "WARNING:tensorflow:" not in process.stderr  # absl's format, not TensorFlow's own handler's
    assert "oneDNN supports" not in process.stderr


_MULTI_WORKER_MAIN = """
def main(argv):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
    print("replicas", strategy.num_replicas_in_sync)
"""


def test_the_quiet_start_leaves_tensorflow_to_a_multi_worker_strategy():
    # A multi-worker strategy configures TensorFlow's runtime, which must not have started (by an eager op)
    # before the recipe's main creates it.
    with socket.socket() as free:
        free.bind(("localhost", 0))
        port = free.getsockname()[1]
    tf_config = {"cluster": {"worker": [f"localhost:{port}"]}, "task": {"type": "worker", "index": 0}}
    process = _run_as_a_user(_MULTI_WORKER_MAIN, TF_CONFIG=json.dumps(tf_config))
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines()[-1] == "replicas 1"
