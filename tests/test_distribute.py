"""Tests for tfxfer.distribute (strategies by name, chief helpers) and fault-tolerant fine_tune.

Everything runs on this CPU machine. Mirrored training uses two logical CPU
devices, which must be configured before TensorFlow initialises, and
kill-and-resume needs a process to kill: both run tests/_distribute_scripts.py
in processes of their own (`conftest.ScriptServer`).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer import distribute
from tfxfer.training import backup as backup_lib

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_distribute_scripts.py")
PER_REPLICA_BATCH = 8  # as in _distribute_scripts.py


def _start_script(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    return subprocess.Popen([sys.executable, SCRIPT, *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait(process, expect_killed=False, timeout=300, with_stdout=False):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == (-9 if expect_killed else 0), stderr[-3000:]
    return (stdout, stderr) if with_stdout else stderr


def _run_script(script_server, *args, expect_killed=False):
    process = script_server.run(SCRIPT, *args)
    assert process.returncode == (-9 if expect_killed else 0), process.stderr[-3000:]


# The factory: names and errors.

def test_list_strategies():
    assert tfxfer.list_strategies() == ["auto", "default", "mirrored", "multi_worker", "one_device", "tpu"]


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Expected one of \['auto', 'default'.*Received: name='horovod'"):
        tfxfer.create_strategy("horovod")


def test_default_and_auto_without_gpus_are_the_default_strategy():
    assert tfxfer.create_strategy("default") is tf.distribute.get_strategy()
    assert tfxfer.create_strategy("auto") is tf.distribute.get_strategy()
    assert tfxfer.create_strategy("auto", num_gpus=0) is tf.distribute.get_strategy()


def test_one_device_without_gpus_uses_the_cpu():
    strategy = tfxfer.create_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1
    assert strategy.extended.worker_devices[0].endswith("CPU:0")


def test_the_strategy_log_counts_replicas_and_devices_in_words(monkeypatch, caplog):
    with caplog.at_level("INFO", logger="absl"):
        tfxfer.create_strategy("one_device")
        monkeypatch.setattr(tf.distribute, "MirroredStrategy", _FakeStrategy.recorder([], replicas=2))
        monkeypatch.setattr(distribute, "_visible_gpus", lambda: [])
        tfxfer.create_strategy("mirrored")
    assert "OneDeviceStrategy with 1 replica in sync." in caplog.text
    assert "with 2 replicas in sync." in caplog.text
    assert "No GPU visible: mirroring over 1 CPU device ['/device:CPU:0']." in caplog.text


def test_strategy_name_is_the_name_create_strategy_takes():
    assert distribute.strategy_name(tfxfer.create_strategy("auto")) == "default"
    assert distribute.strategy_name(tfxfer.create_strategy("one_device")) == "one_device"
    assert distribute.strategy_name(tf.distribute.MirroredStrategy(["/cpu:0"])) == "mirrored"
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():  # in another's scope, the default is not in force
        assert distribute.strategy_name(tf.distribute.get_strategy()) == "one_device"


def test_auto_with_two_gpus_mirrors_over_both(monkeypatch):
    created = []
    monkeypatch.setattr(distribute, "_visible_gpus", lambda: ["/gpu:0", "/gpu:1"])
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", _FakeStrategy.recorder(created, replicas=2))
    strategy = tfxfer.create_strategy("auto")
    assert created == [(["/gpu:0", "/gpu:1"],)]
    assert strategy.num_replicas_in_sync == 2


def test_mirrored_with_num_gpus_takes_the_first_ones(monkeypatch):
    created = []
    monkeypatch.setattr(distribute, "_visible_gpus", lambda: ["/gpu:0", "/gpu:1", "/gpu:2"])
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", _FakeStrategy.recorder(created, replicas=2))
    tfxfer.create_strategy("mirrored", num_gpus=2)
    assert created == [(["/gpu:0", "/gpu:1"],)]


@pytest.mark.parametrize("name", ["mirrored", "auto"])
def test_more_gpus_than_visible_fails_fast(name):
    with pytest.raises(ValueError, match=r"Asked for 4 GPUs, but 0 are visible.*Received: num_gpus=4"):
        tfxfer.create_strategy(name, num_gpus=4)


@pytest.mark.parametrize("num_gpus", [-1, 1.5, True])
def test_num_gpus_must_be_a_count(num_gpus):
    with pytest.raises(ValueError, match=r"num_gpus must be an integer >= 0.*Received: num_gpus="):
        tfxfer.create_strategy("mirrored", num_gpus=num_gpus)


@pytest.mark.parametrize("name", ["default", "multi_worker", "tpu"])
def test_num_gpus_is_refused_where_unused(name):
    with pytest.raises(ValueError, match=rf"strategy '{name}' picks its own devices. Received: num_gpus=2"):
        tfxfer.create_strategy(name, num_gpus=2)


def test_one_device_refuses_two_gpus():
    with pytest.raises(ValueError, match=r"one_device uses at most one GPU.*Received: num_gpus=2"):
        tfxfer.create_strategy("one_device", num_gpus=2)


def test_tpu_address_with_another_strategy_is_refused():
    with pytest.raises(ValueError, match=r"tpu is only used by the strategies 'tpu' and 'auto'.*tpu='my-tpu'"):
        tfxfer.create_strategy("mirrored", tpu="my-tpu")


def test_multi_worker_with_malformed_tf_config_says_what_it_expects(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "worker 0")
    with pytest.raises(ValueError, match=r'TF_CONFIG must be JSON like \{"cluster".*Received: TF_CONFIG=\'worker 0\''):
        tfxfer.create_strategy("multi_worker")


# The TPU path, through the TPUSystem seam.

class _FakeStrategy:
    def __init__(self, replicas):
        self.num_replicas_in_sync = replicas

    @classmethod
    def recorder(cls, calls, replicas):
        def create(*args, **kwargs):
            calls.append(args)
            return cls(replicas)
        return create


def _fake_tpu_system(calls, resolver_error=None):
    def resolver(tpu):
        calls.append(("resolver", tpu))
        if resolver_error:
            raise resolver_error
        return "resolver-object"

    return distribute.TPUSystem(
        resolver=resolver,
        connect=lambda r: calls.append(("connect", r)),
        initialize=lambda r: calls.append(("initialize", r)),
        strategy=lambda r: calls.append(("strategy", r)) or _FakeStrategy(8),
    )


@pytest.mark.parametrize("name", ["tpu", "auto"])
def test_tpu_resolves_connects_initializes_then_builds_the_strategy(monkeypatch, name):
    calls = []
    monkeypatch.setattr(distribute, "tpu_system", _fake_tpu_system(calls))
    strategy = tfxfer.create_strategy(name, tpu="grpc://10.0.0.2:8470")
    assert calls == [("resolver", "grpc://10.0.0.2:8470"), ("connect", "resolver-object"),
                     ("initialize", "resolver-object"), ("strategy", "resolver-object")]
    assert tfxfer.global_batch_size(16, strategy) == 128


def test_tpu_without_address_lets_the_resolver_find_it(monkeypatch):
    calls = []
    monkeypatch.setattr(distribute, "tpu_system", _fake_tpu_system(calls))
    tfxfer.create_strategy("tpu")
    assert calls[0] == ("resolver", None)


@pytest.mark.parametrize("tpu", ["", "  ", 3])
def test_tpu_address_must_be_a_name(monkeypatch, tpu):
    calls = []
    monkeypatch.setattr(distribute, "tpu_system", _fake_tpu_system(calls))
    with pytest.raises(ValueError, match=r"tpu must be a TPU name, a grpc://host:port address or 'local'"):
        tfxfer.create_strategy("tpu", tpu=tpu)
    assert calls == []


def test_unreachable_tpu_says_what_to_pass(monkeypatch):
    calls = []
    monkeypatch.setattr(distribute, "tpu_system", _fake_tpu_system(calls, ValueError("no TPU named nowhere")))
    with pytest.raises(ValueError, match=r"Could not find the Cloud TPU 'nowhere': no TPU named nowhere.*--tpu"):
        tfxfer.create_strategy("tpu", tpu="nowhere")
    assert calls == [("resolver", "nowhere")]


def test_the_real_tpu_system_is_tensorflows():
    assert distribute.TPUSystem().resolver is tf.distribute.cluster_resolver.TPUClusterResolver
    assert distribute.TPUSystem().strategy is tf.distribute.TPUStrategy


# Batch sizes and learning-rate scaling.

def test_global_batch_size_multiplies_by_the_replicas():
    assert tfxfer.global_batch_size(32, tf.distribute.get_strategy()) == 32
    assert tfxfer.global_batch_size(32, _FakeStrategy(4)) == 128


@pytest.mark.parametrize("per_replica", [0, -8, 2.5, True])
def test_global_batch_size_needs_a_positive_count(per_replica):
    with pytest.raises(ValueError, match=r"per-replica batch size must be an integer >= 1. Received: per_replica="):
        tfxfer.global_batch_size(per_replica, tf.distribute.get_strategy())


def test_scale_learning_rate_is_linear_in_the_global_batch():
    assert tfxfer.scale_learning_rate(1e-3, global_batch=128, base_batch=32) == pytest.approx(4e-3)
    assert tfxfer.scale_learning_rate(1e-3, global_batch=32, base_batch=32) == pytest.approx(1e-3)


def test_scale_learning_rate_refuses_empty_batches():
    with pytest.raises(ValueError, match=r"Batch sizes must be >= 1. Received: global_batch=0, base_batch=32"):
        tfxfer.scale_learning_rate(1e-3, global_batch=0, base_batch=32)


# Chief and workers.

def _tf_config(task_type, index, cluster=None):
    cluster = cluster or {"worker": ["a:1", "b:2"]}
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize("tf_config, chief", [
    ("", True),
    (_tf_config("worker", 0), True),
    (_tf_config("worker", 1), False),
    (_tf_config("chief", 0, {"chief": ["c:0"], "worker": ["a:1"]}), True),
    (_tf_config("worker", 0, {"chief": ["c:0"], "worker": ["a:1"]}), False),
    (_tf_config("evaluator", 0, {"worker": ["a:1"], "evaluator": ["e:1"]}), False),
])
def test_is_chief(tf_config, chief):
    assert tfxfer.is_chief(tf_config) is chief


def test_is_chief_reads_the_environment(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _tf_config("worker", 1))
    assert not tfxfer.is_chief()
    monkeypatch.delenv("TF_CONFIG")
    assert tfxfer.is_chief()


def test_chief_writes_to_the_path_and_others_to_a_temp_dir(tmp_path):
    target = str(tmp_path / "run")
    assert tfxfer.chief_or_temp_dir(target, _tf_config("worker", 0)) == target
    other = tfxfer.chief_or_temp_dir(target, _tf_config("worker", 1))
    assert other != target and os.path.isdir(other)
    assert os.path.commonpath([other, tempfile.gettempdir()]) == tempfile.gettempdir()
    assert os.path.basename(other).startswith("tfxfer_worker1_")
    os.rmdir(other)


# Fault tolerance: backups of fine_tune.

def _scripts():
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import _distribute_scripts
    finally:
        sys.path.pop(0)
    return _distribute_scripts


def _tiny_run(backup_dir, **config_changes):
    scripts = _scripts()
    model = scripts.tiny_classifier()
    config = scripts.config()
    config = config.replace(**config_changes)
    data = scripts.colour_data(16, 0, 8)
    return model, tfxfer.fine_tune(model, data, data, config=config, backup_dir=backup_dir)


def test_phase1_marker_skips_phase1_and_restores_its_weights(tmp_path):
    keras.utils.set_random_seed(3)
    model, _ = _tiny_run(None, epochs=1, fine_tune_epochs=0)
    phase1 = tfxfer.PhaseResult({"loss": [0.5]}, 1.0, 1, {"val_loss": 0.25}, 51)
    backup_lib.RunBackup(tmp_path / "backup").save_phase1(model, phase1)

    keras.utils.set_random_seed(4)  # different initial weights
    fresh, result = _tiny_run(tmp_path / "backup", epochs=1, fine_tune_epochs=0)
    assert result.phase1 == phase1  # read back, not retrained
    for saved, restored in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    assert not (tmp_path / "backup").exists()  # the run completed: its backup is gone


class _FailInPhase2(keras.callbacks.Callback):
    """Stops a run with an error at the start of phase 2, as a crash would."""

    def on_train_begin(self, logs=None):
        if self.model.get_layer("backbone").trainable:
            raise RuntimeError("crash in phase 2")


def test_backups_work_on_any_gfile_filesystem():
    # ram:// goes through tf.io.gfile like gs:// does: no local-only file calls.
    backup_dir = f"ram://tfxfer_backup_{os.getpid()}"
    keras.utils.set_random_seed(3)
    scripts = _scripts()
    model, data = scripts.tiny_classifier(), scripts.colour_data(16, 0, 8)
    with pytest.raises(RuntimeError, match="crash in phase 2"):
        tfxfer.fine_tune(model, data, data, config=scripts.config(1), backup_dir=backup_dir,
                         callbacks=[_FailInPhase2()])
    assert tf.io.gfile.exists(f"{backup_dir}/{backup_lib.PHASE1_DONE}")
    phase1_weights = model.get_weights()

    keras.utils.set_random_seed(4)
    resumed = scripts.tiny_classifier()
    result = tfxfer.fine_tune(resumed, data, data, config=scripts.config(1), backup_dir=backup_dir)
    assert result.phase1.epochs_run == 1 and result.phase2.epochs_run == 1
    assert not tf.io.gfile.exists(backup_dir)  # finished: deleted
    # Phase 1 was restored, not retrained: the frozen part of the backbone is phase 1's.
    np.testing.assert_array_equal(resumed.get_layer("backbone").get_layer("conv_1").kernel.numpy(),
                                  model.get_layer("backbone").get_layer("conv_1").kernel.numpy())
    assert len(phase1_weights) == len(resumed.get_weights())


def test_a_worker_that_is_not_the_chief_restores_but_never_writes(tmp_path):
    keras.utils.set_random_seed(3)
    model, _ = _tiny_run(None, epochs=1, fine_tune_epochs=0)
    phase1 = tfxfer.PhaseResult({"loss": [0.5]}, 1.0, 1, {"val_loss": 0.25}, 51)
    worker = backup_lib.RunBackup(tmp_path / "backup", is_chief=False)
    worker.save_phase1(model, phase1)
    assert not (tmp_path / "backup").exists()
    backup_lib.RunBackup(tmp_path / "backup").save_phase1(model, phase1)  # the chief's
    assert worker.restore_phase1(model) == phase1
    callback, = worker.callbacks("phase2")
    assert isinstance(callback, keras.callbacks.BackupAndRestore)  # restores like the chief's
    callback.set_model(model)
    callback.on_epoch_end(0)
    assert not (tmp_path / "backup" / "phase2").exists()
    worker.finish()
    assert (tmp_path / "backup").exists()  # the chief's to delete


def test_no_marker_means_nothing_to_restore(tmp_path):
    assert backup_lib.RunBackup(tmp_path).restore_phase1(keras.Sequential()) is None


@pytest.mark.slow
def test_killed_run_resumes_at_the_next_epoch_in_either_phase(tmp_path, script_server):
    """SIGKILL after phase-1 epoch 1, then after phase-2 epoch 0; each restart goes on from there."""
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    reference.mkdir()
    resumed.mkdir()
    uninterrupted = _start_script("resume", reference)  # in parallel with the first, killed, run
    _run_script(script_server, "resume", resumed, "--kill_at=1:1", expect_killed=True)
    _wait(uninterrupted)
    _run_script(script_server, "resume", resumed, "--kill_at=2:0", expect_killed=True)
    _run_script(script_server, "resume", resumed)

    epochs = [json.loads(line) for line in (resumed / "epochs.jsonl").read_text().splitlines()]
    # Run 1: phase 1 epochs 0-1, killed. Run 2: phase 1 epoch 2, phase 2 epoch 0, killed. Run 3: the rest.
    assert [(e["phase"], e["epoch"]) for e in epochs] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    reference_epochs = [json.loads(line) for line in (reference / "epochs.jsonl").read_text().splitlines()]
    # Deterministic training (op determinism, no shuffling, no dropout): the same losses.
    np.testing.assert_allclose([e["loss"] for e in epochs], [e["loss"] for e in reference_epochs], rtol=1e-5)

    final, expected = (json.loads((d / "final.json").read_text()) for d in (resumed, reference))
    for phase in ("phase1", "phase2"):
        assert final[phase]["epochs_run"] == expected[phase]["epochs_run"] == 3
        assert final[phase]["val_loss"] == pytest.approx(expected[phase]["val_loss"], abs=1e-5)
        assert final[phase]["val_accuracy"] == expected[phase]["val_accuracy"]
    with np.load(resumed / "final_weights.npz") as a, np.load(reference / "final_weights.npz") as b:
        assert max(np.max(np.abs(a[k] - b[k])) for k in a.files) < 1e-5
    assert not (resumed / "backup").exists()


# Mirrored training on two logical CPU devices.

@pytest.mark.slow
def test_mirrored_on_two_cpu_replicas_matches_one_device_with_the_same_global_batch(tmp_path, script_server):
    _run_script(script_server, "mirrored", tmp_path)
    report = json.loads((tmp_path / "mirrored.json").read_text())
    assert report["strategy"] == "MirroredStrategy" and report["num_replicas"] == 2
    assert report["global_batch"] == 16
    for kind in ("one_head", "multi_task"):
        run = report[kind]
        assert run["variable_type"] == "MirroredVariable"  # the model was built in strategy.scope()
        assert run["initial_weights_diff"] == 0.0
        assert run["weights_moved"] > 1e-2  # both phases trained
        # Tolerance: float32 summation order differs across replicas; measured 3e-8 and 6e-8.
        assert run["final_weights_diff"] < 1e-5
        for phase in ("phase1", "phase2"):
            mirrored, single = run["mirrored_metrics"][phase], run["single_metrics"][phase]
            assert mirrored["epochs_run"] == single["epochs_run"] == 2
            assert mirrored["val_loss"] == pytest.approx(single["val_loss"], abs=1e-5)
            # Accuracies count examples (per task, the labelled ones): equal, not merely close.
            accuracies = [key for key in single if key.endswith("accuracy")]
            assert {key: mirrored[key] for key in accuracies} == {key: single[key] for key in accuracies}
    assert {"val_colour_accuracy", "val_red_accuracy"} <= set(report["multi_task"]["single_metrics"]["phase2"])
    assert report["export_vs_model_diff"] < 1e-5


@pytest.mark.slow
def test_a_search_on_two_cpu_replicas_scores_its_trials_as_one_device_does(tmp_path, script_server):
    _run_script(script_server, "tune", tmp_path)
    trials = json.loads((tmp_path / "tune.json").read_text())
    assert [row["trial"] for row in trials["mirrored"]] == [row["trial"] for row in trials["single"]] == [
        "defaults", "0"]
    for mirrored, single in zip(trials["mirrored"], trials["single"]):
        assert mirrored["status"] == single["status"] == "COMPLETED"
        measured = ("val_accuracy", "val_loss", "seconds")
        # The same settings, in the same order: the oracle is seeded, and saw the same scores.
        assert {k: v for k, v in mirrored.items() if k not in measured} == {
            k: v for k, v in single.items() if k not in measured}
        assert mirrored["val_loss"] == pytest.approx(single["val_loss"], abs=1e-5)



# Multi-worker: two worker processes on localhost.

def _free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_on_two_localhost_workers_trains_identical_weights_and_only_the_chief_exports(tmp_path):
    ports = [_free_port(), _free_port()]
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps(tf_config)}
        workers.append(subprocess.Popen([sys.executable, SCRIPT, "multi_worker", str(tmp_path)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    (chief_out, chief_log), (other_out, _) = (_wait(worker, timeout=240, with_stdout=True) for worker in workers)
    # Keras' epoch lines (verbose "auto": one per epoch, stdout is no terminal) from the chief only: two
    # runs of two phases of two epochs.
    assert chief_out.count("val_accuracy:") == 8 and "val_accuracy" not in other_out
    assert "phase 2: " in chief_log  # the phase summaries
    chief, other = (json.loads((tmp_path / f"worker{index}.json").read_text()) for index in range(2))
    assert (chief["is_chief"], other["is_chief"]) == (True, False)
    assert chief["num_replicas"] == other["num_replicas"] == 2
    assert chief["global_batch"] == 2 * PER_REPLICA_BATCH
    # Both phases trained, on the same synchronised weights: a one-head model, and a multi-task one with
    # missing labels.
    assert chief["weights_moved"] > 1e-2 and chief["multi_task_weights_moved"] > 1e-2
    assert chief["metrics"]["phase2"]["epochs_run"] == chief["multi_task_metrics"]["phase2"]["epochs_run"] == 2
    assert {"val_colour_accuracy", "val_red_accuracy"} <= set(chief["multi_task_metrics"]["phase2"])
    for run in ("metrics", "multi_task_metrics"):
        for phase in ("phase1", "phase2"):
            without_seconds = {name: value for name, value in chief[run][phase].items() if name != "seconds"}
            assert without_seconds == {name: value for name, value in other[run][phase].items() if name != "seconds"}
    for weights in ("weights", "multi_task_weights"):
        first_path, second_path = (tmp_path / f"worker{index}_{weights}.npz" for index in range(2))
        with np.load(first_path) as first, np.load(second_path) as second:
            assert len(first.files) == len(second.files)
            for name in first.files:
                np.testing.assert_array_equal(first[name], second[name])
    # The chief exported into the run's folder, the other worker somewhere temporary.
    assert chief["export"].startswith(str(tmp_path / "export"))
    assert not other["export"].startswith(str(tmp_path))
    assert sorted(os.listdir(tmp_path / "export")) == ["1"]


# The recipe's flags.

def _run_recipe(script_server, *flags, script="image_classifier.py", env_extra=None):
    return script_server.run_recipe(script, *flags, env=env_extra)


@pytest.mark.parametrize("script", ["image_classifier.py", "text_classifier.py"])
def test_recipe_fails_fast_on_an_impossible_strategy(tmp_path, script, script_server):
    # An empty --data_dir: reading it would fail with another message, so the strategy must fail first.
    (tmp_path / "empty").mkdir()
    process = _run_recipe(script_server, f"--data_dir={tmp_path / 'empty'}", "--strategy=mirrored",
                          "--num_gpus=4", f"--run_dir={tmp_path / 'run'}", script=script)
    assert process.returncode == 2, process.stderr[-3000:]
    assert "Traceback" not in process.stderr
    assert f"{script}: error: Asked for 4 GPUs, but 0 are visible" in process.stderr
    assert not (tmp_path / "run").exists()


def _colour_folders(root, per_class=4):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for index, name in enumerate(("red", "green", "blue")):
            (root / split / name).mkdir(parents=True)
            for number in range(per_class):
                pixels = np.full((24, 24, 3), 40.0)
                pixels[..., index] = 210.0
                pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
                (root / split / name / f"{number}.png").write_bytes(tf.io.encode_png(pixels).numpy())


def _own_backbone(path):
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.mark.slow
def test_recipe_on_a_non_chief_worker_reports_the_global_batch_and_writes_only_to_temp(tmp_path, script_server):
    _colour_folders(tmp_path / "data")
    backbone = _own_backbone(tmp_path / "own.keras")
    worker1 = _tf_config("worker", 1)
    process = _run_recipe(script_server,
        f"--data_dir={tmp_path / 'data'}", f"--backbone={backbone}", "--backbone_output_layer=features",
        "--image_size=24", "--strategy=one_device", "--batch_size=4", "--scale_learning_rate",
        "--learning_rate=0.01", "--fine_tune_learning_rate=0.001", "--epochs=1", "--fine_tune_epochs=1",
        "--fine_tune_at=0", "--warmup_examples=0", f"--run_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'exports'}", f"--backup_dir={tmp_path / 'backup'}",
        env_extra={"TF_CONFIG": worker1})
    assert process.returncode == 0, process.stderr[-3000:]
    assert not (tmp_path / "run").exists() and not (tmp_path / "exports").exists()
    assert not (tmp_path / "backup").exists()  # the completed run deleted its backup
    written = [line.split("Wrote ")[1].strip() for line in process.stderr.splitlines() if "Wrote " in line]
    metrics_path = [path for path in written if path.endswith("metrics.json")][0]
    assert os.path.basename(os.path.dirname(metrics_path)).startswith("tfxfer_worker1_")
    metrics = json.loads(open(metrics_path).read())
    assert metrics["strategy"] == "one_device" and metrics["num_replicas"] == 1
    assert metrics["batch_size"] == 4 and metrics["global_batch_size"] == 4
    assert metrics["learning_rate"] == pytest.approx(0.01)  # one replica: linear scaling changes nothing
    assert "global batch 4" in process.stderr
