"""tfxfer.evaluation.metrics and report_text: values checked against hand-computed ones."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxfer.errors import ConfigError
from tfxfer.evaluation import report_text
from tfxfer.evaluation.keras_model import evaluate_model
from tfxfer.evaluation.metrics import classification_report, multi_task_report

# 8 examples of 3 classes. Predicted (argmax): [a, a, b, b, b, c, c, a].
NAMES = ["a", "b", "c"]
LABELS = [0, 0, 0, 1, 1, 2, 2, 2]
PROBABILITIES = [
    [0.7, 0.2, 0.1],
    [0.6, 0.1, 0.3],
    [0.3, 0.6, 0.1],  # a predicted as b; a is second: top-2 right
    [0.15, 0.8, 0.05],
    [0.2, 0.5, 0.3],
    [0.1, 0.2, 0.7],
    [0.3, 0.1, 0.6],
    [0.5, 0.4, 0.1],  # c predicted as a; c is last: top-2 wrong
]


@pytest.fixture(scope="module")
def three_classes():
    return classification_report(LABELS, PROBABILITIES, NAMES, top_k=2)


def test_confusion_matrix_rows_are_true_classes(three_classes):
    # true a: 2 right, 1 as b; true b: 2 right; true c: 1 as a, 2 right.
    assert three_classes["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]


def test_per_class_precision_recall_f1_support(three_classes):
    # a: predicted 3 times, 2 right (p 2/3); 3 examples, 2 found (r 2/3).
    # b: predicted 3 times, 2 right (p 2/3); 2 examples, both found (r 1); f1 = 2pr/(p+r) = 4/5.
    # c: predicted 2 times, both right (p 1); 3 examples, 2 found (r 2/3); f1 = 4/5.
    expected = {"a": (2 / 3, 2 / 3, 2 / 3, 3), "b": (2 / 3, 1.0, 4 / 5, 2), "c": (1.0, 2 / 3, 4 / 5, 3)}
    for name, (precision, recall, f1, support) in expected.items():
        scores = three_classes["per_class"][name]
        assert scores["precision"] == pytest.approx(precision)
        assert scores["recall"] == pytest.approx(recall)
        assert scores["f1"] == pytest.approx(f1)
        assert scores["support"] == support
    assert list(three_classes["per_class"]) == NAMES


def test_accuracy_top_k_and_averages(three_classes):
    assert three_classes["task"] == "multiclass"
    assert three_classes["num_examples"] == 8 and three_classes["num_classes"] == 3
    assert three_classes["accuracy"] == pytest.approx(6 / 8)
    assert three_classes["top_k"] == 2
    assert three_classes["top_k_accuracy"] == pytest.approx(7 / 8)
    assert three_classes["macro"]["precision"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert three_classes["macro"]["recall"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert three_classes["macro"]["f1"] == pytest.approx((2 / 3 + 4 / 5 + 4 / 5) / 3)
    assert three_classes["weighted"]["recall"] == pytest.approx(6 / 8)  # support-weighted recall is accuracy
    assert three_classes["weighted"]["f1"] == pytest.approx((3 * 2 / 3 + 2 * 4 / 5 + 3 * 4 / 5) / 8)
    assert three_classes["classes_without_examples"] == []
    assert "roc_auc" not in three_classes


def test_report_is_plain_json(three_classes):
    assert json.loads(json.dumps(three_classes)) == three_classes
    assert type(three_classes["accuracy"]) is float and type(three_classes["per_class"]["a"]["support"]) is int


def test_top_k_is_left_out_when_k_covers_every_class():
    report = classification_report(LABELS, PROBABILITIES, NAMES, top_k=3)
    assert "top_k" not in report and "top_k_accuracy" not in report


def test_binary_aucs_from_a_one_column_head():
    # P(yes) of 4 examples. Positive-negative pairs: 0.4>0.1, 0.4<0.6, 0.8>0.1, 0.8>0.6: ROC AUC 3/4.
    # Ranked 0.8(+) 0.6(-) 0.4(+) 0.1(-): precision 1/1 at the first positive, 2/3 at the second: AP 5/6.
    report = classification_report([0, 0, 1, 1], [[0.1], [0.6], [0.4], [0.8]], ["no", "yes"])
    assert report["task"] == "binary" and report["positive_class"] == "yes"
    assert report["roc_auc"] == pytest.approx(3 / 4)
    assert report["pr_auc"] == pytest.approx(5 / 6)
    assert report["confusion_matrix"] == [[1, 1], [1, 1]]  # predicted yes when P(yes) > 0.5
    assert report["accuracy"] == pytest.approx(0.5)
    assert "top_k" not in report


def test_binary_two_columns_give_the_same_report_as_one():
    one = classification_report([0, 0, 1, 1], [[0.1], [0.6], [0.4], [0.8]], ["no", "yes"])
    two = classification_report([0, 0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.2, 0.8]], ["no", "yes"])
    assert two == one


def test_auc_is_undefined_with_one_class_only():
    report = classification_report([1, 1, 1], [[0.2], [0.7], [0.9]], ["no", "yes"])
    assert report["roc_auc"] is None and report["pr_auc"] is None
    assert "every example is of class 'yes'" in report["auc_undefined"]
    assert report["classes_without_examples"] == ["no"]
    assert report["accuracy"] == pytest.approx(2 / 3)


def test_a_class_without_examples_is_listed_and_left_out_of_the_macro_average():
    # Predicted: a, c, a, b. c has no example but is predicted once: precision 0, recall 0 by convention.
    probabilities = [[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]
    report = classification_report([0, 1, 0, 1], probabilities, NAMES)
    assert report["classes_without_examples"] == ["c"]
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["per_class"]["b"]["recall"] == pytest.approx(1 / 2)
    assert report["macro"]["recall"] == pytest.approx((1 + 1 / 2) / 2)  # a and b only
    assert report["macro"]["precision"] == pytest.approx(1.0)
    assert report["confusion_matrix"] == [[2, 0, 0], [0, 1, 1], [0, 0, 0]]


def test_multi_label_per_label_scores_at_the_threshold():
    labels = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
    probabilities = [[0.9, 0.2, 0.4], [0.6, 0.7, 0.1], [0.8, 0.3, 0.2], [0.1, 0.1, 0.3]]
    # Predicted (> 0.5): [1,0,0], [1,1,0], [1,0,0], [0,0,0].
    report = classification_report(labels, probabilities, ["x", "y", "z"], multi_label=True)
    assert report["task"] == "multilabel" and report["threshold"] == 0.5
    x, y, z = (report["per_class"][name] for name in "xyz")
    # x: tp 2 (examples 0, 2), fp 1 (example 1), fn 0, tn 1.
    assert (x["true_positives"], x["false_positives"], x["false_negatives"], x["true_negatives"]) == (2, 1, 0, 1)
    assert (x["precision"], x["recall"], x["f1"], x["support"]) == pytest.approx((2 / 3, 1.0, 0.8, 2))
    # y: tp 1, fn 1 (example 2): precision 1, recall 1/2.
    assert (y["precision"], y["recall"], y["f1"], y["support"]) == pytest.approx((1.0, 0.5, 2 / 3, 2))
    # z: never predicted, one example missed.
    assert (z["precision"], z["recall"], z["f1"], z["support"]) == (0.0, 0.0, 0.0, 1)
    # micro: tp 3, fp 1, fn 2.
    assert report["micro"] == pytest.approx({"precision": 3 / 4, "recall": 3 / 5, "f1": 2 / 3})
    assert report["macro"]["f1"] == pytest.approx((0.8 + 2 / 3 + 0) / 3)
    assert report["subset_accuracy"] == pytest.approx(1 / 4)  # only example 3 (no class) is all right
    assert report["label_accuracy"] == pytest.approx(9 / 12)
    assert "confusion_matrix" not in report and "accuracy" not in report

    lower = classification_report(labels, probabilities, ["x", "y", "z"], multi_label=True, threshold=0.35)
    # z is now predicted for examples 0 (0.4, right) and... none other: precision 1, recall 1.
    assert lower["per_class"]["z"]["precision"] == 1.0 and lower["per_class"]["z"]["recall"] == 1.0


@pytest.mark.parametrize("labels, probabilities, names, kwargs, match", [
    ([], np.zeros((0, 3)), NAMES, {}, "no examples to evaluate"),
    ([0, 3], [[0.5, 0.3, 0.2]] * 2, NAMES, {}, r"class ids in \[0, 3\).*Received: \[3\]"),
    ([0, 1], [[0.5, 0.5]] * 2, NAMES, {}, "one column per class name"),
    ([0], [[0.5, 0.5, 0.0]], ["a", "a", "b"], {}, r"unique.*\['a'\]"),
    ([[1, 0]], [[0.5, 0.5]], ["a", "b"], {}, "multi_label=True"),
    ([[2, 0]], [[0.5, 0.5]], ["a", "b"], {"multi_label": True}, "0 or 1"),
    ([0], [[np.nan, 0.5]], ["a", "b"], {}, "finite"),
    ([0], [[0.5, 0.5]], ["a", "b"], {"top_k": 0}, "top_k"),
])
def test_bad_inputs_are_config_errors(labels, probabilities, names, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        classification_report(labels, probabilities, names, **kwargs)


def test_class_names_as_labels_are_told_to_become_class_ids():
    names = (r"class ids here \(ints from 0 to 2, in class_names order\), not class names or other values: turn "
             r"names into ids with \[class_names\.index\(name\) for name in labels\]\. Received: e\.g\. "
             r"\['a', 'b', None\]")
    with pytest.raises(ConfigError, match=names):
        classification_report(["a", "b", None], PROBABILITIES[:3], NAMES)
    with pytest.raises(ConfigError, match="Task 'letters': Labels are " + names):
        multi_task_report({"letters": ["a", "b", None]}, {"letters": PROBABILITIES[:3]}, {"letters": NAMES},
                          {"letters": False})
    # Class ids held as Python objects (a pandas object column, say) are still ids.
    held = classification_report(np.asarray(LABELS, dtype=object), PROBABILITIES, NAMES, top_k=2)
    assert held == classification_report(LABELS, PROBABILITIES, NAMES, top_k=2)


@pytest.mark.parametrize("report, received", [
    ({"x": 1}, r"a dict without 'task', 'num_examples', 'num_classes', 'class_names', 'per_class', "
               r"'classes_without_examples' \(its keys: \['x'\]\)"),
    ({"tasks": {}}, r"a dict without 'num_examples' \(its keys: \['tasks'\]\)"),
    ("Evaluated 8 examples", "report of type str"),
])
def test_format_report_refuses_what_is_not_a_report(report, received):
    with pytest.raises(ConfigError, match=r"^report must be a report dict as classification_report, evaluate_model "
                                          r"or evaluate_export return it \(a multi-task one too, with a report per "
                                          r"task under 'tasks'\); format_report shows nothing else\. "
                                          rf"Received: {received}$"):
        report_text.format_report(report)


def test_format_report_shows_scores_and_the_confused_pairs(three_classes):
    text = report_text.format_report(three_classes)
    lines = text.splitlines()
    assert lines[0] == "Evaluated 8 examples of 3 classes."
    assert any(line.split() == ["b", "0.667", "1.000", "0.800", "2"] for line in lines)
    assert any(line.split() == ["macro", "avg", "0.778", "0.778", "0.756", "8"] for line in lines)
    assert "accuracy          0.7500" in lines and "top-2 accuracy    0.8750" in lines
    assert lines[-2:] == ["  a -> b: 1", "  c -> a: 1"]


def test_format_report_of_fifty_long_class_names_fits_a_console():
    rng = np.random.default_rng(0)
    names = [f"class number {i} with a really quite long descriptive name that goes on" for i in range(50)]
    labels = np.repeat(np.arange(50), 4)
    probabilities = rng.dirichlet(np.ones(50), size=200)
    probabilities[:8, 1] = 2.0  # 4 examples of class 0 and 4 of class 1 predicted as class 1: 0 -> 1 four times
    report = classification_report(labels, probabilities / probabilities.sum(axis=1, keepdims=True), names)
    report["skipped_files"] = ["/data/" + "x" * 200 + ".jpg"]
    lines = report_text.format_report(report).splitlines()
    assert max(len(line) for line in lines) <= report_text.MAX_LINE
    short = names[0][:report_text.NAME_WIDTH - 1] + "…"
    start = lines.index(next(line for line in lines if line.startswith("Most confused")))
    confused = lines[start + 1:start + 1 + report_text.CONFUSED_PAIRS]
    assert len(confused) == report_text.CONFUSED_PAIRS
    assert confused[0] == f"  {short} -> {names[1][:report_text.NAME_WIDTH - 1]}…: 4"
    assert any(line.startswith("Skipped 1 input ") for line in lines)


def test_format_report_of_a_multi_label_and_a_binary_report():
    multi = classification_report([[1, 0], [0, 1]], [[0.9, 0.2], [0.3, 0.4]], ["x", "y"], multi_label=True)
    text = report_text.format_report(multi)
    assert "subset accuracy   0.5000" in text and "micro avg" in text and "Most confused" not in text
    binary = classification_report([0, 0, 1, 1], [[0.1], [0.6], [0.4], [0.8]], ["no", "yes"])
    text = report_text.format_report(binary)
    assert "ROC AUC           0.7500" in text and "PR AUC            0.8333  (average precision of yes)" in text
    undefined = report_text.format_report(classification_report([1, 1], [[0.2], [0.7]], ["no", "yes"]))
    assert "undefined: every example is of class 'yes'" in undefined
    assert "Classes without examples" in undefined


def _dense(units, activation, kernel):
    model = keras.Sequential([keras.Input((len(kernel),)), keras.layers.Dense(units, activation=activation)])
    model.layers[-1].set_weights([np.asarray(kernel, np.float32), np.zeros(units, np.float32)])
    return model


def test_evaluate_model_collects_every_batch():
    # An identity kernel: the predicted class is the input's largest coordinate.
    model = _dense(3, "softmax", np.eye(3))
    predicted, labels = [0, 1, 2, 2, 1], [0, 1, 2, 1, 1]
    inputs = 5.0 * np.eye(3, dtype=np.float32)[predicted]
    report = evaluate_model(model, tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(2), NAMES, top_k=2)
    assert report["num_examples"] == 5 and report["accuracy"] == pytest.approx(4 / 5)
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 2, 1], [0, 0, 1]]
    assert report["classes_without_examples"] == []


def test_evaluate_model_of_a_binary_head():
    # P(yes) = sigmoid(x), in the order of x: yes at 3 and -1, no at -2 and 1. Pairs: 3>-2, 3>1, -1>-2, -1<1.
    model = _dense(1, "sigmoid", [[1.0]])
    inputs = np.array([[-2.0], [3.0], [1.0], [-1.0]], np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, [0, 1, 0, 1])).batch(3)
    report = evaluate_model(model, dataset, ["no", "yes"])
    assert report["roc_auc"] == pytest.approx(3 / 4)
    assert report["confusion_matrix"] == [[1, 1], [1, 1]]


@pytest.mark.parametrize("data, message", [
    # fine_tune refuses each of these before training; evaluate_model met them as errors from inside Keras.
    (tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), np.float32), np.zeros(4, np.int32))),
     r"so the data must be batched: dataset\.batch\(32\)\. Received: dataset's inputs of shape \(2,\)"),
    (tf.data.Dataset.from_tensor_slices((np.zeros((4, 3), np.float32), np.zeros(4, np.int32))).batch(2),
     r"The model takes inputs of shape \(None, 2\); make the data match it\. Received: dataset's inputs of shape "
     r"\(None, 3\)"),
    (tf.data.Dataset.from_tensor_slices((["a good film", "a bad one"], [1, 0])).batch(2),
     r"not strings; the data holds raw strings: map them to token ids, data\.map_inputs\(model\.preprocessor\)"),
])
def test_evaluate_model_refuses_inputs_that_do_not_fit_the_model_with_the_fix(data, message):
    with pytest.raises(ConfigError, match=message):
        evaluate_model(_dense(2, "softmax", np.eye(2)), data, ["a", "b"])


def test_one_hot_labels_for_a_single_label_report_are_told_to_take_their_argmax():
    with pytest.raises(ConfigError, match=r"one class id per example, shape \(2,\).*for one-hot rows, their argmax "
                                          r"\(np\.argmax\(labels, axis=-1\)\).*Received: labels of shape \(2, 2\)"):
        classification_report([[1, 0], [0, 1]], [[0.9, 0.1], [0.2, 0.8]], ["x", "y"])


def test_evaluate_model_needs_data():
    with pytest.raises(ConfigError, match="no dataset to evaluate on"):
        evaluate_model(_dense(2, "softmax", np.eye(2)), None, ["a", "b"])
    empty = tf.data.Dataset.from_tensor_slices((np.zeros((0, 2), np.float32), np.zeros(0, np.int32))).batch(2)
    with pytest.raises(ConfigError, match="dataset to evaluate on is empty"):
        evaluate_model(_dense(2, "softmax", np.eye(2)), empty, ["a", "b"])
