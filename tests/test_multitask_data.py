"""Tests for multi-task data: `load_text_data(..., label_columns=...)` and `load_image_csv`.

CSVs and images are generated here. Each image is a solid-colour 8x8 PNG or
JPEG whose red channel encodes its row, so every example read back can be
traced to the row that listed it.
"""

import csv
import json
import logging

import numpy as np
import pytest
from _text_helpers import save_tiny_bert_preset
from PIL import Image

import tfxfer
from tfxfer.data import image_csv, load_image_csv, splits, task_labels
from tfxfer.errors import ConfigError

IMAGE_SIZE = (6, 5)


# --- helpers ------------------------------------------------------------------


def _write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _examples(dataset):
    """Every `(inputs, {task: labels})` of a batched dataset, as (list of inputs, {task: stacked labels})."""
    inputs, labels = [], {}
    for batch_inputs, batch_labels in dataset:
        inputs += list(batch_inputs.numpy())
        for task, values in batch_labels.items():
            labels.setdefault(task, []).append(values.numpy())
    return inputs, {task: np.concatenate(values) for task, values in labels.items()}


def _by_text(dataset):
    """`{text: {task: label as a list or int}}` of a text dataset."""
    texts, labels = _examples(dataset)
    return {text.decode(): {task: values[i].tolist() for task, values in labels.items()}
            for i, text in enumerate(texts)}


TICKETS = [  # text, Product, priority
    ("phone screen cracked", "phone", "high"),
    ("laptop will not boot", "laptop", ""),
    ("phone battery drains", "phone", "low"),
    ("invoice question", "", "low"),
    ("nothing to say", "", ""),
    ("laptop fan noisy", "laptop", "high"),
    ("tablet charger", "tablet", "low"),
]


def _tickets(tmp_path, rows=TICKETS, name="tickets.csv"):
    return _write_csv(tmp_path / name, ["text", "Product", "priority"], rows)


# --- text ---------------------------------------------------------------------


def test_text_label_columns_give_one_task_each_with_missing_labels(tmp_path):
    data = tfxfer.load_text_data(_tickets(tmp_path), label_columns=["Product", "priority"], batch_size=4)
    assert data.tasks == {"product": tfxfer.Task(3), "priority": tfxfer.Task(2)}
    assert data.class_names == {"product": ["laptop", "phone", "tablet"], "priority": ["high", "low"]}
    assert data.train_class_counts == {"product": [2, 2, 1], "priority": [2, 3]}
    assert data.skipped == {"undecodable": 0, "empty": 0, "no_label": 1}
    assert data.train_size == 6 and data.validation is None and not data.multi_label
    spec = data.train.element_spec[1]
    assert {task: (s.dtype.name, s.shape.as_list()) for task, s in spec.items()} == {
        "product": ("int64", [None]), "priority": ("int64", [None])}
    assert _by_text(data.train) == {
        "phone screen cracked": {"product": 1, "priority": 0},
        "laptop will not boot": {"product": 0, "priority": -1},
        "phone battery drains": {"product": 1, "priority": 1},
        "invoice question": {"product": -1, "priority": 1},
        "laptop fan noisy": {"product": 0, "priority": 0},
        "tablet charger": {"product": 2, "priority": 1},
    }
    summary = json.loads(json.dumps(data.summary()))
    assert summary["tasks"] == {"product": {"head": "multiclass", "num_classes": 3, "multi_label": False},
                                "priority": {"head": "binary", "num_classes": 2, "multi_label": False}}
    assert summary["class_names"] == data.class_names and summary["train_class_counts"] == data.train_class_counts
    assert summary["skipped"]["no_label"] == 1


