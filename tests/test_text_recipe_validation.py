"""The text recipe's validation data: the data's own validation part when it has one, else a held-out share."""

import json
import os

import pytest
from _text_helpers import NEGATIVE, POSITIVE, write_word_vectors
from _tfds_fake import write_recipe_wrapper
from test_recipes import REPO

import tfxfer
from tfxfer.export.warmup import read_warmup_requests

PER_CLASS = 20  # of which the default tenth, 2 per class, is held out


def _tiny_run_flags(tmp_path, run):
    """A 1-epoch phase-1 run of a mean of tiny word vectors, exporting 4 warmup texts (the first validation
    texts, in order)."""
    vectors = tmp_path / "vectors.txt"
    if not vectors.exists():
        write_word_vectors(vectors, POSITIVE + NEGATIVE + ["film", "plot"], dim=4)
    return [f"--word_vectors={vectors}", "--encoder=mean", "--sequence_length=4", "--batch_size=8", "--epochs=1",
            "--fine_tune_epochs=0", "--warmup_examples=4", f"--run_dir={tmp_path / run}",
            f"--export_dir={tmp_path / run / 'exports'}", "--model_name=reviews"]


def _run(script_server, *flags):
    process = script_server.run_recipe("text_classifier.py", *flags, timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    return process


def _results(run_dir):
    """(metrics.json, the exported warmup texts) of a run."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    warmup = run_dir / "exports" / "reviews" / "1" / "assets.extra" / "tf_serving_warmup_requests"
    texts = [inputs["texts"] for name, inputs in read_warmup_requests(str(warmup)) if name == "serving_default"]
    return metrics, [text.decode() for text in texts[0].tolist()]


@pytest.mark.slow
def test_text_recipe_holds_out_a_tenth_of_a_csv_as_the_loader_splits_it_unless_told_0(tmp_path, script_server):
    path = tmp_path / "reviews.csv"
    rows = ([f"{word} film {i},pos" for i in range(PER_CLASS // 5) for word in POSITIVE]
            + [f"{word} plot {i},neg" for i in range(PER_CLASS // 5) for word in NEGATIVE])
    path.write_text("\n".join(["text,label"] + rows) + "\n", encoding="utf-8")
    process = _run(script_server, f"--data_dir={path}", *_tiny_run_flags(tmp_path, "run"))
    metrics, warmup_texts = _results(tmp_path / "run")
    assert metrics["data"]["train_class_counts"] == [18, 18] and metrics["data"]["validation_size"] == 4
    assert [metrics["evaluation"]["per_class"][name]["support"] for name in ("neg", "pos")] == [2, 2]
    # The split the benchmarks quote ("seeded 90/10"): the loader's, with the recipe's seed and share.
    split = tfxfer.load_text_data(str(path), validation_split=0.1, seed=tfxfer.defaults.TextDefaults().seed)
    assert warmup_texts == [text.decode() for text in split.texts("validation").unbatch().as_numpy_iterator()]
    assert (f"--data_dir={path} is a CSV/TSV file, without a validation part of its own: holding out 10% of each "
            "class for validation (seeded by --seed)") in process.stderr
    assert "--validation_split=0 trains on all of it, without validation" in process.stderr
    assert "No validation data" not in process.stderr
    # An unset flag stays out of flags.txt: its rerun holds out the same share.
    assert "--validation_split" not in (tmp_path / "run" / "flags.txt").read_text()

    process = _run(script_server, f"--data_dir={path}", *_tiny_run_flags(tmp_path, "all"), "--validation_split=0")
    metrics, _ = _results(tmp_path / "all")
    assert metrics["data"]["train_class_counts"] == [20, 20] and metrics["data"]["validation_size"] == 0
    assert "val_loss" not in metrics["phase1"] and metrics["evaluation"] is None
    assert "holding out" not in process.stderr and "No validation data" in process.stderr


@pytest.mark.slow
def test_text_recipe_validates_on_a_tfds_datasets_validation_split_by_default(tmp_path, script_server):
    train = [(f"{word} film {i}".encode(), 1) for i in range(2) for word in POSITIVE] + [
        (f"{word} plot {i}".encode(), 0) for i in range(2) for word in NEGATIVE]
    validation = [(b"good film", 1), (b"awful plot", 0), (b"lovely film", 1), (b"boring plot", 0)]
    wrapper = write_recipe_wrapper(tmp_path / "in_fake_tfds.py", tmp_path / "tfds", "glue/sst2",
                                   {"train": train, "validation": validation}, "labelled_text")
    process = script_server.run(wrapper, os.path.join(REPO, "recipes", "text_classifier.py"), "--tfds_name=glue/sst2",
                                f"--data_dir={tmp_path / 'tfds'}", *_tiny_run_flags(tmp_path, "run"), timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    metrics, warmup_texts = _results(tmp_path / "run")
    assert metrics["data"]["train_class_counts"] == [10, 10] and metrics["data"]["validation_size"] == 4
    assert warmup_texts == [text.decode() for text, _ in validation]
    assert [metrics["evaluation"]["per_class"][name]["support"] for name in ("negative", "positive")] == [2, 2]
    assert "validating on its 'validation' split" in process.stderr and "holding out" not in process.stderr


def test_text_recipe_refuses_a_validation_split_beside_a_val_folder_as_a_usage_error(tmp_path, script_server):
    for split in ("train", "val"):
        for word, name in (("good", "pos"), ("bad", "neg")):
            (tmp_path / "reviews" / split / name).mkdir(parents=True)
            (tmp_path / "reviews" / split / name / "1.txt").write_text(f"{word} film", encoding="utf-8")
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={tmp_path / 'reviews'}",
                                       *_tiny_run_flags(tmp_path, "run"), "--validation_split=0.2")
    assert (f"text_classifier.py: error: {str(tmp_path / 'reviews')!r} already has a validation folder "
            f"({str(tmp_path / 'reviews' / 'val')!r}), so validation_split cannot also carve one out of train/. "
            "Drop validation_split (recipes: leave --validation_split unset, or 0)") in stderr
    assert stderr.rstrip().endswith("Received: validation_split=0.2")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_text_recipe_trains_on_all_of_a_tfds_train_split_with_validation_split_0(tmp_path, script_server):
    train = [(f"{word} film {i}".encode(), 1) for i in range(2) for word in POSITIVE] + [
        (f"{word} plot {i}".encode(), 0) for i in range(2) for word in NEGATIVE]
    wrapper = write_recipe_wrapper(tmp_path / "in_fake_tfds.py", tmp_path / "tfds", "glue/sst2", {"train": train},
                                   "labelled_text")
    process = script_server.run(wrapper, os.path.join(REPO, "recipes", "text_classifier.py"), "--tfds_name=glue/sst2",
                                f"--data_dir={tmp_path / 'tfds'}", *_tiny_run_flags(tmp_path, "run"),
                                "--validation_split=0", timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    metrics, _ = _results(tmp_path / "run")
    # As --validation_split=0 of a CSV: every training text trained on, no validation.
    assert metrics["data"]["train_class_counts"] == [10, 10] and metrics["data"]["validation_size"] == 0
    assert "val_loss" not in metrics["phase1"] and metrics["evaluation"] is None
    assert "holding out" not in process.stderr and "No validation data" in process.stderr
