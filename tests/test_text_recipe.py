"""The text recipe end to end, as a user runs it: a process of its own, flags in, files out."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import (
    NEGATIVE,
    POSITIVE,
    save_tiny_bert_preset,
    sentences,
    write_word_vectors,
)
from test_recipes import _KILLED_AT_EXPORT, _KILLED_AT_REPORT, REPO

import tfxfer
from tfxfer.export.warmup import read_warmup_requests
from tfxfer.training import precision



def _run(script_server, *flags):
    return script_server.run_recipe("text_classifier.py", *flags, timeout=600)


@pytest.mark.slow
def test_text_recipe_with_word_vectors_on_csv(tmp_path, script_server):
    path = tmp_path / "reviews.csv"
    rows = ["review,stars"] + [f"{w} film,five" for w in POSITIVE * 4] + [f"{w} film,one" for w in NEGATIVE * 4]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE + ["film"], dim=4)
    process = _run(script_server,
        f"--data_dir={path}", "--text_column=review", "--label_column=stars", f"--word_vectors={vectors}",
        "--encoder=mean", "--sequence_length=4", "--epochs=2", "--fine_tune_epochs=1", "--fine_tune_at=0",
        "--find_learning_rate=1", f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}",
        "--model_name=stars")
    assert process.returncode == 0, process.stderr[-4000:]
    with open(tmp_path / "run" / "metrics.json", encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["data"]["class_names"] == ["five", "one"]
    # Each of the 10 reviews is written 4 times, always with its own label; the closing lines say so.
    assert metrics["data"]["exact_copies"] == {"copies": 30, "copy_groups": 10, "groups_with_different_labels": 0}
    assert "Data: 30 examples are exact copies of another (named in the log" in process.stdout
    assert metrics["phase2"]["trainable_parameters"] > metrics["phase1"]["trainable_parameters"]
    assert metrics["backbone"] == str(vectors)
    assert (metrics["mixed_precision"], metrics["compute_policy"], metrics["layer_decay"]) == ("off", "float32", 1.0)
    # The finder chose phase 1's rate (and drew its sweep); phase 2 kept its flag's.
    assert metrics["phase1"]["learning_rate"] == metrics["phase1"]["learning_rate_suggestion"]
    assert metrics["phase2"]["learning_rate"] == metrics["fine_tune_learning_rate"]
    assert (tmp_path / "run" / "lr_find.png").stat().st_size > 10_000
    signature = tf.saved_model.load(str(tmp_path / "exports" / "stars" / "1")).signatures["serving_default"]
    outputs = signature(texts=tf.constant(["good film", "awful film"]))
    assert outputs["probabilities"].shape == (2, 2)
    assert set(outputs["class_names"].numpy().tolist()) <= {b"five", b"one"}
    warmup = tmp_path / "exports" / "stars" / "1" / "assets.extra" / "tf_serving_warmup_requests"
    texts = [inputs["texts"] for name, inputs in read_warmup_requests(str(warmup)) if name == "serving_default"]
    assert len(texts) == 1 and texts[0].shape == (3,)


def _read_metrics(run_dir):
    with open(run_dir / "metrics.json", encoding="utf-8") as f:
        return json.load(f)


def _tiny_word_vector_flags_with_backup(tmp_path):
    """The text recipe's flags for a 1-epoch run of each phase on a few reviews and tiny word vectors, backed up in
    `tmp_path / "backup"`."""
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(["text,label"] + [f"{w} film,pos" for w in POSITIVE * 2] +
                              [f"{w} film,neg" for w in NEGATIVE * 2]) + "\n", encoding="utf-8")
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE + ["film"], dim=4)
    return [f"--data_dir={path}", f"--word_vectors={vectors}", "--encoder=mean", "--sequence_length=4",
            "--epochs=1", "--fine_tune_epochs=1", "--fine_tune_at=0", "--warmup_examples=0",
            f"--backup_dir={tmp_path / 'backup'}", f"--run_dir={tmp_path / 'run'}",
            f"--export_dir={tmp_path / 'exports'}", "--model_name=reviews"]


@pytest.mark.slow
def test_text_recipe_killed_after_training_exports_when_rerun_without_training_again(tmp_path, script_server):
    flags = _tiny_word_vector_flags_with_backup(tmp_path)
    wrapper = tmp_path / "killed_at_export.py"
    wrapper.write_text(_KILLED_AT_EXPORT)
    killed = script_server.run(wrapper, os.path.join(REPO, "recipes", "text_classifier.py"), *flags)
    assert killed.returncode == -9, killed.stderr[-4000:]
    assert "phase 2 done in" in killed.stderr and not (tmp_path / "exports").exists()

    process = _run(script_server, *flags)
    assert process.returncode == 0, process.stderr[-4000:]
    assert "phase 1 done in" not in process.stderr and "val_loss: " not in process.stdout
    assert f"Training skipped: {tmp_path / 'backup'} holds the model" in process.stderr
    metrics = _read_metrics(tmp_path / "run")
    assert metrics["phase1"]["epochs_run"] == metrics["phase2"]["epochs_run"] == 1
    assert metrics["strategy"] == "default" and metrics["strategy_requested"] == "auto"
    signature = tf.saved_model.load(str(tmp_path / "exports" / "reviews" / "1")).signatures["serving_default"]
    assert signature(texts=tf.constant(["good film"]))["probabilities"].shape == (1, 2)
    assert not (tmp_path / "backup").exists()


@pytest.mark.slow
def test_text_recipe_killed_after_its_export_reports_that_version_when_rerun_without_exporting_again(
        tmp_path, script_server):
    flags = _tiny_word_vector_flags_with_backup(tmp_path)
    wrapper = tmp_path / "killed_at_report.py"
    wrapper.write_text(_KILLED_AT_REPORT)
    killed = script_server.run(wrapper, os.path.join(REPO, "recipes", "text_classifier.py"), *flags)
    assert killed.returncode == -9, killed.stderr[-4000:]
    version = tmp_path / "exports" / "reviews" / "1"
    assert (version / "saved_model.pb").exists() and not (tmp_path / "run" / "metrics.json").exists()

    process = _run(script_server, *flags)
    assert process.returncode == 0, process.stderr[-4000:]
    assert f"Export skipped: the run stopped after training had exported its model to {version}" in process.stderr
    assert sorted(os.listdir(tmp_path / "exports" / "reviews")) == ["1"]  # no second version of the same model
    assert _read_metrics(tmp_path / "run")["export"] == str(version)
    assert f"Exported SavedModel: {version}" in process.stdout
    assert not (tmp_path / "backup").exists()


@pytest.mark.slow
def test_text_recipe_trains_a_transformer_under_a_strategy(tmp_path, script_server):
    preset = save_tiny_bert_preset(tmp_path / "bert")
    path = tmp_path / "reviews.csv"
    rows = ["text,label"] + [f"{t},pos" for t in sentences(POSITIVE, 16, 0)] + [
        f"{t},neg" for t in sentences(NEGATIVE, 16, 1)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    process = _run(script_server,
        f"--data_dir={path}", f"--backbone={preset}", "--sequence_length=8", "--batch_size=8",
        "--strategy=one_device", "--scale_learning_rate", "--epochs=1", "--fine_tune_epochs=1",
        "--fine_tune_learning_rate=0.001", "--warmup_examples=0", f"--backup_dir={tmp_path / 'backup'}",
        f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}", "--model_name=reviews")
    assert process.returncode == 0, process.stderr[-4000:]
    metrics = _read_metrics(tmp_path / "run")
    assert metrics["strategy"] == "one_device" and metrics["num_replicas"] == 1
    assert metrics["batch_size"] == 8 and metrics["global_batch_size"] == 8
    # One replica: linear scaling leaves the rates alone.
    assert metrics["learning_rate"] == pytest.approx(tfxfer.FineTuneConfig().learning_rate)
    assert metrics["fine_tune_learning_rate"] == pytest.approx(0.001)
    assert metrics["layer_decay"] == tfxfer.defaults.TextDefaults.fine_tune_config().layer_decay
    # A transformer's default precision: bfloat16 where the CPU computes it natively, float32 elsewhere.
    assert metrics["mixed_precision"] == "auto"
    assert metrics["compute_policy"] == precision.resolve("auto")
    assert "phase2" in metrics and not metrics["data"]["multi_label"]
    assert "global batch 8" in process.stderr
    assert not (tmp_path / "backup").exists()  # the completed run deleted its backup
    assert (tmp_path / "exports" / "reviews" / "1" / "saved_model.pb").exists()


@pytest.mark.slow
def test_text_recipe_trains_and_exports_a_multi_label_csv(tmp_path, script_server):
    preset = save_tiny_bert_preset(tmp_path / "bert")
    path = tmp_path / "tickets.csv"
    rows = ["text,tags"]
    for words, tag, seed in ((POSITIVE, "pos", 0), (NEGATIVE, "neg", 1)):
        # "plot" is a second class on top of the sentiment wherever the text mentions it.
        rows += [f"{t},{tag}|plot" if "plot" in t.split() else f"{t},{tag}" for t in sentences(words, 16, seed)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    process = _run(script_server,
        f"--data_dir={path}", "--label_column=tags", "--label_separator=|", f"--backbone={preset}",
        "--sequence_length=8", "--batch_size=8", "--epochs=1", "--fine_tune_epochs=1", "--warmup_examples=2",
        f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}", "--model_name=tickets")
    assert process.returncode == 0, process.stderr[-4000:]
    metrics = _read_metrics(tmp_path / "run")
    assert metrics["data"]["multi_label"] and metrics["data"]["class_names"] == ["neg", "plot", "pos"]
    # Multi-label: per-label precision/recall/F1 at the threshold; no confusion matrix between labels.
    evaluation = metrics["evaluation"]
    assert evaluation["task"] == "multilabel" and evaluation["threshold"] == 0.5
    assert sorted(evaluation["per_class"]) == ["neg", "plot", "pos"]
    assert evaluation["num_examples"] == metrics["data"]["validation_size"]
    assert sorted(os.listdir(tmp_path / "run")) == ["flags.txt", "metrics.json", "tensorboard", "training_curves.png"]
    assert "subset accuracy" in process.stdout.lower()
    version = tmp_path / "exports" / "tickets" / "1"
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    probabilities = signature(texts=tf.constant(["the plot was good", "it was awful"]))["probabilities"].numpy()
    assert probabilities.shape == (2, 3)
    # One independent sigmoid per class: scores in (0, 1) that need not sum to 1.
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert not np.allclose(probabilities.sum(axis=1), 1.0)
    exported = json.loads((version / "assets.extra" / "tfxfer_metadata.json").read_text(encoding="utf-8"))
    assert exported["head"] == "multilabel"
    warmup = version / "assets.extra" / "tf_serving_warmup_requests"
    texts = [inputs["texts"] for name, inputs in read_warmup_requests(str(warmup)) if name == "serving_default"]
    assert len(texts) == 1 and texts[0].shape == (2,)


def test_text_recipe_without_data_is_a_usage_error(script_server):
    process = _run(script_server)
    assert process.returncode != 0
    assert "Pass --data_dir (a .csv/.tsv file or a folder of texts) or --tfds_name" in process.stderr


def _reviews_csv(path):
    rows = ["text,label"] + [f"{w} film,pos" for w in POSITIVE * 2] + [f"{w} film,neg" for w in NEGATIVE * 2]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_text_recipe_export_dir_that_is_a_file_fails_before_any_work(tmp_path, script_server):
    (tmp_path / "some_file").write_text("")
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={_reviews_csv(tmp_path / 'reviews.csv')}",
                                       f"--export_dir={tmp_path / 'some_file'}", f"--run_dir={tmp_path / 'run'}")
    assert (f"text_classifier.py: error: --export_dir must be a folder (it is created if missing), but it is a "
            f"file; pass another path. Received: --export_dir={tmp_path / 'some_file'}") in stderr
    assert "Loaded" not in stderr and not (tmp_path / "run").exists()


@pytest.mark.slow  # loads the data and builds the model before failing
def test_text_recipe_fine_tune_at_past_the_layers_fails_before_phase_1(tmp_path, script_server):
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE + ["film"], dim=4)
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={_reviews_csv(tmp_path / 'reviews.csv')}",
                                       f"--word_vectors={vectors}", "--encoder=mean", "--sequence_length=4",
                                       "--fine_tune_at=40", f"--run_dir={tmp_path / 'run'}")
    assert "text_classifier.py: error: An integer fine_tune_at is the index of the first backbone layer" in stderr
    assert "Received: fine_tune_at=40" in stderr
    assert "phase 1 epoch" not in stderr and not (tmp_path / "run").exists()


@pytest.mark.slow  # imports keras-hub
def test_text_recipe_unknown_preset_lists_the_known_ones(tmp_path, script_server):
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={_reviews_csv(tmp_path / 'reviews.csv')}",
                                       "--backbone=bert_smol_en_uncased", f"--run_dir={tmp_path / 'run'}")
    assert "text_classifier.py: error: Unknown keras-hub text preset. Did you mean 'bert_small_en_uncased'" in stderr
    assert "bert_tiny_en_uncased, " in stderr and "Received: backbone='bert_smol_en_uncased'" in stderr