def test_text_label_separator_makes_every_label_column_multi_label(tmp_path):
    rows = [("a", "red|round", "x"), ("b", "green", ""), ("c", "", "y|x"), ("d", "red||", "y"), ("e", " | ", "")]
    path = _write_csv(tmp_path / "tags.tsv", ["text", "look", "kind"], rows, delimiter="\t")
    data = tfxfer.load_text_data(path, label_columns=["look", "kind"], label_separator="|", bucket_by_length=False)
    assert data.multi_label and data.tasks == {"look": tfxfer.Task(3, multi_label=True),
                                               "kind": tfxfer.Task(2, multi_label=True)}
    assert data.class_names == {"look": ["green", "red", "round"], "kind": ["x", "y"]}
    assert data.train_class_counts == {"look": [1, 2, 1], "kind": [2, 2]}
    assert data.skipped["no_label"] == 1 and data.changed["empty_class_names"] == 1
    spec = data.train.element_spec[1]
    assert (spec["look"].dtype.name, spec["look"].shape.as_list()) == ("float32", [None, 3])
    assert _by_text(data.train) == {
        "a": {"look": [0, 1, 1], "kind": [1, 0]},
        "b": {"look": [1, 0, 0], "kind": [-1, -1]},
        "c": {"look": [-1, -1, -1], "kind": [1, 1]},
        "d": {"look": [0, 1, 0], "kind": [0, 1]},
    }


def test_text_task_names_come_from_headers_and_one_column_is_one_task(tmp_path):
    assert [task_labels.task_name(c) for c in ("Product Line", "2nd-opinion", "ok_1", "Ünit")] == [
        "product_line", "t_2nd_opinion", "ok_1", "t__nit"]
    path = _write_csv(tmp_path / "t.csv", ["text", "Product Line"], [("a", "x"), ("b", "y"), ("c", "")])
    data = tfxfer.load_text_data(path, label_columns=["Product Line"])
    assert data.tasks == {"product_line": tfxfer.Task(2)} and data.train_size == 2


def test_text_validation_split_is_seeded_and_keeps_every_class_of_every_task_in_training(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(f"text {i}", str(rng.choice(["a", "b", "c"])), "" if i % 3 else ("rare" if i in (3, 6) else "common"))
            for i in range(40)]
    path = _tickets(tmp_path, rows)
    load = lambda seed: tfxfer.load_text_data(path, label_columns=["Product", "priority"],  # noqa: E731
                                              validation_split=0.25, seed=seed, batch_size=8)
    first, again, other = load(1), load(1), load(2)
    assert (first.train_size, first.validation_size) == (30, 10)
    assert _by_text(first.validation) == _by_text(again.validation)
    assert _by_text(first.train) == _by_text(again.train)
    assert _by_text(first.validation) != _by_text(other.validation)
    assert sorted({**_by_text(first.train), **_by_text(first.validation)}) == sorted(row[0] for row in rows)
    for data in (first, other):
        assert all(count > 0 for counts in data.train_class_counts.values() for count in counts)


def test_text_label_columns_warn_of_a_task_the_validation_split_leaves_without_labels(tmp_path, caplog):
    # 'Kind' is labelled on 2 texts, one per class: both stay in training, and nothing scores it in validation.
    rows = [(f"text number {i}", "ab"[i % 2], {0: "x", 1: "y"}.get(i, "")) for i in range(8)]
    path = _write_csv(tmp_path / "t.csv", ["text", "letter", "Kind"], rows)
    with caplog.at_level(logging.WARNING, logger="absl"):
        data = tfxfer.load_text_data(path, label_columns=["letter", "Kind"], validation_split=0.25)
    assert _examples(data.validation)[1]["kind"].tolist() == [-1, -1]
    assert (f"No validation text of {path} has a label of the task(s) 'kind' (column 'Kind'): every text labelled "
            "for them is in training") in caplog.text


