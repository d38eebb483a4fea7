"""Evaluation and run reports of multi-task classifiers: a report per task, missing labels left out and counted.

Expected numbers are computed here with numpy from the model's (or the export's) own
probabilities, on the examples labelled for each task.
"""

import json
import os

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

import run_report  # recipes/run_report.py
import tfxfer
from tfxfer import prediction
from tfxfer.errors import ConfigError
from tfxfer.evaluation import exported_model, labelled_data, report_text
from tfxfer.export import layout
from tfxfer.reports import plots
from tfxfer.training.results import FineTuneResult, PhaseResult

TASKS = {"species": 3, "grade": 2, "tags": tfxfer.Task(4, multi_label=True)}
CLASS_NAMES = {"species": ["cat", "dog", "fox"], "grade": ["low", "high"], "tags": ["w", "x", "y", "z"]}
NUM_EXAMPLES = 24


@pytest.fixture(scope="module")
def model():
    tfxfer.seed_everything(3)
    model = tfxfer.build_image_classifier("mobilenet_v2", tasks=TASKS, weights=None, image_size=32, alpha=0.35)
    for task in TASKS:  # Sharper heads, so that the examples land in several classes.
        kernel = model.get_layer(f"predictions_{task}").kernel
        kernel.assign(kernel * 30.0)
    return model


