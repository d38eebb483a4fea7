"""Mistakes in calls of the export and serving API get a tfxfer error naming the fix, not a TensorFlow one or a
silently wrong result: a single str where a list belongs, missing image files and folders, class ids as labels,
metadata that replaces tfxfer's own keys, an export into a version folder, duplicate class names, class names as
bytes, zero-padded version folders, warmup images the export would refuse.

The models are the tiny ones of test_export.py (image) and test_text_serving.py (word vectors).
"""

import json
import os
import re
import uuid

import numpy as np
import pytest
import tensorflow as tf
from _text_helpers import NEGATIVE, POSITIVE, write_word_vectors
from test_export import CLASS_NAMES, HEIGHT, WIDTH, _classifier, _png

import tfxfer
from tfxfer import prediction
from tfxfer.data import image_ops
from tfxfer.errors import ConfigError, MissingFileError
from tfxfer.evaluation import exported_model
from tfxfer.export import saved_model, serving

CLEAR_SESSION_ONCE = True
TEXT_NAMES = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def model():
    return _classifier()


@pytest.fixture(scope="module")
def image_export(model, tmp_path_factory):
    """An export of `model` and a folder `photos/` of two PNG files."""
    root = tmp_path_factory.mktemp("image_export")
    path = tfxfer.export_saved_model(model, root / "pets", class_names=CLASS_NAMES, metadata={"val_accuracy": 0.5})
    (root / "photos").mkdir()
    files = [str(root / "photos" / f"{index}.png") for index in range(2)]
    for seed, file in enumerate(files):
        with open(file, "wb") as f:
            f.write(_png((HEIGHT, WIDTH, 3), seed))
    return {"root": root, "path": path, "folder": str(root / "photos"), "files": files}


@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text_export")
    write_word_vectors(folder / "vectors.txt", POSITIVE + NEGATIVE, dim=4)
    backbone = tfxfer.load_word_vector_backbone(folder / "vectors.txt", ["good film", "bad plot"], sequence_length=8,
                                                encoder="mean", seed=0)
    return tfxfer.export_saved_model(tfxfer.build_text_classifier(backbone, num_classes=3), folder / "reviews",
                                     class_names=TEXT_NAMES)