def test_text_label_columns_without_a_validation_part_are_warned_about_as_one_task_is(tmp_path, caplog):
    path = _tickets(tmp_path)
    with caplog.at_level(logging.WARNING, logger="absl"):
        tfxfer.load_text_data(path, label_columns=["Product", "priority"], batch_size=4)
    assert caplog.text.count(
        f"No validation data: {path!r} has no validation part, and none of it is held out. Pass "
        "validation_split=0.1 (for example; recipes: --validation_split=0.1) to hold out part of each class.") == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="absl"):
        tfxfer.load_text_data(path, label_columns=["Product", "priority"], batch_size=4, validation_split=0.3)
    assert "No validation data" not in caplog.text


def test_split_for_tasks_keeps_every_class_in_training_whatever_the_seed():
    rng = np.random.default_rng(0)
    for seed in range(40):
        membership = rng.random((12, 7)) < 0.2
        membership[np.arange(12), rng.integers(0, 7, 12)] = True  # Every example carries a label.
        train, validation = splits.split_for_tasks(membership, 0.3, seed)
        assert np.array_equal(np.sort(np.concatenate([train, validation])), np.arange(12))
        assert len(validation) > 0
        assert np.array_equal(membership[train].any(axis=0), membership.any(axis=0))
        again = splits.split_for_tasks(membership, 0.3, seed)
        assert np.array_equal(again[0], train) and np.array_equal(again[1], validation)


