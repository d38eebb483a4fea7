"""Untrusted inputs: model files, saved weights and names that build paths.

A `.keras` backbone is loaded in Keras' safe mode unless the caller opts out;
nothing tfxfer reads is unpickled; names that become file or folder names
cannot point outside their folder, and class names cannot break `labels.txt`.
"""

import os
import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.export import tflite, versioning
from tfxfer.models.backbones import backbone_from_model
from tfxfer.training import backup

PACKAGE = pathlib.Path(tfxfer.__file__).parent
MARKER = "TFXFER_TEST_LAMBDA_RAN"


@pytest.fixture
def lambda_model_file(tmp_path):
    """A `.keras` file whose Lambda layer sets an environment variable when its code runs."""
    inputs = keras.Input((8, 8, 3))
    # The name is spelled out: a loaded lambda sees none of this module's globals.
    x = keras.layers.Lambda(lambda t: (__import__("os").environ.__setitem__("TFXFER_TEST_LAMBDA_RAN", "1"), t)[1],
                            name="side_effect")(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    path = tmp_path / "untrusted.keras"
    keras.Model(inputs, x, name="untrusted").save(path)
    os.environ.pop(MARKER, None)  # building the model above ran the lambda once
    yield path
    os.environ.pop(MARKER, None)


REFUSAL = (r"Refusing to load '.*untrusted\.keras': it contains a Lambda layer .*Only if you trust the file.*"
           r"pass safe_mode=False \(recipes: --nosafe_mode\)\. Received: model='.*untrusted\.keras', safe_mode=True")


def test_a_lambda_layer_in_a_backbone_file_is_refused_without_running_it(lambda_model_file):
    with pytest.raises(ValueError, match=REFUSAL):
        backbone_from_model(lambda_model_file)
    assert MARKER not in os.environ


def test_build_image_classifier_refuses_a_lambda_backbone_file(lambda_model_file):
    with pytest.raises(ValueError, match=REFUSAL):
        tfxfer.build_image_classifier(str(lambda_model_file), num_classes=2, augmentation=False)
    assert MARKER not in os.environ


def test_safe_mode_false_loads_a_trusted_lambda_backbone(lambda_model_file):
    model = tfxfer.build_image_classifier(lambda_model_file, num_classes=2, augmentation=False, safe_mode=False)
    assert model.get_layer("backbone").get_layer("side_effect") is not None
    assert model.output_shape == (None, 1)
    assert os.environ.get(MARKER) == "1"  # exactly what safe mode prevents: the file's code ran


def test_a_backbone_file_without_python_code_loads_in_safe_mode(tmp_path):
    inputs = keras.Input((8, 8, 3))
    path = tmp_path / "plain.keras"
    keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs)).save(path)
    assert backbone_from_model(path).output_shape == (None, 6, 6, 4)


# Nothing is unpickled.

class _Payload:
    """Unpickling this creates `path`: proof that a pickle ran code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.makedirs, (self.path,)


def test_backup_restore_refuses_pickled_weights(tmp_path):
    proof = tmp_path / "pickle_ran"
    with open(tmp_path / backup.PHASE1_WEIGHTS, "wb") as f:
        np.savez(f, np.array([_Payload(str(proof))], dtype=object))
    (tmp_path / backup.PHASE1_DONE).write_text('{"epochs": 1}')
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="allow_pickle=False"):
        backup.RunBackup(tmp_path).restore_phase1(model)
    assert not proof.exists()


# Reading the source, so that a later change cannot quietly bring these back.
UNSAFE_CALLS = re.compile(r"\bimport pickle\b|\bpickle\.|\bjoblib\b|(?<![.\w])eval\(|(?<![.\w])exec\(|"
                          r"\byaml\.load\(|\bos\.system\(|shell=True|\bmarshal\.loads?\(")


def test_the_package_never_unpickles_evaluates_or_shells_out():
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if UNSAFE_CALLS.search(line) or ("np.load(" in line and "allow_pickle=False" not in line)]
    assert found == []


# Names that become paths.

@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", "/tmp/elsewhere", "nul\0byte"])
def test_a_model_name_that_could_leave_the_export_folder_is_refused(name):
    with pytest.raises(ValueError, match=r"model_name must be one folder name .*cannot write outside its base "
                                         r"folder.*Received: model_name="):
        versioning.model_dir("saved_models", name)


def test_a_plain_model_name_is_joined_under_the_export_folder():
    assert versioning.model_dir("saved_models", "flowers") == os.path.join("saved_models", "flowers")


def test_a_backup_phase_outside_the_known_ones_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"phase must be one of \('phase1', 'phase2'\)\. "
                                         r"Received: phase='\.\./elsewhere'"):
        backup.RunBackup(tmp_path).callbacks("../elsewhere")


def _tiny_classifier():
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    return tfxfer.build_image_classifier(keras.Model(inputs, features), num_classes=3, preprocessing="tf",
                                         augmentation=False)


@pytest.mark.parametrize("bad", ["two\nlines", "form\x0cfeed", "line\u2028separator", "next\x85line"])
def test_a_class_name_that_breaks_labels_txt_is_refused_at_export(tmp_path, bad):
    with pytest.raises(ValueError, match=r"one per line to labels\.txt.*Received: \['"):
        tfxfer.export_saved_model(_tiny_classifier(), tmp_path / "model", class_names=["ok", bad, "fine"])
    assert not (tmp_path / "model").exists()


def test_a_class_name_that_breaks_labels_txt_is_refused_by_tflite_export(tmp_path):
    data = tf.data.Dataset.from_tensor_slices((np.zeros((2, 8, 8, 3), "float32"), [0, 1])).batch(2)
    with pytest.raises(ValueError, match=r"one per line to labels\.txt.*Received: \['two\\nlines'\]"):
        tflite.export_tflite(_tiny_classifier(), tmp_path / "tflite", train=data, validation=data,
                             class_names=["ok", "two\nlines", "fine"], variants=["float32"])
    assert not (tmp_path / "tflite").exists()
