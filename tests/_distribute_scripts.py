"""Training runs that tests/test_distribute.py starts in subprocesses.

A subprocess each: logical CPU devices must be configured before TensorFlow
initialises, and a kill-and-resume test needs a process to kill.

  python tests/_distribute_scripts.py mirrored OUT_DIR
  python tests/_distribute_scripts.py tune OUT_DIR
  python tests/_distribute_scripts.py resume OUT_DIR [--kill_at=PHASE:EPOCH]
  TF_CONFIG=... python tests/_distribute_scripts.py multi_worker OUT_DIR   (one per worker)
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

import tfxfer  # noqa: E402
from tfxfer.tasks import MISSING_LABEL  # noqa: E402

PER_REPLICA_BATCH = 8
# The colour, and whether it is red; each misses some labels, which the masked multi-task loss skips on every replica.
TASKS = {"colour": 3, "red": 2}


def tiny_classifier(tasks=None):
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for name, filters in (("conv_1", 8), ("conv_2", 16)):
        x = keras.layers.Conv2D(filters, 3, strides=2, name=name)(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    backbone = keras.Model(inputs, x, name="tiny")
    head = {"tasks": tasks} if tasks else {"num_classes": 3}
    return tfxfer.build_image_classifier(backbone, **head, preprocessing="tf", augmentation=False, dropout=0.0)


def colour_data(num_examples, seed, batch_size, tasks=None):
    """Images whose bright channel is the class, plus noise; fixed order (no shuffling). With `tasks`
    (`TASKS`), the labels of both tasks, a third of each missing."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_examples) % 3
    images = np.full((num_examples, 32, 32, 3), 40.0)
    images[np.arange(num_examples), :, :, labels] = 200.0
    images = np.clip(images + rng.normal(0, 25, images.shape), 0, 255).astype("float32")
    if tasks:
        labels = {"colour": np.where(np.arange(num_examples) % 3 == 1, MISSING_LABEL, labels),
                  "red": np.where(rng.random(num_examples) < 1 / 3, MISSING_LABEL, labels == 0)}
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def config(epochs=3):
    return tfxfer.FineTuneConfig(epochs=epochs, fine_tune_epochs=epochs, learning_rate=3e-2,
                                 fine_tune_learning_rate=3e-3,
                                 fine_tune_at="conv_2", label_smoothing=0.0, early_stopping_patience=None)


def train(strategy, global_batch, epochs=3, tasks=None, **kwargs):
    keras.utils.set_random_seed(7)
    with strategy.scope():
        model = tiny_classifier(tasks)
    initial = [w.copy() for w in model.get_weights()]
    result = tfxfer.fine_tune(model, colour_data(48, 0, global_batch, tasks), colour_data(24, 1, global_batch, tasks),
                              config=config(epochs), **kwargs)
    return model, initial, result


def max_abs_diff(weights_a, weights_b):
    return float(max(np.max(np.abs(a - b)) for a, b in zip(weights_a, weights_b)))


def mirrored(out_dir):
    """Two-phase training on two mirrored CPU replicas vs one device, same global batch: a one-head model
    (exported too) and a multi-task one."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tfxfer.create_strategy("mirrored")
    global_batch = tfxfer.global_batch_size(PER_REPLICA_BATCH, strategy)
    report = {"num_replicas": strategy.num_replicas_in_sync, "strategy": type(strategy).__name__,
              "global_batch": global_batch}
    for kind, tasks in (("one_head", None), ("multi_task", TASKS)):
        # Two epochs per phase: tracing under MirroredStrategy dominates the time.
        model, initial, result = train(strategy, global_batch, epochs=2, tasks=tasks)
        single, single_initial, single_result = train(tf.distribute.get_strategy(), global_batch, epochs=2,
                                                      tasks=tasks)
        report[kind] = {
            "variable_type": type(model.trainable_variables[0].value).__name__,
            "initial_weights_diff": max_abs_diff(initial, single_initial),
            "final_weights_diff": max_abs_diff(model.get_weights(), single.get_weights()),
            "weights_moved": max_abs_diff(model.get_weights(), initial),
            "mirrored_metrics": result.metrics(),
            "single_metrics": single_result.metrics(),
        }
        if tasks is None:
            export = tfxfer.export_saved_model(model, os.path.join(out_dir, "export"), class_names=["r", "g", "b"])
            images = next(iter(colour_data(6, 2, 6)))[0]
            served = tf.saved_model.load(export).signatures["serving_images"](images=images)["probabilities"]
            report["export_vs_model_diff"] = float(np.max(np.abs(served.numpy() - model.predict(images, verbose=0))))
    with open(os.path.join(out_dir, "mirrored.json"), "w") as f:
        json.dump(report, f)


def tune(out_dir):
    """The same hyperparameter search on two mirrored CPU replicas and on one device, same global batch."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tfxfer.create_strategy("mirrored")
    global_batch = tfxfer.global_batch_size(PER_REPLICA_BATCH, strategy)
    searches = {}
    for name, where in (("mirrored", strategy), ("single", tf.distribute.get_strategy())):
        keras.utils.set_random_seed(7)
        with where.scope():
            model = tiny_classifier()
        searches[name] = tfxfer.tune(model, colour_data(48, 0, global_batch), colour_data(24, 1, global_batch),
                                     config=config(epochs=2), tuner="random", max_trials=1, tune_epochs=1, seed=3)
    with open(os.path.join(out_dir, "tune.json"), "w") as f:
        json.dump({name: search.trials for name, search in searches.items()}, f)