def test_text_map_inputs_and_token_buckets_keep_each_texts_labels(tmp_path):
    # A text of n words packs to n + 2 tokens; its labels are n % 3 and n % 2, so each can be checked.
    lengths = np.random.default_rng(0).integers(1, 20, 60)
    rows = [(" ".join(["bad"] * int(n)), "abc"[n % 3], "" if n % 5 == 0 else "xy"[n % 2]) for n in lengths]
    path = _tickets(tmp_path, rows)
    data = tfxfer.load_text_data(path, label_columns=["Product", "priority"], batch_size=8, seed=3)
    preset = save_tiny_bert_preset(tmp_path / "bert")
    preprocessor = tfxfer.models.backbones.hub_text.load_hub_backbone(preset, sequence_length=32).preprocessor
    tokenized = data.map_inputs(preprocessor)
    seen = []
    for inputs, labels in tokenized.train:
        words = inputs["padding_mask"].numpy().sum(axis=1) - 2
        assert len(set((words + 1) // 8)) == 1  # One 8-token bucket per batch.
        assert labels["product"].numpy().tolist() == [n % 3 for n in words]
        assert labels["priority"].numpy().tolist() == [-1 if n % 5 == 0 else n % 2 for n in words]
        seen += words.tolist()
    assert sorted(seen) == sorted(lengths.tolist())


def test_text_label_columns_errors(tmp_path):
    path = _tickets(tmp_path)
    data = tfxfer.load_text_data(path, label_columns=["product", "priority"], batch_size=4)
    assert data.tasks == {"product": tfxfer.Task(3), "priority": tfxfer.Task(2)}
    with pytest.raises(ConfigError, match=r"has no column 'produce'.*List the names of its label columns in "
                                          r"label_columns=\. Received: 'produce' in"):
        tfxfer.load_text_data(path, label_columns=["produce", "priority"])
    one_class = _tickets(tmp_path, [("a", "x", "p"), ("b", "y", "p"), ("c", "x", "")], name="one.csv")
    with pytest.raises(ConfigError, match=r"at least 2 classes.*'priority' \(column 'priority'\): \['p'\]"):
        tfxfer.load_text_data(one_class, label_columns=["Product", "priority"])
    both = _write_csv(tmp_path / "both.csv", ["text", "Product-Line", "product line"], [("a", "x", "y")])
    with pytest.raises(ConfigError, match=r"'Product-Line' and 'product line' both give the task name 'product_line'"):
        tfxfer.load_text_data(both, label_columns=["Product-Line", "product line"])
    with pytest.raises(ConfigError, match=r"either label_column .* or label_columns"):
        tfxfer.load_text_data(path, label_column="Product", label_columns=["priority"])
    with pytest.raises(ConfigError, match=r"a list even for one column.*Received: label_columns='priority'"):
        tfxfer.load_text_data(path, label_columns="priority")
    for name in ("ham", "spam"):
        (tmp_path / "folders" / name).mkdir(parents=True)
        (tmp_path / "folders" / name / "1.txt").write_text(f"{name} text")
    with pytest.raises(ConfigError, match=r"label_columns applies to .csv/.tsv data only.*class_folders"):
        tfxfer.load_text_data(tmp_path / "folders", label_columns=["label"])


def test_a_label_column_whose_task_would_log_as_a_validation_accuracy_is_refused_before_reading(tmp_path):
    # Its training accuracy would be logged as val_accuracy; refused before the file is opened (it is not there).
    with pytest.raises(ConfigError, match=r"Task 'val' would log .* Rename its label column \(tasks are named after "
                                          r"their headers\).*Received: tasks \['species', 'val'\]"):
        load_image_csv(tmp_path / "none.csv", label_columns=["species", "Val"], image_size=IMAGE_SIZE)


def test_text_single_label_csv_is_unchanged_without_label_columns(tmp_path):
    data = tfxfer.load_text_data(_tickets(tmp_path, [("a", "x", "p"), ("b", "y", "q")]), label_column="Product")
    assert data.tasks is None and data.class_names == ["x", "y"] and "tasks" not in data.summary()
    assert data.train.element_spec[1].dtype.name == "int32"


# --- images -------------------------------------------------------------------


def _image(path, red, image_format="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (red, 0, 0)).save(path, format=image_format)
    return path


def _red_of(image):
    return int(round(float(image[..., 0].mean())))


def _leaf_csv(tmp_path):
    """Rows of leaf images: relative PNGs, one absolute JPEG, a corrupt file, a missing file, an unlabelled row."""
    absolute = _image(tmp_path / "elsewhere" / "abs.jpg", 200, "JPEG")
    (tmp_path / "data" / "img").mkdir(parents=True)
    (tmp_path / "data" / "img" / "bad.png").write_bytes(b"not an image at all")
    rows = [
        (str(_image(tmp_path / "data" / "img" / "0.png", 20).relative_to(tmp_path / "data")), "oak", "sick"),
        ("img/1.png", "elm", ""),
        ("img/2.png", "", "healthy"),
        ("img/3.png", "oak", "healthy"),
        (str(absolute), "elm", "sick"),
        ("img/bad.png", "oak", "sick"),
        ("img/missing.png", "elm", "healthy"),
        ("img/4.png", "", ""),
    ]
    for i, red in ((1, 60), (2, 100), (3, 140), (4, 180)):
        _image(tmp_path / "data" / "img" / f"{i}.png", red)
    return _write_csv(tmp_path / "data" / "leaves.csv", ["file", "Species", "Health"], rows)


def test_image_csv_gives_dict_labels_and_skips_bad_rows(tmp_path, caplog):
    path = _leaf_csv(tmp_path)
    data = load_image_csv(path, image_column="file", label_columns=["Species", "Health"], image_size=IMAGE_SIZE,
                          validation_split=None, batch_size=3)
    assert data.tasks == {"species": tfxfer.Task(2), "health": tfxfer.Task(2)}
    assert data.class_names == {"species": ["elm", "oak"], "health": ["healthy", "sick"]}
    assert data.train_class_counts == {"species": [2, 2], "health": [2, 2]}
    assert data.skipped == {"no_label": 1, "missing_file": 1, "undecodable": 1}
    assert data.skipped_files == sorted([str(tmp_path / "data" / "img" / "bad.png"),
                                         str(tmp_path / "data" / "img" / "missing.png")])
    assert "cannot be decoded" in caplog.text and "does not exist" in caplog.text
    assert (data.train_size, data.validation_size, data.validation) == (5, 0, None)
    images_spec, labels_spec = data.train.element_spec
    assert (images_spec.dtype.name, images_spec.shape.as_list()) == ("float32", [None, 6, 5, 3])
    assert {task: (s.dtype.name, s.shape.as_list()) for task, s in labels_spec.items()} == {
        "species": ("int64", [None]), "health": ("int64", [None])}
    images, labels = _examples(data.train)
    by_red = {_red_of(image): (int(labels["species"][i]), int(labels["health"][i])) for i, image in enumerate(images)}
    assert set(by_red) - {200} == {20, 60, 100, 140} and any(abs(red - 200) <= 3 for red in by_red)
    assert {red: by_red[red] for red in (20, 60, 100, 140)} == {20: (1, 1), 60: (0, -1), 100: (-1, 0), 140: (1, 0)}
    summary = json.loads(json.dumps(data.summary()))
    assert summary["tasks"]["species"] == {"head": "binary", "num_classes": 2, "multi_label": False}
    assert summary["skipped"] == data.skipped and summary["decoded_cache"] == "memory"


def test_image_csv_rows_left_out_are_warned_about_as_text_csv_rows_are(tmp_path, caplog):
    for i in range(4):
        _image(tmp_path / f"{i}.png", 50 * (i + 1))
    path = tmp_path / "l.csv"
    path.write_text("image,species\n0.png,a\n1.png,b\n2.png,a,b\n3.png,\n,a\n3.png,b\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="absl"):
        data = load_image_csv(str(path), label_columns=["species"], image_size=IMAGE_SIZE, validation_split=None)
    assert data.skipped == {"no_label": 1, "missing_file": 0, "undecodable": 0, "malformed": 1, "no_image": 1}
    assert (f"Skipped in {path}: malformed 1 (more or fewer fields than the header: quote fields holding the "
            "delimiter or a line break; first at line 4); no_image 1 (no image path; first at line 6); no_label 1 "
            "(no class name; first at line 5).") in caplog.text


@pytest.mark.parametrize("load", [
    lambda path: load_image_csv(path, label_columns=["species"], image_size=IMAGE_SIZE),
    lambda path: tfxfer.load_text_data(path, text_column="image", label_columns=["species"]),
], ids=["images", "texts"])
def test_a_csv_with_only_a_header_or_another_delimiter_is_refused_naming_the_fix(tmp_path, load):
    header_only = _write_csv(tmp_path / "header.csv", ["image", "species", "grade"], [])
    with pytest.raises(ConfigError, match=r"header\.csv has a header but no rows: add one row per (image|text) below "
                                          r"it\. Received: only the header \['image', 'species', 'grade'\]"):
        load(header_only)
    semicolons = _write_csv(tmp_path / "semicolons.csv", ["image", "species", "grade"], [("0.png", "oak", "a")],
                            delimiter=";")
    with pytest.raises(ConfigError, match=r"its columns are \['image;species;grade'\].*the file looks separated by "
                                          r"';', not ',': (pass delimiter=';' or )?save it separated by ','"):
        load(semicolons)


def test_image_csv_delimiter_hint_names_the_delimiter_argument(tmp_path):
    path = _write_csv(tmp_path / "tabs.csv", ["image", "species"], [("0.png", "oak")], delimiter="\t")
    with pytest.raises(ConfigError, match=r"the file looks separated by '\\t', not ',': pass delimiter='\\t' or name "
                                          r"it \.tsv\. Received: image_column='image'"):
        load_image_csv(path, label_columns=["species"], image_size=IMAGE_SIZE)
    semicolons = _write_csv(tmp_path / "s.csv", ["image", "species"], [("0.png", "oak")], delimiter=";")
    with pytest.raises(ConfigError, match=r"pass delimiter=';' or save it"):
        load_image_csv(semicolons, label_columns=["species"], image_size=IMAGE_SIZE)


def test_image_csv_validation_split_is_seeded_and_keeps_classes_in_training(tmp_path):
    rows = []
    for i in range(20):
        _image(tmp_path / f"{i}.png", 10 * i)
        rows.append((f"{i}.png", "ab"[i % 2], "rare" if i in (4, 9) else ("" if i % 4 else "common")))
    path = _write_csv(tmp_path / "l.csv", ["image", "letter", "kind"], rows)
    load = lambda seed: load_image_csv(path, label_columns=["letter", "kind"], image_size=IMAGE_SIZE,  # noqa: E731
                                       validation_split=0.25, seed=seed, batch_size=4)
    first, again, other = load(0), load(0), load(5)
    assert (first.train_size, first.validation_size) == (15, 5)
    reds = lambda dataset: sorted(_red_of(image) for image in _examples(dataset)[0])  # noqa: E731
    assert reds(first.validation) == reds(again.validation) != reds(other.validation)
    assert sorted(reds(first.train) + reds(first.validation)) == [10 * i for i in range(20)]
    assert first.train_class_counts["kind"][first.class_names["kind"].index("rare")] >= 1
    first_epoch, second_epoch = [_red_of(x) for x in _examples(first.train)[0]], [
        _red_of(x) for x in _examples(first.train)[0]]
    assert sorted(first_epoch) == sorted(second_epoch) and first_epoch != second_epoch  # Reshuffled each epoch.


def test_image_csv_warns_of_a_task_the_validation_split_leaves_without_labels(tmp_path, caplog):
    # 'kind' is labelled on 2 images, one per class: both stay in training, and nothing scores it in validation.
    rows = [(str(_image(tmp_path / f"{i}.png", 20 * i).name), "ab"[i % 2], {0: "x", 1: "y"}.get(i, ""))
            for i in range(8)]
    path = _write_csv(tmp_path / "l.csv", ["image", "letter", "Kind"], rows)
    with caplog.at_level(logging.WARNING, logger="absl"):
        data = load_image_csv(path, label_columns=["letter", "Kind"], image_size=IMAGE_SIZE, validation_split=0.25)
    assert _examples(data.validation)[1]["kind"].tolist() == [-1, -1]
    assert (f"No validation image of {path} has a label of the task(s) 'kind' (column 'Kind'): every image labelled "
            "for them is in training, so their val_<task>_accuracy measures nothing and val_loss leaves them out. "
            "Label more images for them, or raise validation_split.") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="absl"):
        load_image_csv(path, label_columns=["letter"], image_size=IMAGE_SIZE, validation_split=0.25)
    assert "No validation image" not in caplog.text


def test_image_csv_without_a_validation_part_is_warned_about_as_image_folders_are(tmp_path, caplog):
    for i in range(4):
        _image(tmp_path / f"{i}.png", 50 * (i + 1))
    path = _write_csv(tmp_path / "l.csv", ["image", "letter"], [(f"{i}.png", "ab"[i % 2]) for i in range(4)])
    with caplog.at_level(logging.WARNING, logger="absl"):
        load_image_csv(path, label_columns=["letter"], image_size=IMAGE_SIZE, validation_split=None)
    assert caplog.text.count(
        f"No validation data: {path!r} has no validation part, and none of it is held out. Pass "
        "validation_split=0.2 (for example; recipes: --validation_split=0.2) to hold out part of each class.") == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="absl"):
        load_image_csv(path, label_columns=["letter"], image_size=IMAGE_SIZE, validation_split=0.5)
    assert "No validation data" not in caplog.text


def test_image_csv_multi_label_columns(tmp_path):
    rows = [("0.png", "red|round", "x"), ("1.png", "green", ""), ("2.png", "", "x|y")]
    for i in range(3):
        _image(tmp_path / f"{i}.png", 50 * (i + 1))
    path = _write_csv(tmp_path / "m.csv", ["image", "look", "kind"], rows)
    data = load_image_csv(path, label_columns=["look", "kind"], image_size=IMAGE_SIZE, validation_split=None,
                          label_separator="|")
    assert data.tasks == {"look": tfxfer.Task(3, multi_label=True), "kind": tfxfer.Task(2, multi_label=True)}
    images, labels = _examples(data.train)
    assert labels["look"].dtype == np.float32 and labels["look"].shape == (3, 3)
    by_red = {_red_of(image): (labels["look"][i].tolist(), labels["kind"][i].tolist())
              for i, image in enumerate(images)}
    assert by_red == {50: ([0, 1, 1], [1, 0]), 100: ([1, 0, 0], [-1, -1]), 150: ([-1, -1, -1], [1, 1])}
    assert data.train_class_counts == {"look": [1, 1, 1], "kind": [2, 1]}


def test_a_label_separator_that_splits_no_cell_of_any_task_is_warned_about(tmp_path, caplog):
    for i in range(4):
        _image(tmp_path / f"{i}.png", 50 * (i + 1))
    one_class_each = _write_csv(tmp_path / "one.csv", ["image", "look", "kind"],
                                [("0.png", "red", "x"), ("1.png", "green", "y"), ("2.png", "red", ""),
                                 ("3.png", "", "y")])
    with caplog.at_level("WARNING", logger="absl"):
        load_image_csv(one_class_each, label_columns=["look", "kind"], image_size=IMAGE_SIZE, validation_split=None,
                       label_separator="|")
    assert f"label_separator='|' split no label cell of {one_class_each}" in caplog.text
    caplog.clear()
    text_rows = [("good", "a", "x|y"), ("bad", "b", "x"), ("ok", "a", "y")]  # one cell of one task splits
    with caplog.at_level("WARNING", logger="absl"):
        tfxfer.load_text_data(_write_csv(tmp_path / "t.csv", ["text", "p", "q"], text_rows), label_columns=["p", "q"],
                              label_separator="|")
    assert "split no label cell" not in caplog.text


def test_image_csv_errors(tmp_path, monkeypatch):
    for i in range(3):
        _image(tmp_path / f"{i}.png", 10 * i)
    path = _write_csv(tmp_path / "e.csv", ["path", "a", "b"], [("0.png", "x", "p"), ("1.png", "y", "p"),
                                                               ("2.png", "y", "")])
    kwargs = dict(image_size=IMAGE_SIZE, validation_split=None)
    with pytest.raises(ConfigError, match=r"no column 'image'.*Pass the name of its image column as image_column="):
        load_image_csv(path, label_columns=["a"], **kwargs)
    with pytest.raises(ConfigError, match=r"at least 2 classes.*'b' \(column 'b'\): \['p'\]"):
        load_image_csv(path, image_column="path", label_columns=["a", "b"], **kwargs)
    with pytest.raises(ConfigError, match=r"'a' and 'A' both give the task name 'a'"):
        load_image_csv(path, image_column="path", label_columns=["a", "A"], **kwargs)
    with pytest.raises(ConfigError, match=r"for a folder of class folders use load_image_folders"):
        load_image_csv(tmp_path, label_columns=["a"], **kwargs)
    monkeypatch.setattr(image_csv, "_MAX_IMAGE_BYTES", 2 * 6 * 5 * 3)
    with pytest.raises(ConfigError, match=r"at most 2 GB; 3 images of \(6, 5\) take"):
        load_image_csv(path, image_column="path", label_columns=["a"], **kwargs)
    monkeypatch.undo()
    (tmp_path / "0.png").write_bytes(b"corrupt")
    with pytest.raises(ConfigError, match=r"no usable image for 'x' of task 'a' \(column 'a'\)"):
        load_image_csv(path, image_column="path", label_columns=["a"], **kwargs)


def test_image_csv_is_exported():
    assert tfxfer.data.load_image_csv is load_image_csv