def _metadata(version_dir):
    with open(os.path.join(version_dir, "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
        return json.load(f)


# A: image paths for predict_image_files and evaluate_export.

def test_predict_image_files_refuses_a_single_path_string(image_export):
    path = image_export["files"][0]
    with pytest.raises(ConfigError, match=r"^paths must be a list of image paths, not a single str \(which would be "
                                          r"read as one path per character\)\. Pass a list of image paths, e\.g\. "
                                          rf"\[path\]\. Received: paths={re.escape(repr(path))}$"):
        prediction.predict_image_files(image_export["path"], path)


def test_image_files_refuses_a_single_path_string():
    # Relative: read per character, an absolute path would start with "/", a folder searched to its last file.
    with pytest.raises(ConfigError, match=r"^inputs must be a list of image files or folders, not a single str .*"
                                          r"e\.g\. \[path\]\. Received: inputs='no_such_photo\.png'$"):
        prediction.image_files("no_such_photo.png")


def test_predict_image_files_names_a_missing_file(image_export):
    missing = str(image_export["root"] / "typo.png")
    with pytest.raises(MissingFileError, match=rf"Expected an image file or a folder of images\. "
                                               rf"Received: {re.escape(repr(missing))}$"):
        prediction.predict_image_files(image_export["path"], [image_export["files"][0], missing])


def test_predict_image_files_predicts_each_image_of_a_folder(image_export):
    of_folder = prediction.predict_image_files(image_export["path"], [image_export["folder"]])
    of_files = prediction.predict_image_files(image_export["path"], image_export["files"])
    assert [result.source for result in of_folder] == image_export["files"]
    assert [result.top_k for result in of_folder] == [result.top_k for result in of_files]


def test_evaluate_export_names_a_missing_image_file_before_the_model_runs(image_export):
    missing = str(image_export["root"] / "typo.png")
    with pytest.raises(MissingFileError, match=r"^1 image file\(s\) of examples do not exist\. Check the paths "
                                               r"\(relative ones are read from .*\), or leave those examples out\. "
                                               rf"Received: e\.g\. examples\[1\]={re.escape(repr(missing))}$"):
        tfxfer.evaluate_export(image_export["path"], [image_export["files"][0], missing], ["cat", "dog"], batch_size=1)


def test_evaluate_export_refuses_a_folder_as_an_example(image_export):
    folder = image_export["folder"]
    with pytest.raises(MissingFileError, match=r"^examples holds 1 folder\(s\), but evaluate_export takes one image "
                                               r"file per label\. Pass the image files .*read_labelled_data.* "
                                               rf"Received: e\.g\. examples\[0\]={re.escape(repr(folder))}$"):
        tfxfer.evaluate_export(image_export["path"], [folder], ["cat"])


def test_evaluate_export_names_a_missing_training_example(image_export):
    missing = str(image_export["root"] / "gone.png")
    with pytest.raises(MissingFileError, match=rf"of training_examples do not exist\. .*"
                                               rf"Received: e\.g\. training_examples\[0\]={re.escape(repr(missing))}$"):
        tfxfer.evaluate_export(image_export["path"], image_export["files"], ["cat", "dog"],
                               training_examples=[missing])


@pytest.mark.parametrize("labels, received", [([0, 1], "labels[0]=0"), (np.arange(2), "labels[0]=np.int64(0)"),
                                              (["cat", None], "labels[1]=None"), ([["cat"], [1]], "labels[1]=[1]")])
def test_evaluate_export_says_labels_are_class_names_not_ids(image_export, labels, received):
    with pytest.raises(ConfigError, match=r"^Labels are class names \(str\), as the export's labels\.txt lists them, "
                                          r"not class ids .* predicts \['cat', 'dog', 'café au lait'\] \(3\)\. "
                                          rf"Pass each example's class name .*Received: {re.escape(received)}$"):
        tfxfer.evaluate_export(image_export["path"], image_export["files"], labels)


@pytest.mark.parametrize("argument", ["examples", "labels", "training_examples"])
def test_evaluate_export_refuses_a_single_string_for_a_list(image_export, argument):
    arguments = {"examples": image_export["files"][:1], "labels": ["cat"], "training_examples": None,
                 argument: image_export["files"][0] if argument != "labels" else "cat"}
    with pytest.raises(ConfigError, match=rf"^{argument} must be a list of .*, not a single str \(which would be read "
                                          rf"as one .* per character\)\. Pass a list of .*, e\.g\. \[\w+\]\. "
                                          rf"Received: {argument}='"):
        tfxfer.evaluate_export(image_export["path"], **arguments)


# B: texts.

def test_predict_texts_refuses_a_single_text(text_export):
    with pytest.raises(ConfigError, match=r"^texts must be a list of texts, not a single str \(which would be read as "
                                          r"one text per character\)\. Pass a list of texts, e\.g\. \[text\]\. "
                                          r"Received: texts='good film'$"):
        prediction.predict_texts(text_export, "good film")
    with pytest.raises(ConfigError, match=r"Received: texts='good good good [good ]+\.\.\.$"):  # a long text: its start
        prediction.predict_texts(text_export, "good " * 1000)


def test_evaluate_export_refuses_a_single_text(text_export):
    with pytest.raises(ConfigError, match=r"^examples must be a list of examples, not a single str .* "
                                          r"Received: examples='good film'$"):
        tfxfer.evaluate_export(text_export, "good film", ["positive"])


# C: metadata.

@pytest.mark.parametrize("key", ["head", "class_names", "tasks", "signatures"])
def test_metadata_may_not_replace_tfxfer_keys(model, tmp_path, key):
    with pytest.raises(ConfigError, match=rf"^metadata sets keys that tfxfer writes itself and reads back .*: "
                                          rf"\['{key}'\]\. Rename them, or nest them under a key of your own .*"
                                          rf"tfxfer's keys are \['model_name', 'head', .*\]\. "
                                          rf"Received: metadata with keys \['metrics', '{key}'\]$"):
        tfxfer.export_saved_model(model, tmp_path / "model", class_names=CLASS_NAMES,
                                  metadata={"metrics": {"accuracy": 0.9}, key: "multilabel"})
    assert not (tmp_path / "model").exists()


def test_metadata_must_be_a_dict(model, tmp_path):
    with pytest.raises(ConfigError, match=r"^metadata must be a dict of extra facts.*Received: metadata of type list$"):
        tfxfer.export_saved_model(model, tmp_path / "model", class_names=CLASS_NAMES, metadata=["accuracy"])


def test_reserved_metadata_keys_are_every_key_tfxfer_writes(image_export, text_export):
    image, text = _metadata(image_export["path"]), _metadata(text_export)
    assert image["val_accuracy"] == 0.5 and image["head"] == "multiclass"  # the caller's key beside tfxfer's
    assert set(image) - {"val_accuracy"} <= set(saved_model.RESERVED_METADATA_KEYS)
    assert set(text) <= set(saved_model.RESERVED_METADATA_KEYS)


# D: where to export, and the class names.

def test_export_into_a_version_folder_names_the_base_folder(model, image_export):
    version, base = image_export["path"], os.path.dirname(image_export["path"])
    with pytest.raises(ConfigError, match=r"^export_dir holds a SavedModel \(saved_model\.pb\): it is a version "
                                          r"folder.*Pass the base folder that holds the versions, e\.g\. "
                                          rf"export_dir={re.escape(repr(base))}\. "
                                          rf"Received: export_dir={re.escape(repr(version))}$"):
        tfxfer.export_saved_model(model, version, class_names=CLASS_NAMES)
    assert sorted(os.listdir(base)) == ["1"] and "1" not in os.listdir(version)


def test_export_into_a_remote_version_folder_names_the_base_folder(model):
    # ram:// is TensorFlow's in-memory filesystem, a stand-in for gs://, which check_base_dir leaves to staging_dir.
    base = f"ram://exports-{uuid.uuid4().hex}/pets"
    version = f"{base}/1"
    tf.io.gfile.makedirs(version)
    with tf.io.gfile.GFile(f"{version}/saved_model.pb", "wb") as f:
        f.write(b"a SavedModel")
    with pytest.raises(ConfigError, match=rf"Pass the base folder that holds the versions, e\.g\. "
                                          rf"export_dir={re.escape(repr(base))}\. "
                                          rf"Received: export_dir={re.escape(repr(version))}$"):
        tfxfer.export_saved_model(model, version, class_names=CLASS_NAMES)
    assert tf.io.gfile.listdir(version) == ["saved_model.pb"]


def test_duplicate_class_names_are_refused_at_export(model, tmp_path):
    with pytest.raises(ConfigError, match=r"^Class names must be unique: each names one column of the probabilities; "
                                          r"rename the repeated ones\. Received: \['cat'\] more than once in "
                                          r"\['cat', 'cat', 'dog'\]$"):
        tfxfer.export_saved_model(model, tmp_path / "model", class_names=["cat", "cat", "dog"])
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("class_names", ["abc", b"abc"])
def test_a_single_string_of_class_names_is_refused(model, tmp_path, class_names):
    with pytest.raises(ConfigError, match=r"^The class names of the model must be a list of names in class-id order, "
                                          rf"not a single {type(class_names).__name__}\. Pass a list, e\.g\. "
                                          rf"\['cat', 'dog'\]\. Received: class_names={re.escape(repr(class_names))} "
                                          rf"of type {type(class_names).__name__}$"):
        tfxfer.export_saved_model(model, tmp_path / "model", class_names=class_names)
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("multi_label, hinted", [(True, True), (False, False)])
def test_unknown_classes_of_a_multi_label_export_read_without_the_separator_name_it(multi_label, hinted):
    # "neg|x" is one unknown class read as it is; split on "|", both names are the model's.
    with pytest.raises(ConfigError, match=r"classes the model does not know") as info:
        exported_model._encode_labels(["neg|x", "pos"], ["neg", "pos", "x"], multi_label, "models/tags/1")
    hint = ("This model is multi-label: if a cell holds several class names, read the data with its "
            "label_separator (evaluate.py's --label_separator), e.g. '|'. Received: unknown classes ['neg|x'] (1)")
    assert str(info.value).endswith(hint) == hinted
    assert str(info.value).endswith("Received: unknown classes ['neg|x'] (1)")


@pytest.mark.parametrize("task", [None, "species"])
def test_class_names_given_as_bytes_are_exported_as_their_text(task):
    # As a tf.data pipeline or numpy hands them over; str(b"cat") would write the class "b'cat'" to labels.txt.
    # What checked_class_names returns is what export_saved_model and export_tflite write and serve.
    names = saved_model.checked_class_names([b"cat", np.bytes_(b"dog"), "café au lait".encode()], 3, task)
    assert names == CLASS_NAMES and all(type(name) is str for name in names)
    argument = "class_names" if task is None else "class_names['species']"
    with pytest.raises(ConfigError, match=r"^Class names given as bytes are decoded as UTF-8 .* and this one is not "
                                          r"UTF-8: decode it yourself and pass str names\. "
                                          rf"Received: b'caf\\xe9' in {re.escape(argument)}$"):
        saved_model.checked_class_names([b"cat", b"dog", b"caf\xe9"], 3, task)


@pytest.mark.parametrize("top_k, expected", [(np.int64(2), 2), (np.int32(7), 3), (np.uint8(1), 1)])
def test_top_k_of_a_numpy_integer_type_is_a_k(top_k, expected):
    # An np.int64 (e.g. from len() of an array's computation) was refused as "not a positive integer".
    k = serving.check_top_k(top_k, 3)
    assert k == expected and type(k) is int
    with pytest.raises(ConfigError, match=r"^top_k must be a positive integer .* Received: top_k=np\.int64\(0\)$"):
        serving.check_top_k(np.int64(0), 3)
    with pytest.raises(ConfigError, match=r"Received: top_k=np\.True_$"):
        serving.check_top_k(np.bool_(True), 3)


# E: version folders and warmup requests as TF Serving reads them.

def test_latest_version_of_zero_padded_folders_is_the_folder_itself(tmp_path):
    # TF Serving reads "0010/" as version 10, above "9/"; the path returned must be the folder that exists, as
    # tfxfer.prediction and recipes/predict.py load it from the base folder.
    base = tmp_path / "pets"
    for name in ("9", "0010"):
        (base / name).mkdir(parents=True)
        (base / name / "saved_model.pb").write_bytes(b"a SavedModel")
    assert tfxfer.latest_version_dir(str(base)) == str(base / "0010")
    assert saved_model.versioning.existing_versions(str(base)) == [9, 10]
    (base / "10").mkdir()  # one number, two names: the plain one is taken
    assert tfxfer.latest_version_dir(str(base)) == str(base / "10")


def test_a_warmup_image_the_export_would_refuse_for_its_size_is_refused_at_export(model, tmp_path, monkeypatch):
    # TF Serving replays the warmup requests through serving_default, which refuses images over the pixel cap,
    # and a failing warmup request makes it refuse the whole version: the export must not write one.
    monkeypatch.setattr(image_ops, "MAX_SERVING_PIXELS", HEIGHT * WIDTH - 1)
    with pytest.raises(ValueError, match=r"^Warmup example 1 would fail its serving_default request, and TF Serving "
                                         r"refuses to load a model whose warmup request fails\. Image too large to "
                                         rf"decode: expected at most {HEIGHT * WIDTH - 1} pixels \(width x height\)\. "
                                         r"Pass images the export serves, .* Received: \d+ bytes starting "
                                         r"b'\\x89PNG"):
        tfxfer.export_saved_model(model, tmp_path / "model", class_names=CLASS_NAMES,
                                  warmup_examples=[_png((HEIGHT // 2, WIDTH, 3), 0), _png((HEIGHT, WIDTH, 3), 1)])
    assert not (tmp_path / "model").exists()


def test_an_empty_export_dir_is_refused_naming_the_argument(model):
    # os.makedirs("") raised a bare FileNotFoundError: "[Errno 2] No such file or directory: ''".
    with pytest.raises(ConfigError, match=r"^export_dir is empty; pass a folder: versions 1/, 2/, \.\.\. are written "
                                          r"inside it \(it is created if missing\)\. Received: export_dir=''$"):
        tfxfer.export_saved_model(model, "", class_names=CLASS_NAMES)