@pytest.fixture(scope="module")
def data():
    """Images and dict labels with missing ones: species 0-4, grade 5, tags 7 and 8."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (NUM_EXAMPLES, 32, 32, 3)).astype("float32")
    species = rng.integers(0, 3, NUM_EXAMPLES)
    species[:5] = -1
    grade = rng.integers(0, 2, NUM_EXAMPLES)
    grade[5] = -1
    tags = rng.integers(0, 2, (NUM_EXAMPLES, 4)).astype("float32")
    tags[[7, 8]] = -1.0
    return images, {"species": species, "grade": grade, "tags": tags}


def _dataset(images, labels, batch_size=5):
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


@pytest.fixture(scope="module")
def evaluation(model, data):
    images, labels = data
    return tfxfer.evaluate_model(model, _dataset(images, labels), CLASS_NAMES)


@pytest.fixture(scope="module")
def predicted(model, data):
    return {task: np.asarray(values) for task, values in model.predict(data[0], verbose=0).items()}


def test_one_report_per_task_on_the_labelled_examples(evaluation, data, predicted):
    _, labels = data
    assert list(evaluation["tasks"]) == list(TASKS) and evaluation["num_examples"] == NUM_EXAMPLES
    species = evaluation["tasks"]["species"]
    kept = labels["species"] != -1
    assert species["task"] == "multiclass" and species["missing_labels"] == 5 and species["num_examples"] == 19
    expected = np.argmax(predicted["species"][kept], axis=1) == labels["species"][kept]
    assert species["accuracy"] == pytest.approx(expected.mean())
    assert np.sum(species["confusion_matrix"]) == 19
    assert [species["per_class"][name]["support"] for name in CLASS_NAMES["species"]] == np.bincount(
        labels["species"][kept], minlength=3).tolist()
    grade = evaluation["tasks"]["grade"]
    kept = labels["grade"] != -1
    assert grade["task"] == "binary" and grade["missing_labels"] == 1 and grade["num_examples"] == 23
    assert predicted["grade"].shape == (NUM_EXAMPLES, 1)  # one sigmoid unit: P(high)
    expected = (predicted["grade"][kept, 0] > 0.5) == labels["grade"][kept]
    assert grade["accuracy"] == pytest.approx(expected.mean()) and grade["positive_class"] == "high"


def test_a_multi_label_task_is_scored_per_class_at_the_threshold(evaluation, data, predicted):
    _, labels = data
    tags = evaluation["tasks"]["tags"]
    kept = ~(labels["tags"] == -1).all(axis=1)
    truth, guessed = labels["tags"][kept].astype(bool), predicted["tags"][kept] > 0.5
    assert tags["task"] == "multilabel" and tags["missing_labels"] == 2 and tags["num_examples"] == 22
    assert "confusion_matrix" not in tags
    assert tags["subset_accuracy"] == pytest.approx((guessed == truth).all(axis=1).mean())
    assert tags["label_accuracy"] == pytest.approx((guessed == truth).mean())
    for column, name in enumerate(CLASS_NAMES["tags"]):
        assert tags["per_class"][name]["true_positives"] == int((guessed & truth)[:, column].sum())
        assert tags["per_class"][name]["false_positives"] == int((guessed & ~truth)[:, column].sum())
    # The run's accuracy is the tasks' mean, as training logs it (multi-label: the label accuracy).
    reports = evaluation["tasks"]
    assert evaluation["accuracy"] == pytest.approx(
        np.mean([reports["species"]["accuracy"], reports["grade"]["accuracy"], tags["label_accuracy"]]))
    json.dumps(evaluation)  # plain JSON


def test_a_task_without_any_label_is_reported_empty(model, data):
    images, labels = data
    labels = {**labels, "grade": np.full(NUM_EXAMPLES, -1)}
    report = tfxfer.evaluate_model(model, _dataset(images, labels), CLASS_NAMES)
    assert report["tasks"]["grade"] == {"task": "binary", "num_examples": 0, "num_classes": 2,
                                        "class_names": ["low", "high"], "missing_labels": NUM_EXAMPLES}
    assert report["accuracy"] == pytest.approx(
        np.mean([report["tasks"]["species"]["accuracy"], report["tasks"]["tags"]["label_accuracy"]]))
    assert "No example has a grade label: nothing to report." in tfxfer.format_report(report)


def test_multi_task_mistakes_are_config_errors(model, data):
    images, labels = data
    with pytest.raises(ConfigError, match=r"class_names as a dict of its tasks.*Received: class_names of list"):
        tfxfer.evaluate_model(model, _dataset(images, labels), ["cat", "dog", "fox"])
    with pytest.raises(ConfigError, match=r"Task 'grade' has 2 classes.*Received: 3 names"):
        tfxfer.evaluate_model(model, _dataset(images, labels), {**CLASS_NAMES, "grade": ["a", "b", "c"]})
    with pytest.raises(ConfigError, match=r"labels that are a dict of its tasks.*Received: labels of EagerTensor"):
        tfxfer.evaluate_model(model, _dataset(images, labels["species"]), CLASS_NAMES)
    with pytest.raises(ConfigError, match=r"Task 'species': Labels must be class ids in \[0, 3\)"):
        tfxfer.evaluate_model(model, _dataset(images, {**labels, "species": labels["species"] + 3}), CLASS_NAMES)


def test_format_report_has_a_section_per_task(evaluation):
    text = report_text.format_report(evaluation)
    lines = text.split("\n")
    assert lines[0].startswith(f"Evaluated {NUM_EXAMPLES} examples on 3 tasks (species, grade, tags); "
                               f"mean accuracy {evaluation['accuracy']:.4f}")
    headings = [line for line in lines if line.startswith("== Task ")]
    assert headings == ["== Task species (multiclass, 3 classes) ==", "== Task grade (binary, 2 classes) ==",
                        "== Task tags (multilabel, 4 classes) =="]
    assert "Left out 5 examples without a species label." in lines
    assert "Left out 1 example without a grade label." in lines
    # Each section is the task's own table, as a one-head report prints it.
    for task in TASKS:
        assert report_text.format_report(evaluation["tasks"][task]) in text
    assert "ROC AUC" in text and "subset accuracy" in text and "Most confused" in text
    assert max(len(line) for line in lines) <= report_text.MAX_LINE


# Exports: a hand-built SavedModel with a multi-task export's outputs and metadata.

EXPORT_TABLES = {  # probabilities of the text "i", row i
    "species": [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1], [0.1, 0.3, 0.6]],
    "grade": [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.55, 0.45]],
    "tags": [[0.9, 0.1, 0.6, 0.2], [0.2, 0.7, 0.1, 0.9], [0.6, 0.6, 0.6, 0.1], [0.1, 0.1, 0.1, 0.1],
             [0.8, 0.3, 0.2, 0.7]],
}
EXPORT_HEADS = {"species": "multiclass", "grade": "binary", "tags": "multilabel"}


class _TaskServing(tf.Module):
    """serving_default(texts) -> probabilities_<task>: row int(text) of each task's table; other texts fail."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, texts):
        rows = tf.strings.to_number(texts, tf.int32)
        return {layout.task_output(layout.PROBABILITIES, task): tf.gather(tf.constant(table, tf.float32), rows)
                for task, table in EXPORT_TABLES.items()}


