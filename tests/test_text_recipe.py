"""The text recipe end to end, as a user runs it: a subprocess, flags in, files out."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from _text_helpers import NEGATIVE, POSITIVE, write_word_vectors
from tfxfer.export.warmup import read_warmup_requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "recipes", "text_classifier.py")


def _run(*flags):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, SCRIPT, *flags], capture_output=True, text=True,
                          timeout=600, env=env, cwd=REPO)


@pytest.mark.slow
def test_text_recipe_with_word_vectors_on_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = ["review,stars"] + [f"{w} film,five" for w in POSITIVE * 4] + [f"{w} film,one" for w in NEGATIVE * 4]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE + ["film"], dim=4)
    process = _run(
        f"--data_dir={path}", "--text_column=review", "--label_column=stars", f"--word_vectors={vectors}",
        "--encoder=mean", "--sequence_length=4", "--epochs=2", "--fine_tune_epochs=1", "--fine_tune_at=0",
        f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}", "--model_name=stars")
    assert process.returncode == 0, process.stderr[-4000:]
    with open(tmp_path / "run" / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["data"]["class_names"] == ["five", "one"]
    assert metrics["phase2"]["trainable_parameters"] > metrics["phase1"]["trainable_parameters"]
    assert metrics["backbone"] == str(vectors)
    signature = tf.saved_model.load(str(tmp_path / "exports" / "stars" / "1")).signatures["serving_default"]
    outputs = signature(texts=tf.constant(["good film", "awful film"]))
    assert outputs["probabilities"].shape == (2, 2)
    assert set(outputs["class_names"].numpy().tolist()) <= {b"five", b"one"}
    warmup = tmp_path / "exports" / "stars" / "1" / "assets.extra" / "tf_serving_warmup_requests"
    texts = [inputs["texts"] for name, inputs in read_warmup_requests(str(warmup)) if name == "serving_default"]
    assert len(texts) == 1 and texts[0].shape == (3,)


def test_text_recipe_without_data_is_a_usage_error():
    process = _run()
    assert process.returncode != 0
    assert "Pass --data_dir" in process.stderr
