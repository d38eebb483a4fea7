"""recipes/evaluate.py and tfxfer.evaluation's export path end to end: exports, raw data, reports.

The expected numbers come from the export's own predictions (`tfxfer.prediction`,
or its serving signature called directly), matched to the data by class name.
One image and one text export per module; recipe runs are few (each is a
TensorFlow start-up).
"""

import csv
import json
import logging
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import NEGATIVE, POSITIVE, sentences, write_word_vectors
from _tfds_fake import fake_tfds, indexed_image, labelled_text
from sklearn.metrics import roc_auc_score

import tfxfer
from tfxfer import prediction
from tfxfer.errors import ConfigError
from tfxfer.evaluation import exported_model, labelled_data, report_text, tfds_examples

# tf_flowers' classes in another order than its ClassLabel's (dandelion, daisy, tulips, sunflowers, roses).
EXPORT_NAMES = ["roses", "tulips", "daisy", "dandelion", "sunflowers"]
# The evaluation folders hold two of them (listed as daisy, roses: another order again).
VAL_IMAGES = {"roses": 4, "daisy": 3}
TEXT_NAMES = ["pos", "neg"]  # the export's order; sorted data classes are neg, pos


def _run_recipe(script_server, *flags):
    return script_server.run_recipe("evaluate.py", *flags)