@pytest.fixture(scope="module")
def task_export(tmp_path_factory):
    version = tmp_path_factory.mktemp("export") / "pets" / "1"
    module = _TaskServing()
    tf.saved_model.save(module, str(version), signatures={"serving_default": module.serve.get_concrete_function()})
    metadata = {"tasks": {task: {"head": EXPORT_HEADS[task], "class_names": CLASS_NAMES[task]}
                          for task in EXPORT_TABLES}}
    (version / layout.EXTRA_ASSETS_DIR).mkdir()
    (version / layout.EXTRA_ASSETS_DIR / layout.METADATA_FILE).write_text(json.dumps(metadata))
    return str(version.parent)


def test_an_export_is_evaluated_per_task_through_its_signature(task_export):
    texts = ["0", "1", "2", "3", "4", "not a number", "1", "2"]
    labels = {"species": ["cat", "dog", None, "cat", "fox", "dog", "fox", "fox"],
              "grade": ["low", "high", "high", None, "", "low", "low", "high"],
              "tags": [("w", "y"), ("x", "z"), None, ("w",), "w", (), ("x", "z"), ()]}
    report = exported_model.evaluate_export(task_export, texts, labels)
    assert report["model_dir"] == os.path.join(task_export, "1")
    assert report["skipped_files"] == ["not a number"]  # the signature refused it; the others still count
    assert report["num_examples"] == 7
    rows = [0, 1, 2, 3, 4, 1, 2]  # the table rows of the texts read
    kept_labels = {task: [values[i] for i in (0, 1, 2, 3, 4, 6, 7)] for task, values in labels.items()}
    species = report["tasks"]["species"]
    right = [np.argmax(EXPORT_TABLES["species"][row]) == CLASS_NAMES["species"].index(label)
             for row, label in zip(rows, kept_labels["species"]) if label]
    assert species["num_examples"] == 6 and species["missing_labels"] == 1
    assert species["accuracy"] == pytest.approx(np.mean(right))
    grade = report["tasks"]["grade"]
    right = [(EXPORT_TABLES["grade"][row][1] > 0.5) == (label == "high")
             for row, label in zip(rows, kept_labels["grade"]) if label]
    assert grade["num_examples"] == 5 and grade["missing_labels"] == 2  # None and "" are no label
    assert grade["accuracy"] == pytest.approx(np.mean(right))
    tags = report["tasks"]["tags"]
    labelled = [(row, label) for row, label in zip(rows, kept_labels["tags"]) if label is not None]
    truth = np.array([[name in ((label,) if isinstance(label, str) else label) for name in CLASS_NAMES["tags"]]
                      for _, label in labelled])
    guessed = np.array([EXPORT_TABLES["tags"][row] for row, _ in labelled]) > 0.5
    assert tags["num_examples"] == 6 and tags["missing_labels"] == 1  # () is a label: none of the classes
    assert tags["label_accuracy"] == pytest.approx((guessed == truth).mean())
    # "1" and "2" are there twice; the two "1"s differ on species and grade, the "2"s only where one has no label.
    assert report["exact_copies"] == {"copies": 2, "copy_groups": 2, "groups_with_different_labels": 1}
    text = report_text.format_report(report)
    assert "== Task tags (multilabel, 4 classes) ==" in text and "Skipped 1 input the model could not read" in text
    assert ("2 inputs are exact copies of another (2 groups), each scored again; 1 group carries different labels"
            in " ".join(text.split()))