class EpochRecorder(keras.callbacks.Callback):
    """Appends each finished epoch to a JSON-lines log; SIGKILLs the process at `kill_at`."""

    def __init__(self, path, kill_at):
        super().__init__()
        self.path = path
        self.kill_at = kill_at

    def on_epoch_end(self, epoch, logs=None):
        phase = 2 if self.model.get_layer("backbone").trainable else 1
        with open(self.path, "a") as f:
            f.write(json.dumps({"phase": phase, "epoch": epoch, "loss": float(logs["loss"])}) + "\n")
        if (phase, epoch) == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def resume(out_dir, kill_at):
    tf.config.experimental.enable_op_determinism()
    recorder = EpochRecorder(os.path.join(out_dir, "epochs.jsonl"), kill_at)
    # No feature cache: its per-epoch reshuffle restarts on resume, and this run must be exact.
    model, _, result = train(tf.distribute.get_strategy(), PER_REPLICA_BATCH, callbacks=[recorder],
                             backup_dir=os.path.join(out_dir, "backup"), cache_features=False)
    np.savez(os.path.join(out_dir, "final_weights.npz"), *model.get_weights())
    with open(os.path.join(out_dir, "final.json"), "w") as f:
        json.dump(result.metrics(), f)


def multi_worker(out_dir):
    """One worker of a two-phase run under MultiWorkerMirroredStrategy, then its export; then a multi-task run."""
    logging.set_verbosity(logging.INFO)  # the test reads which worker logs progress
    strategy = tfxfer.create_strategy("multi_worker")
    task_index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    global_batch = tfxfer.global_batch_size(PER_REPLICA_BATCH, strategy)
    model, initial, result = train(strategy, global_batch, epochs=2)
    # Every worker exports (saving may need them all); only the chief's lands in out_dir.
    export_dir = tfxfer.chief_or_temp_dir(os.path.join(out_dir, "export"))
    export = tfxfer.export_saved_model(model, export_dir, class_names=["r", "g", "b"])
    np.savez(os.path.join(out_dir, f"worker{task_index}_weights.npz"), *model.get_weights())
    multi_task, multi_task_initial, multi_task_result = train(strategy, global_batch, epochs=2, tasks=TASKS)
    np.savez(os.path.join(out_dir, f"worker{task_index}_multi_task_weights.npz"), *multi_task.get_weights())
    report = {"num_replicas": strategy.num_replicas_in_sync, "is_chief": tfxfer.is_chief(),
              "global_batch": global_batch, "export": export, "metrics": result.metrics(),
              "weights_moved": max_abs_diff(model.get_weights(), initial),
              "multi_task_metrics": multi_task_result.metrics(),
              "multi_task_weights_moved": max_abs_diff(multi_task.get_weights(), multi_task_initial)}
    with open(os.path.join(out_dir, f"worker{task_index}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "mirrored":
        mirrored(out)
    elif mode == "tune":
        tune(out)
    elif mode == "multi_worker":
        multi_worker(out)
    else:
        kill = None
        for arg in sys.argv[3:]:
            if arg.startswith("--kill_at="):
                phase_text, epoch_text = arg.split("=", 1)[1].split(":")
                kill = (int(phase_text), int(epoch_text))
        resume(out, kill)