def _png(seed):
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.uniform(0, 255, 3) + rng.normal(0, 30, (20, 24, 3)), 0, 255).astype(np.uint8)
    return tf.io.encode_png(pixels).numpy()


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    """A tiny random 5-class image classifier, exported; its base folder."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv")(inputs)
    backbone = keras.Model(inputs, keras.layers.ReLU(name="relu")(x), name="tiny")
    model = tfxfer.build_image_classifier(backbone, num_classes=5, preprocessing="tf", augmentation=False)
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 20.0)  # A sharper head, so that the images land in several classes.
    base = tmp_path_factory.mktemp("image_export") / "flowers"
    tfxfer.export_saved_model(model, base, class_names=EXPORT_NAMES)
    return str(base)


@pytest.fixture(scope="module")
def image_data(tmp_path_factory):
    """train/ and val/ class folders; val/ has PNGs, a broken PNG, a hidden file and a note."""
    root = tmp_path_factory.mktemp("image_data")
    seed = 0
    for split, counts in (("train", {"daisy": 1, "roses": 1}), ("val", VAL_IMAGES)):
        for name, count in counts.items():
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                seed += 1
                (root / split / name / f"{index}.png").write_bytes(_png(seed))
    (root / "val" / "roses" / "broken.png").write_bytes(b"not a png")
    (root / "val" / "roses" / "._0.png").write_bytes(b"macOS clutter")
    (root / "val" / "daisy" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def image_run(image_export, image_data, tmp_path_factory, script_server):
    output = tmp_path_factory.mktemp("image_run") / "reports" / "flowers.json"
    run = _run_recipe(script_server, f"--model_dir={image_export}", f"--data_dir={image_data}", f"--output={output}",
                      "--top_k=2", "--batch_size=3")
    assert run.returncode == 0, run.stderr[-4000:]
    return run, json.loads(output.read_text(encoding="utf-8")), str(output)


def _good_images(image_data):
    return sorted(str(image_data / "val" / name / f"{i}.png") for name, count in VAL_IMAGES.items()
                  for i in range(count))


def test_image_report_matches_the_exports_own_predictions(image_run, image_export, image_data):
    _, report, _ = image_run
    files = _good_images(image_data)
    truth = [os.path.basename(os.path.dirname(path)) for path in files]
    predicted = prediction.predict_image_files(image_export, files, top_k=2)
    top1 = [result.top_k[0][0] for result in predicted]
    assert len(set(top1)) > 1  # a model that predicts one class would hide mix-ups of rows and columns
    assert report["num_examples"] == len(files) == 7
    assert report["accuracy"] == pytest.approx(np.mean([p == t for p, t in zip(top1, truth)]))
    assert report["top_k_accuracy"] == pytest.approx(
        np.mean([t in [name for name, _ in result.top_k] for result, t in zip(predicted, truth)]))
    # Rows and columns in the export's class order, whatever order the folders are listed in.
    expected = np.zeros((5, 5), int)
    for t, p in zip(truth, top1):
        expected[EXPORT_NAMES.index(t), EXPORT_NAMES.index(p)] += 1
    assert report["confusion_matrix"] == expected.tolist()
    assert report["class_names"] == EXPORT_NAMES
    assert {name: scores["support"] for name, scores in report["per_class"].items()} == {
        "roses": 4, "tulips": 0, "daisy": 3, "dandelion": 0, "sunflowers": 0}
    assert report["classes_without_examples"] == ["tulips", "dandelion", "sunflowers"]
    assert report["skipped_files"] == [str(image_data / "val" / "roses" / "broken.png")]
    assert report["exact_copies"] == {"copies": 0, "copy_groups": 0, "groups_with_different_labels": 0}
    assert report["model_dir"] == os.path.join(image_export, "1")
    assert report["data"]["source"] == str(image_data / "val")


def test_image_recipe_prints_the_table_and_where_it_wrote(image_run):
    run, report, output = image_run
    lines = run.stdout.splitlines()
    assert lines[0] == "Evaluated 7 examples of 5 classes."
    assert f"accuracy          {report['accuracy']:.4f}" in lines
    assert lines[-1] == f"Wrote {output}"
    assert any(line.startswith("Skipped 1 input the model could not read") for line in lines)
    assert "Traceback" not in run.stderr


def test_the_report_goes_beside_the_evaluated_version_by_default(image_export, image_data, tmp_path, script_server):
    base = shutil.copytree(image_export, tmp_path / "flowers")  # a copy: the module's export stays as it was
    run = _run_recipe(script_server, f"--model_dir={base}", f"--data_dir={image_data}", "--batch_size=8")
    assert run.returncode == 0, run.stderr[-4000:]
    output = base / "1" / "evaluation" / "metrics.json"  # the base folder's latest version
    assert run.stdout.splitlines()[-1] == f"Wrote {output}"
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["model_dir"] == str(base / "1") and report["num_examples"] == 7
    assert sorted(os.listdir(base / "1" / "evaluation")) == ["metrics.json"]
    # Where it cannot be written (here a folder in its way), the run stops before the evaluation.
    output.unlink()
    output.mkdir()
    run = _run_recipe(script_server, f"--model_dir={base}", f"--data_dir={image_data}")
    assert run.returncode == 2 and run.stdout == "", run.stderr[-2000:]  # no evaluation, so no table
    assert run.stderr.endswith(f"evaluate.py: error: The report goes beside the evaluated model by default, to "
                               f"{output}, and it cannot be written there; pass --output=FILE (e.g. metrics.json). "
                               f"Received: --model_dir={base}\nRun evaluate.py --helpshort for its flags.\n"), \
        run.stderr[-2000:]


def test_image_folders_are_read_from_val_without_hidden_files(image_data):
    data = labelled_data.read_labelled_data(str(image_data), "image")
    assert data.source == str(image_data / "val")
    assert data.inputs == sorted(_good_images(image_data)[:3]) + sorted(
        _good_images(image_data)[3:] + [str(image_data / "val" / "roses" / "broken.png")])
    assert data.labels == ["daisy"] * 3 + ["roses"] * 5


def test_image_folders_name_the_files_of_other_extensions_they_leave_out(image_data, caplog):
    with caplog.at_level(logging.WARNING, logger="absl"):
        labelled_data.read_labelled_data(str(image_data), "image")
    assert (f"Skipping 1 files of {image_data / 'val'} that are not read as images: only names ending in .jpg, "
            ".jpeg, .png, .gif, .bmp, .webp (any case) are. Convert images in other formats to one of these. "
            f"Skipped e.g. {image_data / 'val' / 'daisy' / 'notes.txt'}") in caplog.text
    assert "._0.png" not in caplog.text  # hidden clutter is left out without a word, as the training loaders do


def test_image_recipe_warns_of_the_files_it_does_not_read_as_images(image_run, image_data):
    run, _, _ = image_run
    assert f"Skipping 1 files of {image_data / 'val'} that are not read as images" in run.stderr
    assert str(image_data / "val" / "daisy" / "notes.txt") in run.stderr


def test_tfds_images_are_evaluated_as_their_stored_bytes(image_export, tmp_path):
    with fake_tfds(tmp_path, "tf_flowers", {"train": range(5), "test": range(5, 15)}, indexed_image):
        data = tfds_examples.read_tfds_examples("tf_flowers", data_dir=str(tmp_path))
    assert data.source == "TFDS tf_flowers split test" and data.kind == "image"
    flowers = ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    assert data.labels == [flowers[index % 5] for index in range(5, 15)]
    assert tf.io.decode_png(data.inputs[0]).numpy().max() == 5  # example 5: a solid image of value 5
    report = exported_model.evaluate_export(image_export, data.inputs, data.labels, top_k=3)
    serve = tf.saved_model.load(os.path.join(image_export, "1")).signatures["serving_default"]
    served = serve(image_bytes=tf.constant(data.inputs))["probabilities"].numpy()
    truth = [EXPORT_NAMES.index(name) for name in data.labels]
    assert report["accuracy"] == pytest.approx(np.mean(served.argmax(axis=1) == truth))
    assert report["per_class"]["daisy"]["support"] == 2 and report["classes_without_examples"] == []


def test_tfds_texts_skip_unlabelled_and_empty_ones(tmp_path):
    splits = {"train": [(b"fine", 1)], "test": [(b"a good film", 1), (b"   ", 0), (b"dull", 0), (b"?", -1)]}
    with fake_tfds(tmp_path, "imdb_reviews", splits, labelled_text):
        data = tfds_examples.read_tfds_examples("imdb_reviews", data_dir=str(tmp_path))
    assert (data.kind, data.inputs, data.labels) == ("text", ["a good film", "dull"], ["pos", "neg"])
    assert data.skipped == {"empty": 1, "no_label": 1}
    with fake_tfds(tmp_path, "imdb_reviews", {"train": [(b"fine", 1)]}, labelled_text), \
            pytest.raises(ConfigError, match=r"no validation or test split.*--split"):
        tfds_examples.read_tfds_examples("imdb_reviews", data_dir=str(tmp_path))


def test_text_folders_are_read_from_val_and_line_files_by_class(tmp_path):
    folders = {"train": {"neg": ["bad"], "pos": ["good"]}, "val": {"neg": ["awful", " "], "pos": ["fine"]}}
    for split, texts in folders.items():
        for name, contents in texts.items():
            (tmp_path / "folders" / split / name).mkdir(parents=True)
            for index, text in enumerate(contents):
                (tmp_path / "folders" / split / name / f"{index}.txt").write_text(text)
    data = labelled_data.read_labelled_data(str(tmp_path / "folders"), "text")
    assert (data.source, data.inputs, data.labels) == (str(tmp_path / "folders" / "val"), ["awful", "fine"],
                                                       ["neg", "pos"])
    assert data.skipped == {"empty": 1}
    (tmp_path / "lines").mkdir()
    (tmp_path / "lines" / "reviews.pos").write_text("good\nfine\n")
    (tmp_path / "lines" / "reviews.neg").write_text("bad\n")
    data = labelled_data.read_labelled_data(str(tmp_path / "lines"), "text")
    assert (data.inputs, data.labels) == (["bad", "good", "fine"], ["neg", "pos", "pos"])
    with pytest.raises(ConfigError, match="label_separator applies to .csv/.tsv data only"):
        labelled_data.read_labelled_data(str(tmp_path / "lines"), "text", label_separator="|")


def test_image_folders_given_as_texts_are_named_as_images(tmp_path):
    for name in ("ants", "bees"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "photo.jpg").write_bytes(tf.io.encode_jpeg(np.zeros((4, 4, 3), np.uint8)).numpy())
    with pytest.raises(ConfigError, match=r"The model takes texts, but the class folders of '.*' hold images: "
                                          r"evaluate an image model on them.*Received: 2 images, e\.g\. '.*photo\.jpg'"):
        labelled_data.read_labelled_data(str(tmp_path), "text")


def test_exact_copies_among_the_inputs_are_counted_and_scored_again(image_export, tmp_path, caplog):
    # _png(1) three times, once labelled otherwise; _png(2) as bytes and again as a file.
    (tmp_path / "copy.png").write_bytes(_png(2))
    inputs = [_png(1), _png(2), _png(1), str(tmp_path / "copy.png"), _png(1), _png(3)]
    labels = ["roses", "daisy", "roses", "daisy", "tulips", "daisy"]
    with caplog.at_level(logging.INFO, logger="absl"):
        report = exported_model.evaluate_export(image_export, inputs, labels, batch_size=4)
    assert report["exact_copies"] == {"copies": 3, "copy_groups": 2, "groups_with_different_labels": 1}
    assert report["num_examples"] == 6  # every copy scored
    assert "3 images in the evaluation data are exact copies of another (2 groups of copies)" in caplog.text
    assert ("1 groups of exact copies among the images in the evaluation data carry different labels, e.g. "
            "'example 0' = 'example 2' = 'example 4': whatever the model predicts, the scores count it wrong on "
            "one of them") in caplog.text
    assert ("3 inputs are exact copies of another (2 groups), each scored again; 1 group carries different "
            "labels (see the log).") in " ".join(report_text.format_report(report).split())
    one_copy = {**report, "exact_copies": {"copies": 1, "copy_groups": 1, "groups_with_different_labels": 0}}
    assert report_text.format_report(one_copy).endswith("1 input is an exact copy of another (1 group), each "
                                                         "scored again.")
    assert "exact cop" not in report_text.format_report({**report, "exact_copies": {
        "copies": 0, "copy_groups": 0, "groups_with_different_labels": 0}})


def test_inputs_that_copy_training_examples_are_counted(image_export, image_data, tmp_path, caplog):
    training = labelled_data.read_labelled_data(str(image_data), "image", part="training")
    assert training.source == str(image_data / "train")
    assert training.inputs == [str(image_data / "train" / name / "0.png") for name in ("daisy", "roses")]
    # The first training image as bytes, and again as a file; another image; bytes of _png(9) on both sides.
    (tmp_path / "again.png").write_bytes((image_data / "train" / "daisy" / "0.png").read_bytes())
    inputs = [(image_data / "train" / "daisy" / "0.png").read_bytes(), str(tmp_path / "again.png"), _png(8), _png(9)]
    with caplog.at_level(logging.WARNING, logger="absl"):
        report = exported_model.evaluate_export(image_export, inputs, ["daisy", "daisy", "roses", "roses"],
                                                batch_size=3, training_examples=training.inputs + [_png(9)])
    assert report["exact_copies"] == {"copies": 1, "copy_groups": 1, "groups_with_different_labels": 0,
                                      "copies_of_training": 3}
    assert report["num_examples"] == 4  # scored all the same
    # Long paths are shortened in the middle: their ends name the files.
    assert ("3 of the 4 images are exact copies of training images in the training data, e.g. 'example 0' = "
            in caplog.text)
    assert "train/daisy/0.png'; '" in caplog.text and "again.png' = '" in caplog.text
    assert "'example 3' = 'training example 2'" in caplog.text
    assert ("the scores count them as unseen, so they overstate the model's accuracy on new images. Evaluate on "
            "data without them.") in caplog.text
    text = " ".join(report_text.format_report(report).split())
    assert text.endswith("1 input is an exact copy of another (1 group), each scored again. 3 inputs are exact "
                         "copies of training examples, scored as unseen: the scores overstate the model on new "
                         "data (see the log).")
    one = {**report, "exact_copies": {"copies": 0, "copy_groups": 0, "groups_with_different_labels": 0,
                                      "copies_of_training": 1}}
    assert " ".join(report_text.format_report(one).split()).endswith(
        " 1 input is an exact copy of a training example, scored as unseen: the scores overstate the model "
        "on new data (see the log).")
    without = exported_model.evaluate_export(image_export, inputs[2:], ["roses", "roses"],
                                             training_examples=training.inputs)
    assert without["exact_copies"]["copies_of_training"] == 0
    with pytest.raises(ConfigError, match=r"pass image file paths \(str\) or image bytes as training_examples\. "
                                          r"Received: a int"):
        exported_model.evaluate_export(image_export, inputs, ["daisy"] * 4, training_examples=[1, 2])
    with pytest.raises(ConfigError, match=r"part must be one of \['evaluation', 'training'\]"):
        labelled_data.read_labelled_data(str(image_data), "image", part="train")


def test_unknown_classes_are_named(image_export):
    with pytest.raises(ConfigError, match=r"unknown classes \['lilies', 'orchids'\] \(2\)"):
        exported_model.evaluate_export(image_export, [_png(1)] * 3, ["roses", "orchids", "lilies"])


@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    """A word-vector binary text classifier whose class 1 is "neg", exported; and a CSV of reviews."""
    folder = tmp_path_factory.mktemp("text")
    write_word_vectors(folder / "vectors.txt", POSITIVE + NEGATIVE, dim=4)
    texts = sentences(POSITIVE, 8, seed=1) + sentences(NEGATIVE, 8, seed=2)
    backbone = tfxfer.load_word_vector_backbone(folder / "vectors.txt", texts, sequence_length=8, encoder="mean",
                                                seed=0)
    model = tfxfer.build_text_classifier(backbone, num_classes=2)
    path = tfxfer.export_saved_model(model, folder / "reviews", class_names=TEXT_NAMES)
    rows = [(text, "pos") for text in texts[:8]] + [(text, "neg") for text in texts[8:]] + [("", "neg")]
    with open(folder / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("review", "sentiment"), *rows])
    return {"path": path, "csv": folder / "reviews.csv", "texts": texts, "folder": folder}


def test_text_csv_report_matches_the_exports_own_predictions(text_export, script_server):
    output = text_export["folder"] / "report.json"
    training = text_export["folder"] / "training.csv"
    texts = text_export["texts"]
    with open(training, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("review", "sentiment"), (texts[0], "pos"), (texts[9], "neg"), ("unseen", "neg")])
    run = _run_recipe(script_server, f"--model_dir={text_export['path']}", f"--data_dir={text_export['csv']}",
                      "--text_column=review", "--label_column=sentiment", f"--output={output}",
                      f"--training_data={training}")
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    truth = ["pos"] * 8 + ["neg"] * 8
    predicted = prediction.predict_texts(text_export["path"], text_export["texts"], top_k=2)
    p_neg = np.array([dict(result.top_k)["neg"] for result in predicted])
    assert report["task"] == "binary" and report["positive_class"] == "neg"
    assert report["accuracy"] == pytest.approx(np.mean([r.top_k[0][0] == t for r, t in zip(predicted, truth)]))
    assert report["roc_auc"] == pytest.approx(roc_auc_score([t == "neg" for t in truth], p_neg))
    assert [s["support"] for s in report["per_class"].values()] == [8, 8]
    assert report["data"]["skipped"] == {"empty": 1}
    assert "ROC AUC" in run.stdout
    copied = sum(text in (texts[0], texts[9]) for text in texts)
    assert copied >= 2 and report["exact_copies"]["copies_of_training"] == copied
    assert report["training_data"]["source"] == str(training) and report["training_data"]["num_examples"] == 3
    assert f"{copied} inputs are exact copies of training examples" in " ".join(run.stdout.split())


def test_a_class_the_model_does_not_know_ends_with_a_message(text_export, script_server):
    data = text_export["folder"] / "other.csv"
    data.write_text("text,label\nthe film was good,pos\nit was fine,meh\n", encoding="utf-8")
    run = _run_recipe(script_server, f"--model_dir={text_export['path']}", f"--data_dir={data}",
                      f"--output={text_export['folder'] / 'never.json'}")
    assert run.returncode == 2
    assert "evaluate.py: error: The evaluation data has classes the model does not know" in run.stderr
    assert "unknown classes ['meh'] (1)" in run.stderr and "Traceback" not in run.stderr
    assert not (text_export["folder"] / "never.json").exists()


def test_missing_model_dir_ends_with_a_message(script_server):
    run = _run_recipe(script_server, "--data_dir=somewhere")
    assert run.returncode == 2
    assert "evaluate.py: error: Pass the export to evaluate: --model_dir=" in run.stderr
    assert "Traceback" not in run.stderr


def test_an_output_path_that_is_a_folder_ends_with_a_message_before_the_evaluation(tmp_path, script_server):
    run = _run_recipe(script_server, "--model_dir=anywhere", "--data_dir=somewhere", f"--output={tmp_path}")
    assert run.returncode == 2
    assert (f"evaluate.py: error: --output is the report's file, but this path is a folder; pass a file path such "
            f"as {tmp_path / 'metrics.json'}. Received: --output={tmp_path}") in run.stderr
    assert "Traceback" not in run.stderr and os.listdir(tmp_path) == []


@pytest.mark.parametrize("flag, message", [
    ("--top_k=0", "--top_k is the k of the top-k accuracy and must be at least 1. Received: --top_k=0"),
    ("--batch_size=0", "--batch_size must be at least 1. Received: --batch_size=0"),
    ("--threshold=2", "--threshold is a probability: pass a value in [0, 1]. Received: --threshold=2"),
])
def test_numbers_out_of_range_fail_before_the_evaluation(flag, message, script_server):
    # Neither the model nor the data exists: the flag's message comes first, not after the whole evaluation.
    stderr = script_server.usage_error("evaluate.py", "--model_dir=nowhere", "--data_dir=somewhere", flag)
    assert f"evaluate.py: error: {message}\n" in stderr


def test_scores_settings_out_of_range_fail_before_the_model_runs(image_export, text_export, monkeypatch):
    def serve(*args):
        raise AssertionError("the model ran before the settings were checked")

    monkeypatch.setattr(exported_model, "_serve", serve)
    with pytest.raises(ConfigError, match=r"^top_k must be a positive integer\. Received: top_k=0$"):
        exported_model.evaluate_export(image_export, [_png(1)], ["roses"], top_k=0)
    with pytest.raises(ConfigError, match=r"^threshold must be a probability in \[0, 1\]\. Received: threshold=2$"):
        exported_model.evaluate_export(text_export["path"], ["good"], [("pos",)], multi_label=True, threshold=2)


def test_an_output_folder_that_cannot_be_written_fails_before_the_evaluation(image_export, image_data,
                                                                           script_server):
    output = "/proc/self/reports/flowers.json"  # /proc/self exists, and no one may make a folder in it
    stderr = script_server.usage_error("evaluate.py", f"--model_dir={image_export}", f"--data_dir={image_data}",
                                       f"--output={output}")
    assert ("evaluate.py: error: --output is the report's file, but its folder cannot be written (/proc/self is not "
            f"writable); pass a path in a folder you can write. Received: --output={output}\n") in stderr
    assert "Evaluating" not in stderr


def test_a_report_that_cannot_be_written_after_the_evaluation_ends_with_a_message(image_export, image_data, tmp_path,
                                                                                 script_server):
    output = tmp_path / "report.json"
    (tmp_path / "report.json.tmp").mkdir()  # in the way of the file the report is first written to
    run = _run_recipe(script_server, f"--model_dir={image_export}", f"--data_dir={image_data}", f"--output={output}")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-4000:]
    assert run.stdout.startswith("Evaluated 7 examples of 5 classes.")  # the table is printed first
    assert f"evaluate.py: error: The report cannot be written to {output} (" in run.stderr
    assert ("); the table above is its summary. Pass --output=FILE in a folder you can write, and run again. "
            f"Received: --output={output}\n") in run.stderr
    assert not output.exists()


def test_a_multi_label_export_is_scored_per_class_at_the_threshold(tmp_path):
    write_word_vectors(tmp_path / "vectors.txt", POSITIVE + NEGATIVE, dim=4)
    texts = sentences(POSITIVE, 4, seed=3) + sentences(NEGATIVE, 4, seed=4)
    backbone = tfxfer.load_word_vector_backbone(tmp_path / "vectors.txt", texts, sequence_length=8, encoder="mean",
                                                seed=0)
    model = tfxfer.build_text_classifier(backbone, num_classes=3, multi_label=True)
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 20.0)
    path = tfxfer.export_saved_model(model, tmp_path / "tags", class_names=["x", "y", "z"])
    labels = [("x", "z"), ("y",), "z", ()] * 2  # a plain name is one class; () none
    report = exported_model.evaluate_export(path, texts, labels, threshold=0.4)
    served = tf.saved_model.load(path).signatures["serving_default"](texts=tf.constant(texts))["probabilities"]
    predicted = served.numpy() > 0.4
    truth = np.array([[name in label for name in "xyz"] for label in labels])
    assert report["task"] == "multilabel" and report["threshold"] == 0.4  # the head, read from the export
    assert report["subset_accuracy"] == pytest.approx(np.mean((predicted == truth).all(axis=1)))
    for column, name in enumerate("xyz"):
        counts = report["per_class"][name]
        assert counts["true_positives"] == int((predicted & truth)[:, column].sum())
        assert counts["false_positives"] == int((predicted & ~truth)[:, column].sum())
        assert counts["support"] == int(truth[:, column].sum())
    single = tfxfer.export_saved_model(tfxfer.build_text_classifier(backbone, num_classes=3), tmp_path / "one",
                                       class_names=["x", "y", "z"])
    with pytest.raises(ConfigError, match=r"predicts one class per example.*Received: e\.g\. \['x', 'z'\]"):
        exported_model.evaluate_export(single, texts, labels)