def test_an_export_can_be_evaluated_on_some_of_its_tasks_and_names_mistakes(task_export):
    model = prediction.load_serving_model(task_export)
    assert model.kind == "text" and model.class_names is None
    assert {task: t.multi_label for task, t in model.tasks.items()} == {"species": False, "grade": False, "tags": True}
    report = exported_model.evaluate_export(model, ["0", "1"], {"grade": ["low", "low"]})
    assert list(report["tasks"]) == ["grade"] and report["tasks"]["grade"]["accuracy"] == 0.5
    with pytest.raises(ConfigError, match=r"Task 'species': .*unknown classes \['wolf'\]"):
        exported_model.evaluate_export(model, ["0"], {"species": ["wolf"]})
    with pytest.raises(ConfigError, match=r"unknown tasks \['colour'\]"):
        exported_model.evaluate_export(model, ["0"], {"colour": ["red"]})
    with pytest.raises(ConfigError, match=r"pass labels as a dict"):
        exported_model.evaluate_export(model, ["0"], ["cat"])
    with pytest.raises(ConfigError, match=r"leave multi_label at None"):
        exported_model.evaluate_export(model, ["0"], {"grade": ["low"]}, multi_label=True)


def test_an_export_of_export_saved_model_is_evaluated_per_task(model, tmp_path):
    path = tfxfer.export_saved_model(model, tmp_path / "pets", class_names=CLASS_NAMES)
    rng = np.random.default_rng(5)
    images = [tf.io.encode_png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).numpy() for _ in range(8)]
    labels = {"species": ["cat", "dog", "fox", None, "cat", "dog", "fox", "cat"],
              "grade": ["low", "high", None, None, "low", "high", "low", "low"],
              "tags": [("w",), ("x", "y"), (), None, ("z",), ("w", "z"), ("y",), ("x",)]}
    report = exported_model.evaluate_export(path, images, labels)
    served = tf.saved_model.load(path).signatures["serving_default"](image_bytes=tf.constant(images))
    species = served["probabilities_species"].numpy()
    kept = [i for i, label in enumerate(labels["species"]) if label]
    expected = [CLASS_NAMES["species"][np.argmax(species[i])] == labels["species"][i] for i in kept]
    assert report["tasks"]["species"]["accuracy"] == pytest.approx(np.mean(expected))
    assert report["tasks"]["species"]["missing_labels"] == 1 and report["tasks"]["grade"]["missing_labels"] == 2
    grade = served["probabilities_grade"].numpy()  # (N, 2): [P(low), P(high)]
    kept = [i for i, label in enumerate(labels["grade"]) if label]
    expected = [CLASS_NAMES["grade"][int(grade[i, 1] > 0.5)] == labels["grade"][i] for i in kept]
    assert report["tasks"]["grade"]["accuracy"] == pytest.approx(np.mean(expected))
    tags = served["probabilities_tags"].numpy()[[0, 1, 2, 4, 5, 6, 7]] > 0.5
    truth = np.array([[name in labels["tags"][i] for name in CLASS_NAMES["tags"]] for i in (0, 1, 2, 4, 5, 6, 7)])
    assert report["tasks"]["tags"]["label_accuracy"] == pytest.approx((tags == truth).mean())


