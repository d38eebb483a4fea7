"""The recipes with --label_columns: a head per task, trained, reported and exported end to end."""

import json

import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import NEGATIVE, POSITIVE, save_tiny_bert_preset, sentences


def _tickets_csv(path):
    """Texts with a sentiment, and a `topic` cell ("plot" or "film") left empty in every fourth row."""
    rows = ["text,Sentiment,topic"]
    for words, sentiment, seed in ((POSITIVE, "pos", 0), (NEGATIVE, "neg", 1)):
        for index, text in enumerate(sentences(words, 16, seed)):
            topic = "" if index % 4 == 0 else ("plot" if "plot" in text.split() else "film")
            rows.append(f"{text},{sentiment},{topic}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_text_recipe_trains_reports_and_exports_a_head_per_label_column(tmp_path, script_server):
    preset = save_tiny_bert_preset(tmp_path / "bert")
    path = _tickets_csv(tmp_path / "tickets.csv")
    process = script_server.run_recipe(
        "text_classifier.py", f"--data_dir={path}", "--label_columns=Sentiment,topic",
        "--task_loss_weights=topic=0.5", f"--backbone={preset}", "--sequence_length=8", "--batch_size=8",
        "--epochs=1", "--fine_tune_epochs=1", "--warmup_examples=2", f"--run_dir={tmp_path / 'run'}",
        f"--export_dir={tmp_path / 'exports'}", "--model_name=tickets", timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["data"]["class_names"] == {"sentiment": ["neg", "pos"], "topic": ["film", "plot"]}
    for phase in ("phase1", "phase2"):
        assert {"val_sentiment_accuracy", "val_topic_accuracy"} <= set(metrics[phase])
    evaluation = metrics["evaluation"]["tasks"]
    # Every fourth row has no topic: the topic report leaves those out and says how many.
    assert evaluation["sentiment"]["num_examples"] == metrics["data"]["validation_size"]
    assert evaluation["topic"]["num_examples"] + evaluation["topic"]["missing_labels"] == evaluation[
        "sentiment"]["num_examples"]
    version = tmp_path / "exports" / "tickets" / "1"
    outputs = tf.saved_model.load(str(version)).signatures["serving_default"](
        texts=tf.constant(["the plot was good", "it was awful"]))
    assert outputs["probabilities_sentiment"].shape == (2, 2) and outputs["probabilities_topic"].shape == (2, 2)
    assert set(outputs["class_names_topic"].numpy().tolist()) <= {b"film", b"plot"}
    exported = json.loads((version / "assets.extra" / "tfxfer_metadata.json").read_text(encoding="utf-8"))
    assert exported["tasks"]["topic"]["class_names"] == ["film", "plot"]
    # The export evaluated on the CSV it came from: a report per task, the rows without a topic left out of its.
    process = script_server.run_recipe("evaluate.py", f"--model_dir={version}", f"--data_dir={path}",
                                       f"--output={tmp_path / 'report.json'}")
    assert process.returncode == 0, process.stderr[-4000:]
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["tasks"]["sentiment"]["num_examples"] == 32
    assert (report["tasks"]["topic"]["num_examples"], report["tasks"]["topic"]["missing_labels"]) == (24, 8)
    assert "== Task topic (binary, 2 classes) ==" in process.stdout


@pytest.mark.slow
def test_image_recipe_trains_on_a_csv_of_image_paths_with_a_label_column_per_task(tmp_path, script_server):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    rows = ["path,species,grade"]
    for index in range(24):
        colour = index % 3
        pixels = np.full((40, 40, 3), 30, np.uint8)
        pixels[..., colour] = 220
        pixels = np.clip(pixels + rng.integers(-10, 10, pixels.shape), 0, 255).astype(np.uint8)
        tf.io.write_file(str(tmp_path / "images" / f"{index}.png"), tf.io.encode_png(pixels))
        grade = "" if index % 5 == 0 else ("good" if index % 2 else "poor")
        rows.append(f"images/{index}.png,{['red', 'green', 'blue'][colour]},{grade}")
    (tmp_path / "plants.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    process = script_server.run_recipe(
        "image_classifier.py", f"--data_dir={tmp_path / 'plants.csv'}", "--image_column=path",
        "--label_columns=species,grade", "--backbone=mobilenet_v2", "--weights=none", "--alpha=0.35",
        "--image_size=32", "--batch_size=8", "--validation_split=0.25", "--epochs=1", "--fine_tune_epochs=1",
        "--top_k=2", f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}",
        "--model_name=plants", timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["data"]["class_names"] == {"species": ["blue", "green", "red"], "grade": ["good", "poor"]}
    signature = tf.saved_model.load(str(tmp_path / "exports" / "plants" / "1")).signatures["serving_default"]
    image = tf.io.encode_png(np.full((40, 40, 3), 100, np.uint8))
    outputs = signature(image_bytes=tf.stack([image, image]))
    assert outputs["top_k_class_names_species"].shape == (2, 2) and outputs["top_k_scores_grade"].shape == (2, 2)
    assert outputs["probabilities_species"].shape == (2, 3) and outputs["class_ids_grade"].shape == (2,)


@pytest.mark.parametrize("recipe, flags, message", [
    ("text_classifier.py", ["--label_columns=a,b", "--distill_into=student"], "--distill_into works on a one-head"),
    ("text_classifier.py", ["--label_columns=a,b", "--label_column=c"], "--label_column works on a one-head"),
    ("text_classifier.py", ["--task_loss_weights=a=2"], "--label_columns, which is not set"),
    ("image_classifier.py", ["--label_columns=a", "--task_loss_weights=a:2"], "task=weight entries"),
    ("image_classifier.py", ["--label_columns=a", "--tflite_dir=out"], "--tflite_dir works on a one-head"),
])
def test_multi_task_flags_that_cannot_work_are_usage_errors(tmp_path, script_server, recipe, flags, message):
    data = _tickets_csv(tmp_path / "data.csv")
    assert message in script_server.usage_error(recipe, f"--data_dir={data}", *flags, f"--run_dir={tmp_path / 'run'}")


@pytest.mark.parametrize("weights, message", [
    ("Sentiment=2", "--task_loss_weights names tasks the data does not have; its tasks are ['sentiment', 'topic'] "
                    "(the --label_columns lower-cased, other characters than a-z, 0-9 and _ as _). Received: "
                    "['Sentiment']"),
    ("topic=0", "--task_loss_weights takes a finite weight > 0 per task, e.g. priority=0.5 (to leave a task out, "
                "leave its column out of --label_columns). Received: 'topic=0'"),
    ("topic=2,topic=0.5", "--task_loss_weights weighs task 'topic' twice; give each task one weight. Received: "
                          "--task_loss_weights=topic=2,topic=0.5"),
])
def test_task_loss_weights_are_checked_against_the_columns_before_any_work(tmp_path, script_server, weights, message):
    data = _tickets_csv(tmp_path / "data.csv")  # headers text, Sentiment, topic
    # A backbone that is not there: the weights are checked before it is looked for, and before the data is read.
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={data}", "--label_columns=Sentiment,topic",
                                       f"--task_loss_weights={weights}", f"--backbone={tmp_path / 'no_preset'}",
                                       f"--run_dir={tmp_path / 'run'}")
    assert f"text_classifier.py: error: {message}" in stderr, stderr[-2000:]
    assert "Loaded csv texts" not in stderr


def test_label_columns_match_headers_whatever_their_case_unless_two_headers_do(tmp_path, script_server):
    data = _tickets_csv(tmp_path / "data.csv")  # headers text, Sentiment, topic
    outputs = [f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}"]
    # Past the columns, as the tasks are named (sentiment, topic), to the backbone: a folder that is not there.
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={data}", "--label_columns=sentiment,TOPIC",
                                       f"--backbone={tmp_path / 'no_preset'}", *outputs)
    assert "text_classifier.py: error: The text backbone looks like a local folder, but there is no folder at that " \
           "path." in stderr, stderr[-2000:]
    both = tmp_path / "both.csv"
    both.write_text("text,Topic,topic\nthe plot,plot,film\n", encoding="utf-8")
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={both}", "--label_columns=TOPIC",
                                       f"--backbone={tmp_path / 'no_preset'}", *outputs)
    assert stderr.endswith("text_classifier.py: error: both.csv has columns 'Topic' and 'topic', which differ only by "
                           "case, and label_columns= matches headers whatever their case (tasks are named "
                           "lower-cased), so 'TOPIC' could be either. Write it exactly as one of them, or rename the "
                           "others. Received: 'TOPIC' in label_columns\n"), stderr[-2000:]
    assert not (tmp_path / "run").exists()