def test_a_task_csv_gives_each_task_its_labels(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text("text,Species,GRADE,tags,note\n0,cat,low,w|y,a\n1,,high,|,b\n2,fox\n3,,,,c\n,dog,low,x,d\n")
    data = labelled_data.read_task_csv(str(path), "text", {"species": False, "grade": False, "tags": True},
                                       input_column="text", label_separator="|")
    assert data.inputs == ["0", "1", "2"]
    assert data.labels == {"species": ["cat", None, "fox"], "grade": ["low", "high", None],
                           "tags": [("w", "y"), None, None]}
    assert data.skipped == {"no_label": 1, "empty": 1}
    assert data.summary()["labelled"] == {"species": 2, "grade": 2, "tags": 1}
    with pytest.raises(ConfigError, match=r"no label column of the model's tasks"):
        labelled_data.read_task_csv(str(path), "text", {"colour": False}, input_column="text")


def test_an_empty_task_csv_says_it_is_empty_and_names_the_columns_it_needs(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("\n\n")
    with pytest.raises(ConfigError, match=r"empty\.csv is empty: it needs a header row naming its columns, "
                                          r"\['text', 'species', 'tags'\] separated by ','"):
        labelled_data.read_task_csv(str(path), "text", {"species": False, "tags": True}, input_column="text")


def test_a_task_csv_without_some_task_columns_names_the_tasks_left_unscored(tmp_path, caplog):
    path = tmp_path / "pets.csv"
    path.write_text("text,Species\n0,cat\n1,dog\n")
    tasks = {"species": False, "grade": False, "tags": True}
    with caplog.at_level("WARNING", logger="absl"):
        data = labelled_data.read_task_csv(str(path), "text", tasks, input_column="text")
    assert data.labels == {"species": ["cat", "dog"]}
    assert ("pets.csv has no label column of the model's task(s) grade, tags: they are not scored (left out of the "
            "report). To score them, add a column headed by each task's name. Its columns are ['text', 'Species'].") \
        in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="absl"):
        training = labelled_data.read_task_csv(str(path), "text", tasks, input_column="text", part="training")
    assert training.inputs == ["0", "1"] and "no label column" not in caplog.text
    assert f"Training data: 2 texts from {path}, labels of tasks species." in caplog.text
    with pytest.raises(ConfigError, match=r"part must be one of \['evaluation', 'training'\]"):
        labelled_data.read_task_csv(str(path), "text", tasks, input_column="text", part="train")


def test_an_image_task_csv_skips_and_counts_rows_whose_file_is_missing(tmp_path, caplog):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"read later, by the model")
    path = tmp_path / "pets.csv"
    path.write_text(f"image,species\nphotos/a.png,cat\nphotos/gone.png,dog\n{tmp_path / 'photos' / 'a.png'},fox\n")
    with caplog.at_level("WARNING", logger="absl"):
        data = labelled_data.read_task_csv(str(path), "image", {"species": False}, input_column="image")
    assert data.inputs == [str(tmp_path / "photos" / "a.png")] * 2
    assert data.labels == {"species": ["cat", "fox"]} and data.skipped == {"missing_file": 1}
    assert "Skipping 1 rows of" in caplog.text and "gone.png" in caplog.text


def test_the_evaluate_recipe_writes_a_report_per_task(task_export, tmp_path, script_server):
    data = tmp_path / "val.csv"
    data.write_text("review,species,grade\n0,cat,low\n1,dog,\n2,cat,high\n")
    training = tmp_path / "train.csv"
    training.write_text("review,species\n2,cat\n4,fox\n")
    output = tmp_path / "report.json"
    run = script_server.run_recipe("evaluate.py", f"--model_dir={task_export}", f"--data_dir={data}",
                                   "--text_column=review", f"--output={output}", f"--training_data={training}")
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["exact_copies"]["copies_of_training"] == 1 and report["training_data"]["num_examples"] == 2
    assert list(report["tasks"]) == ["species", "grade"]  # tags has no column: not evaluated
    assert report["tasks"]["species"]["accuracy"] == pytest.approx(2 / 3)
    assert report["tasks"]["grade"]["missing_labels"] == 1 and report["tasks"]["grade"]["accuracy"] == 0.5
    assert report["data"]["labelled"] == {"species": 3, "grade": 2}
    assert "== Task species (multiclass, 3 classes) ==" in run.stdout and f"Wrote {output}" in run.stdout
    assert ("val.csv has no label column of the model's task(s) tags: they are not scored (left out of the report). "
            "To score them, add a column headed by each task's name. Its columns are ['review', 'species', "
            "'grade'].") in run.stderr
    assert "train.csv has no label column" not in run.stderr  # read for its inputs only: nothing is scored on it
    assert f"Training data: 2 texts from {training}" in run.stderr


def test_the_evaluate_recipe_refuses_a_csv_without_any_task_column(task_export, tmp_path, script_server):
    data = tmp_path / "val.csv"
    data.write_text("review,colour\n0,red\n")
    stderr = script_server.usage_error("evaluate.py", f"--model_dir={task_export}", f"--data_dir={data}",
                                       "--text_column=review", f"--output={tmp_path / 'report.json'}")
    assert stderr.endswith("evaluate.py: error: val.csv has no label column of the model's tasks ['species', 'grade', "
                           "'tags']: add a column per task, headed by the task's name (a column labels the task of "
                           "its header lower-cased, other characters than a-z, 0-9 and _ made _: 'Skin Type' labels "
                           "skin_type). Received: columns ['review', 'colour']\n")
    assert not (tmp_path / "report.json").exists()


# Pictures and the run report.

HISTORY1 = {"loss": [1.2, 0.9], "accuracy": [0.5, 0.6], "species_accuracy": [0.4, 0.5], "grade_accuracy": [0.6, 0.7],
            "val_loss": [1.1, 1.0], "val_accuracy": [0.5, 0.55], "val_species_accuracy": [0.45, 0.5],
            "val_grade_accuracy": [0.55, 0.6], "learning_rate": [0.01, 0.01]}
HISTORY2 = {key: [value + 0.1 for value in values[-1:]] for key, values in HISTORY1.items()}


def test_training_curves_have_an_accuracy_panel_per_task():
    assert plots.history_tasks([HISTORY1, HISTORY2]) == ["species", "grade"]
    fig = plots.training_curves_figure([HISTORY1, HISTORY2])
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy: species", "Accuracy: grade"]
    species_ax = fig.axes[1]
    lines = {line.get_gid(): line for line in species_ax.lines}
    np.testing.assert_allclose(lines["species_accuracy"].get_ydata(), [0.4, 0.5, 0.6])
    np.testing.assert_allclose(lines["val_species_accuracy"].get_ydata(), [0.45, 0.5, 0.6])
    np.testing.assert_allclose(lines["phase_boundary"].get_xdata(), [2, 2])
    # Named tasks: four of them take two rows of panels.
    fig = plots.training_curves_figure([HISTORY1], tasks=["species", "grade", "a", "b"])
    assert len(fig.axes) == 5
    assert "no a_accuracy recorded" in [text.get_text() for text in fig.axes[3].texts]
    # One head: the two panels as before.
    assert [ax.get_title() for ax in plots.training_curves_figure([{"loss": [1.0], "accuracy": [0.5]}]).axes] == [
        "Loss", "Accuracy"]


def test_run_report_writes_task_curves_and_a_confusion_matrix_per_task(evaluation, tmp_path, capsys):
    final = {key: values[-1] for key, values in HISTORY2.items() if key.startswith("val_")}
    result = FineTuneResult(PhaseResult(HISTORY1, 1.0, 2, {"val_species_accuracy": 0.5}, 100),
                            PhaseResult(HISTORY2, 1.0, 1, final, 200))
    run_dir = tmp_path / "run"
    run_report.finish(str(run_dir), {"data": {"train_size": 10}}, result, evaluation, export_path="exports/pets/1")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["evaluation"]["tasks"]["species"]["missing_labels"] == 5
    for picture in ("training_curves.png", "confusion_matrix_species.png", "confusion_matrix_grade.png"):
        width, height = PIL.Image.open(run_dir / picture).size
        assert width > 400 and height > 300, picture
    # No confusion matrix of a multi-label task, and none of the whole run.
    assert not (run_dir / "confusion_matrix_tags.png").exists() and not (run_dir / "confusion_matrix.png").exists()
    printed = capsys.readouterr().out
    assert "== Task grade (binary, 2 classes) ==" in printed and "confusion_matrix_species.png" in printed


def test_a_one_head_run_report_is_unchanged(tmp_path):
    evaluation = tfxfer.classification_report([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], ["cat", "dog"])
    history = {"loss": [0.9], "accuracy": [0.6], "val_loss": [0.8], "val_accuracy": [0.66]}
    result = FineTuneResult(PhaseResult(history, 1.0, 1, {"val_accuracy": 0.66}, 10), None)
    run_report.finish(str(tmp_path), {}, result, evaluation, export_path="e")
    assert "tasks" not in json.loads((tmp_path / "metrics.json").read_text())["evaluation"]
    assert sorted(name for name in os.listdir(tmp_path) if name.endswith(".png")) == [
        "confusion_matrix.png", "training_curves.png"]
