"""User mistakes end with a message, not a traceback: the recipes' wrapper
(`recipes/cli.py`), the image and predict recipes run as a user runs them, and the
library errors behind them (`tfxfer.errors`).
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_recipe_flag_checks import TINY_MOBILENET

import tfxfer
from tfxfer import prediction
from tfxfer.errors import ConfigError, MissingFileError, NotAFolderError, UserError
from tfxfer.export import serving, tflite, versioning
from tfxfer.models import heads
from tfxfer.models.backbones.word_vectors import read_word_vectors
from tfxfer.models.token_pooling import TokenPooling
from tfxfer.training import feature_cache, input_checks, layerwise_lr, planner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_image_folders(root, per_class=4):
    for index, (name, colour) in enumerate({"red": (220, 30, 30), "blue": (40, 40, 220)}.items()):
        folder = root / name
        folder.mkdir(parents=True)
        for example in range(per_class):
            pixels = np.full((24, 24, 3), colour, np.uint8) + example  # no two files alike
            (folder / f"{example}.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    return root


# recipes/cli.py itself.

_CLI_SCRIPT = """
import sys
sys.path.insert(0, {recipes!r})
import cli
from tfxfer.errors import MissingFileError

def main(argv):
    if argv[1] == "user":
        raise MissingFileError("Expected a file. Received: path='nope'")
    if argv[1] == "usage":
        from absl import app
        raise app.UsageError("Pass --data_dir.")
    raise KeyError("a bug")

cli.run(main)
"""


@pytest.fixture(scope="module")
def cli_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "script.py"
    path.write_text(_CLI_SCRIPT.format(recipes=os.path.join(REPO, "recipes")))
    return str(path)


def test_cli_shows_a_user_error_as_its_message_with_exit_code_2(cli_script, script_server):
    process = script_server.run(cli_script, "user")
    assert process.returncode == 2
    assert process.stderr.endswith("script.py: error: Expected a file. Received: path='nope'\n")
    assert "Traceback" not in process.stderr


def test_cli_shows_a_usage_error_with_a_pointer_to_the_flags(cli_script, script_server):
    process = script_server.run(cli_script, "usage")
    assert process.returncode == 2
    assert process.stderr.endswith("script.py: error: Pass --data_dir.\nRun script.py --helpshort for its flags.\n")
    assert "Traceback" not in process.stderr


def test_cli_keeps_the_traceback_of_a_bug(cli_script, script_server):
    process = script_server.run(cli_script, "bug")
    assert process.returncode == 1
    assert "Traceback" in process.stderr and "KeyError: 'a bug'" in process.stderr


# recipes/image_classifier.py: each mistake fails before the work it would spoil.

def test_image_recipe_unknown_backbone_lists_the_valid_names(script_server):
    stderr = script_server.usage_error("image_classifier.py", "--backbone=mobilenetv2", "--weights=none")
    assert "image_classifier.py: error: Unknown backbone. Did you mean 'mobilenet_v2'" in stderr
    assert "Expected one of: convnext_base, " in stderr and ", xception. Received: name='mobilenetv2'" in stderr


def test_image_recipe_image_size_too_small_fails_before_loading_data(tmp_path, script_server):
    (tmp_path / "empty").mkdir()  # loading it would fail with another message: no class folders
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path / 'empty'}", *TINY_MOBILENET,
                                       "--image_size=16")
    assert ("error: Backbone 'mobilenet_v2' needs inputs of at least 32x32 pixels; use a larger image size "
            "(recipes: --image_size; its ImageNet weights were trained at 224). Received: input_shape=(16, 16, 3)"
            ) in stderr
    assert "class sub-folders" not in stderr


@pytest.mark.parametrize("flag, expected", [
    ("--epochs=-1", "error: epochs must be an int >= 1. Received: epochs=-1"),
    ("--fine_tune_epochs=-2", "error: fine_tune_epochs must be an int >= 0 (0 skips phase 2). "
                              "Received: fine_tune_epochs=-2"),
    ("--label_smoothing=2", "error: label_smoothing must be a number from 0 (none) up to, not including, 1"),
    ("--weight_decay=-1", "error: weight_decay must be a number >= 0 (0: none), e.g. 0.0001. "
                          "Received: weight_decay=-1.0"),
    ("--top_k=-1", "error: --top_k must be >= 0 (0 leaves the top-k outputs out). Received: --top_k=-1"),
])
def test_image_recipe_numbers_out_of_range_fail_before_loading_data(flag, expected, tmp_path, script_server):
    (tmp_path / "empty").mkdir()  # loading it would fail with another message: no class folders
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path / 'empty'}", *TINY_MOBILENET,
                                       flag, f"--run_dir={tmp_path / 'run'}")
    assert expected in stderr
    assert "class sub-folders" not in stderr and not (tmp_path / "run").exists()


def test_image_recipe_csv_without_label_columns_names_the_flag(tmp_path, script_server):
    (tmp_path / "photos.csv").write_text("image,label\na.png,ant\n")
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path / 'photos.csv'}", *TINY_MOBILENET)
    assert ("image_classifier.py: error: --data_dir is a CSV/TSV file of image paths: pass the header of its label "
            "column with --label_columns") in stderr


def test_text_recipe_numbers_out_of_range_fail_before_loading_data(tmp_path, script_server):
    (tmp_path / "empty").mkdir()
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={tmp_path / 'empty'}",
                                       "--fine_tune_learning_rate=0", f"--run_dir={tmp_path / 'run'}")
    assert ("text_classifier.py: error: fine_tune_learning_rate must be a number > 0, e.g. 0.0001. "
            "Received: fine_tune_learning_rate=0.0") in stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # loads data and builds the model before failing
def test_image_recipe_fine_tune_at_past_the_layers_fails_before_phase_1(tmp_path, script_server):
    data = _write_image_folders(tmp_path / "data")
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={data}", "--validation_split=0.5",
                                       *TINY_MOBILENET, "--fine_tune_at=5000", "--epochs=1", "--fine_tune_epochs=1",
                                       f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}")
    assert "error: An integer fine_tune_at is the index of the first backbone layer to unfreeze: pass 0 to 153" \
        in stderr
    assert "Received: fine_tune_at=5000" in stderr
    assert "phase 1 epoch" not in stderr  # no epoch trained
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # loads data before building the model
def test_image_recipe_fine_tune_at_unknown_layer_name(tmp_path, script_server):
    data = _write_image_folders(tmp_path / "data")
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={data}", "--validation_split=0.5",
                                       *TINY_MOBILENET, "--fine_tune_at=block_99_expand",
                                       f"--run_dir={tmp_path / 'run'}")
    assert "error: No backbone layer is named 'block_99_expand'" in stderr
    assert "phase 1 epoch" not in stderr


@pytest.mark.slow  # loads data before building the model
def test_image_recipe_weights_of_another_width_name_the_file_and_the_fix(tmp_path, script_server):
    weights = tmp_path / "mobilenet_v2_1.0_no_top.weights.h5"
    keras.applications.MobileNetV2(include_top=False, weights=None, alpha=1.0,
                                   input_shape=(32, 32, 3)).save_weights(weights)
    data = _write_image_folders(tmp_path / "data")
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={data}", "--validation_split=0.5",
                                       "--backbone=mobilenet_v2", "--alpha=0.35", f"--weights={weights}",
                                       "--image_size=32")
    assert (f"error: The weights file {str(weights)!r} does not fit backbone 'mobilenet_v2' "
            "(keras.applications.MobileNetV2, alpha=0.35, include_top=False)") in stderr
    assert "(--backbone, --alpha in the recipes), or use weights=None" in stderr
    assert "Warning" not in stderr  # none of Keras' warnings about the parts it found no weights for


def test_image_recipe_export_dir_that_is_a_file_fails_before_any_work(tmp_path, script_server):
    (tmp_path / "some_file").write_text("")
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={_write_image_folders(tmp_path / 'data')}",
                                       *TINY_MOBILENET, f"--export_dir={tmp_path / 'some_file'}",
                                       f"--run_dir={tmp_path / 'run'}")
    assert (f"error: --export_dir must be a folder (it is created if missing), but it is a file; pass another "
            f"path. Received: --export_dir={tmp_path / 'some_file'}") in stderr
    assert "Built backbone" not in stderr and not (tmp_path / "run").exists()


def test_image_recipe_output_folder_inside_a_file_fails(tmp_path, script_server):
    (tmp_path / "some_file").write_text("")
    stderr = script_server.usage_error("image_classifier.py", *TINY_MOBILENET,
                                       f"--tflite_dir={tmp_path / 'some_file' / 'tfl'}")
    assert ("--tflite_dir must be a folder (it is created if missing), but it is inside a file "
            f"({tmp_path / 'some_file'})") in stderr


def test_image_recipe_data_dir_that_does_not_exist(tmp_path, script_server):
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path / 'nope'}", *TINY_MOBILENET)
    assert f"error: --data_dir does not exist; pass the path of your data, or --tfds_name. " \
           f"Received: --data_dir={tmp_path / 'nope'}" in stderr


def test_image_recipe_model_name_outside_export_dir_fails_before_any_work(tmp_path, script_server):
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={_write_image_folders(tmp_path / 'data')}",
                                       *TINY_MOBILENET, f"--export_dir={tmp_path / 'exports'}",
                                       "--model_name=../escape", f"--run_dir={tmp_path / 'run'}")
    assert ("image_classifier.py: error: --model_name must be one folder name (no '/', not '.' or '..', not "
            "absolute), so that it cannot write outside its base folder; pick a plain name such as 'flowers'. "
            "Received: --model_name='../escape'") in stderr
    assert "Built backbone" not in stderr and "phase 1 epoch" not in stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "escape").exists()
    assert not (tmp_path / "exports").exists()


def test_image_recipe_more_gpus_than_the_machine_has_fails_before_loading_data(tmp_path, script_server):
    # The script server hides every GPU (CUDA_VISIBLE_DEVICES=""), so 4 is more than this machine has.
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={_write_image_folders(tmp_path / 'data')}",
                                       *TINY_MOBILENET, "--strategy=mirrored", "--num_gpus=4",
                                       f"--run_dir={tmp_path / 'run'}")
    assert ("image_classifier.py: error: Asked for 4 GPUs, but 0 are visible to TensorFlow (none). Pass a smaller "
            "num_gpus, or check CUDA_VISIBLE_DEVICES and the GPU drivers. Received: num_gpus=4") in stderr
    assert "Built backbone" not in stderr and not (tmp_path / "run").exists()


def _lambda_backbone_file(path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda images: images / 255.0, name="scale")(inputs)
    keras.Model(inputs, keras.layers.Conv2D(4, 3, name="features")(x)).save(path)
    return path


def test_image_recipe_loads_a_backbone_with_code_only_with_nosafe_mode(tmp_path, script_server):
    backbone = _lambda_backbone_file(tmp_path / "lambda.keras")
    refused = script_server.usage_error("image_classifier.py", f"--backbone={backbone}")
    assert f"image_classifier.py: error: Refusing to load {str(backbone)!r}: it contains a Lambda layer" in refused
    assert "pass safe_mode=False (recipes: --nosafe_mode)" in refused
    assert f"Received: model={str(backbone)!r}, safe_mode=True" in refused
    # Trusted, it loads: the run gets as far as the next check (an image size the model does not take).
    stderr = script_server.usage_error("image_classifier.py", f"--backbone={backbone}", "--nosafe_mode",
                                       "--image_size=64")
    assert "error: Your backbone takes (32, 32) images; image_size must match it or be left out. " \
           "Received: image_size=64" in stderr


# recipes/predict.py and tfxfer.prediction.

@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    inputs = keras.Input((16, 16, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="features")(inputs))
    model = tfxfer.build_image_classifier(backbone, 2, preprocessing="tf", augmentation=False)
    base = str(root / "exports" / "pets")
    version = tfxfer.export_saved_model(model, base, class_names=["cat", "dog"])
    (root / "no_versions").mkdir()
    (root / "half" / "1").mkdir(parents=True)  # a version folder without its SavedModel
    (root / "garbage" / "1").mkdir(parents=True)
    (root / "garbage" / "1" / "saved_model.pb").write_bytes(b"")  # parses as a SavedModel without a graph
    return {"root": root, "base": base, "version": version}


def test_predict_recipe_missing_image_file(export, script_server):
    missing = export["root"] / "nope.jpg"
    stderr = script_server.usage_error("predict.py", f"--model_dir={export['base']}", str(missing))
    assert f"predict.py: error: Expected an image file or a folder of images. Received: {str(missing)!r}" in stderr


@pytest.mark.parametrize("model_dir, expected", [
    ("no_versions", "No SavedModel in this folder: no saved_model.pb and no version folders. Pass an export's "
                    "version folder (holding saved_model.pb) or its base folder (holding version folders 1/, 2/, "
                    "...), as export_saved_model writes them. Received: model_dir="),
    ("missing", "No model folder at this path."),
    ("half", "Expected a SavedModel (saved_model.pb) in the version folder; export the model again or pick "
             "another version."),
    ("garbage", "Expected a SavedModel (saved_model.pb) in the version folder; export the model again or pick "
                "another version."),
])
def test_predict_recipe_wrong_model_dir(export, model_dir, expected, script_server):
    path = export["root"] / model_dir
    stderr = script_server.usage_error("predict.py", f"--model_dir={path}", str(path))
    assert f"predict.py: error: {expected}" in stderr


def test_predict_recipe_named_undecodable_image(export, script_server):
    # A file the user named is refused, not skipped as a folder's would be; the reason is the decoder's, without
    # TensorFlow's graph and node names.
    broken = export["root"] / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    stderr = script_server.usage_error("predict.py", f"--model_dir={export['base']}", str(broken))
    assert stderr.endswith(f"predict.py: error: Expected JPEG/PNG/GIF/BMP images; these files cannot be decoded, "
                           f"leave them out. Received: [{str(broken)!r}]. The model said about {str(broken)!r}: "
                           "Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP required.\n")


def test_predict_recipe_without_inputs(export, script_server):
    stderr = script_server.usage_error("predict.py", f"--model_dir={export['version']}")
    assert "predict.py: error: This model takes images: pass image files or folders of images as arguments." in stderr


@pytest.mark.parametrize("flag, message", [
    ("--top_k=0", "--top_k must be at least 1. Received: --top_k=0"),
    ("--batch_size=-1", "--batch_size must be at least 1. Received: --batch_size=-1"),
    ("--threshold=1.5", "--threshold is a probability: pass a value in [0, 1]. Received: --threshold=1.5"),
])
def test_predict_recipe_numbers_out_of_range_fail_before_the_model_loads(flag, message, script_server):
    # The model folder does not exist: the flag's message comes first.
    stderr = script_server.usage_error("predict.py", "--model_dir=nowhere", flag, "photo.png")
    assert f"predict.py: error: {message}\n" in stderr


def test_prediction_errors_are_user_errors(export):
    with pytest.raises(MissingFileError, match=r"No model folder at this path\..*Received: model_dir='.*missing'"):
        prediction.input_kind(str(export["root"] / "missing"))
    with pytest.raises(MissingFileError, match=r"No SavedModel in this folder"):
        prediction.predict_image_files(str(export["root"] / "no_versions"), ["x.jpg"])
    with pytest.raises(ConfigError, match=r"Pass at least one image file or folder\. Received: none"):
        prediction.image_files([])
    with pytest.raises(ConfigError, match=r"takes image inputs; pass images"):
        prediction.predict_texts(export["base"], ["a text"])


def test_a_savedmodel_without_serving_default_is_named(tmp_path):
    module = tf.Module()
    module.double = tf.function(lambda x: 2 * x, input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"double": module.double})
    with pytest.raises(ConfigError, match=r"serving_default signature takes images or texts\. "
                                          r"Received: a SavedModel with signatures \['double'\]"):
        prediction.input_kind(str(tmp_path))


# Text models.

def test_unknown_text_preset_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        tfxfer.build_text_classifier("bert_smol_en_uncased", 2)
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert message.startswith("Unknown keras-hub text preset. Did you mean 'bert_small_en_uncased'")
    assert "Hugging Face-format folder" in message and "bert_tiny_en_uncased, " in message
    assert message.endswith("Received: backbone='bert_smol_en_uncased'")


def test_raw_strings_for_a_text_model_say_to_tokenize(tmp_path):
    from _text_helpers import NEGATIVE, POSITIVE, write_word_vectors

    texts = [f"{word} film" for word in POSITIVE + NEGATIVE]
    labels = [0] * len(POSITIVE) + [1] * len(NEGATIVE)
    write_word_vectors(tmp_path / "vectors.txt", POSITIVE + NEGATIVE + ["film"], dim=4)
    backbone = tfxfer.load_word_vector_backbone(tmp_path / "vectors.txt", texts, sequence_length=4, encoder="mean")
    model = tfxfer.build_text_classifier(backbone, 2)
    raw = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(4)
    with pytest.raises(ConfigError, match=r"not strings; the data holds raw strings: map them to token ids, "
                                          r"data\.map_inputs\(model\.preprocessor\).*Received: train_data's inputs of "
                                          r"dtype string"):
        tfxfer.fine_tune(model, raw)


def test_token_inputs_are_checked_by_name(tmp_path):
    from _text_helpers import NEGATIVE, POSITIVE, save_tiny_bert_preset, sentences

    from tfxfer.training import input_checks

    model = tfxfer.build_text_classifier(save_tiny_bert_preset(tmp_path / "bert"), 2, sequence_length=8)
    texts = sentences(POSITIVE, 4, 0) + sentences(NEGATIVE, 4, 1)
    tokenized = tf.data.Dataset.from_tensor_slices((texts, [0] * 4 + [1] * 4)).batch(4).map(
        lambda batch, labels: (model.preprocessor(batch), labels))
    input_checks.check_dataset(model, tokenized, name="train_data")  # what the text loaders give: no error

    without_mask = tokenized.map(lambda inputs, labels: ({"token_ids": inputs["token_ids"]}, labels))
    with pytest.raises(ConfigError, match=r"The model takes inputs \['padding_mask', .*'token_ids'\]; train_data lacks "
                                          r"\['padding_mask'.*\]\. Received: train_data inputs \['token_ids'\]"):
        input_checks.check_dataset(model, without_mask, name="train_data")


# Library errors a caller causes are UserErrors (a message in the recipes), and still the built-in type.

def _tiny_model(name="m"):
    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs), name=name)


def _backbone_file(tmp_path):
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Conv2D(2, 3, name="features")(inputs)).save(tmp_path / "b.keras")
    return tmp_path / "b.keras"


def _file(path, text="not a folder"):
    path.write_text(text)
    return path


def _folder(path):
    path.mkdir()
    return path


def _word_vectors(tmp_path, text):
    (tmp_path / "vectors.txt").write_text(text)
    return read_word_vectors(tmp_path / "vectors.txt", ["good", "bad"])


_LIBRARY_MISTAKES = {
    "not_a_keras_file": (lambda tmp: tfxfer.backbone_from_model(str(tmp / "model.h5")),
                         ConfigError, r"must be a \.keras file.*Received: model='.*model\.h5'"),
    "missing_keras_file": (lambda tmp: tfxfer.backbone_from_model(str(tmp / "nope.keras")),
                           MissingFileError, r"Model file not found\..*Received: model='.*nope\.keras'"),
    "unknown_output_layer": (lambda tmp: tfxfer.backbone_from_model(_backbone_file(tmp), "featurez"),
                             ConfigError, r"no layer named 'featurez'\. Did you mean 'features'"),
    "unknown_strategy": (lambda tmp: tfxfer.create_strategy("mirored"),
                         ConfigError, r"Unknown strategy\. Expected one of .*Received: name='mirored'"),
    "more_gpus_than_visible": (lambda tmp: tfxfer.create_strategy("mirrored", num_gpus=4),
                               ConfigError, r"Asked for 4 GPUs, but 0 are visible.*Received: num_gpus=4"),
    "tf_config_not_json": (lambda tmp: tfxfer.is_chief("{worker"),
                           ConfigError, r"TF_CONFIG must be JSON like .*Received: TF_CONFIG='\{worker'"),
    "tf_config_index_not_a_number": (lambda tmp: tfxfer.is_chief('{"task": {"type": "worker", "index": "one"}}'),
                                     ConfigError, r"TF_CONFIG must be JSON like"),
    "batch_size_zero": (lambda tmp: tfxfer.global_batch_size(0, tf.distribute.get_strategy()),
                        ConfigError, r"per-replica batch size must be an integer >= 1\. Received: per_replica=0 "
                                     r"\(recipes: --batch_size\)$"),
    "tpu_with_another_strategy": (lambda tmp: tfxfer.create_strategy("mirrored", tpu="my-tpu"),
                                  ConfigError, r"drop it or pass name='tpu' \(recipes: leave --tpu out, or pass "
                                               r"--strategy=tpu\)\. Received: name='mirrored', tpu='my-tpu'"),
    "weights_file_missing": (lambda tmp: tfxfer.create_backbone("mobilenet_v2", weights=str(tmp / "w.weights.h5")),
                             MissingFileError, r"Weights file not found\. Check the path, or pass "
                                               r"weights=\"pretrained\" or weights=None \(recipes: "
                                               r"--weights=pretrained or none; --student_weights for a student\)\. "
                                               r"Received: weights='.*w\.weights\.h5'"),
    "weights_not_a_weights_file": (lambda tmp: tfxfer.create_backbone("mobilenet_v2", weights="imagenet21k"),
                                   ConfigError, r"\(recipes: --weights=pretrained, none or FILE\.weights\.h5; "
                                                r"--student_weights for a student\)\. Received: weights='imagenet21k'"),
    "weights_a_keras_model": (lambda tmp: tfxfer.create_backbone("mobilenet_v2", weights="model.keras"),
                              ConfigError, r"pass it to tfxfer\.backbone_from_model\(\) instead \(recipes: as "
                                           r"--backbone\)\. Received: weights='model\.keras'"),
    "alpha_of_a_backbone_without_it": (lambda tmp: tfxfer.create_backbone("resnet50", weights=None, alpha=0.5),
                                       ConfigError, r"Leave alpha=None \(recipes: leave --alpha out; --student_alpha "
                                                    r"for a student\)\. Received: alpha=0\.5"),
    "text_weights_file_missing": (lambda tmp: tfxfer.load_hub_backbone(str(_folder(tmp / "preset")),
                                                                       weights=str(tmp / "w.weights.h5")),
                                  MissingFileError, r"\(recipes: --weights=pretrained, none or FILE\.weights\.h5; "
                                                    r"--student_weights for a student\)\. Received: weights='.*w\."),
    "label_columns_of_two_headers": (lambda tmp: tfxfer.load_image_csv(
        str(_file(tmp / "plants.csv", "image,Grade,grade\na.png,x,y\n")), label_columns=["GRADE"], image_size=(8, 8)),
        ConfigError, r"plants\.csv has columns 'Grade' and 'grade', which differ only by case.*so 'GRADE' could be "
                     r"either\. .*Received: 'GRADE' in label_columns"),
    "text_backbone_folder_missing": (lambda tmp: tfxfer.load_hub_backbone(str(tmp / "no_preset")),
                                     MissingFileError, r"no folder at that path\..*Received: backbone='.*no_preset'"),
    "text_backbone_is_a_file": (lambda tmp: tfxfer.load_hub_backbone(str(_file(tmp / "preset.txt"))),
                                NotAFolderError, r"must be a folder, but this path is a file\..*Received: "
                                                    r"backbone='.*preset\.txt'"),
    "word_vectors_missing": (lambda tmp: read_word_vectors(tmp / "nope.txt", ["good"]),
                             MissingFileError, r"GloVe/word2vec text-format file.*Received: word_vectors="),
    "word_vectors_not_numbers": (lambda tmp: _word_vectors(tmp, "good 0.1 0.2\nbad x y\n"),
                                 ConfigError, r"must be numbers .*Received: 'x y'\.\.\. on line 2"),
    "word_vectors_of_two_sizes": (lambda tmp: _word_vectors(tmp, "good 0.1 0.2\nbad 0.3\n"),
                                  ConfigError, r"must have 2 values .*Received: 1 values on line 2"),
    "pooling": (lambda tmp: TokenPooling("max"), ConfigError, r"Received: pooling='max'"),
    "layer_decay_out_of_range": (lambda tmp: layerwise_lr.layer_learning_rate_multipliers(
        _tiny_model(), 1.5), ConfigError, r"decay must be a number in \(0, 1\].*Received: decay=1\.5"),
    "layer_decay_without_backbone": (lambda tmp: layerwise_lr.layer_learning_rate_multipliers(
        _tiny_model(), 0.8), ConfigError, r"needs a tfxfer classifier with a layer named 'backbone'"),
    "export_dir_is_a_file": (lambda tmp: versioning.check_base_dir(str(_file(tmp / "f") / "model")),
                             NotAFolderError, r"is a file \(its parent '.*f' is a file\); pass a folder"),
    "model_name_escapes": (lambda tmp: versioning.model_dir(str(tmp), "../x"),
                           ConfigError, r"model_name must be one folder name.*Received: model_name='\.\./x'"),
    "no_saved_model": (lambda tmp: tfxfer.latest_version_dir(str(tmp)),
                       MissingFileError, r"No SavedModel in .*Received: base_dir="),
    "one_class": (lambda tmp: heads.head_kind_for(1),
                  ConfigError, r"at least 2 classes.*len\(data\.class_names\) counts its tasks: pass tasks=data\.tasks"
                               r"\)\. Received: num_classes=1"),
    "num_classes_a_string": (lambda tmp: heads.head_kind_for("3"),
                             ConfigError, r"num_classes must be an int.*Received: num_classes='3'"),
    "no_predictions_layer": (lambda tmp: heads.num_classes(_tiny_model("plain")),
                             ConfigError, r"no layer named 'predictions'.*Received: model='plain'"),
    "feature_cache_without_head": (lambda tmp: feature_cache.split_at_head(_tiny_model("plain")),
                                   ConfigError, r"Feature caching needs a head layer.*Received: model='plain'"),
    "tflite_variant": (lambda tmp: tflite.convert_tflite(_tiny_model(), "int4"),
                       ConfigError, r"variant must be one of .*Received: variant='int4'"),
    "no_epochs": (lambda tmp: planner.check_schedule_numbers(tfxfer.FineTuneConfig(epochs=0)),
                  ConfigError, r"epochs must be an int >= 1\. Received: epochs=0"),
    "negative_fine_tune_epochs": (lambda tmp: planner.check_schedule_numbers(
        tfxfer.FineTuneConfig(fine_tune_epochs=-2)),
        ConfigError, r"fine_tune_epochs must be an int >= 0 \(0 skips phase 2\)\. Received: fine_tune_epochs=-2"),
    "negative_learning_rate": (lambda tmp: planner.check_schedule_numbers(tfxfer.FineTuneConfig(learning_rate=-1.0)),
                               ConfigError, r"learning_rate must be a number > 0, e\.g\. 0\.003\. "
                                            r"Received: learning_rate=-1\.0"),
    "infinite_fine_tune_learning_rate": (lambda tmp: planner.check_schedule_numbers(
        tfxfer.FineTuneConfig(fine_tune_learning_rate=float("inf"))),
        ConfigError, r"fine_tune_learning_rate must be a number > 0, e\.g\. 0\.0001\. Received: "
                     r"fine_tune_learning_rate=inf"),
    "negative_weight_decay": (lambda tmp: planner.check_schedule_numbers(tfxfer.FineTuneConfig(weight_decay=-1.0)),
                              ConfigError, r"weight_decay must be a number >= 0 \(0: none\), e\.g\. 0\.0001\. "
                                           r"Received: weight_decay=-1\.0"),
    "nan_weight_decay": (lambda tmp: planner.check_schedule_numbers(tfxfer.FineTuneConfig(weight_decay=float("nan"))),
                         ConfigError, r"weight_decay must be a number >= 0.*Received: weight_decay=nan"),
    "label_smoothing_of_one_or_more": (lambda tmp: planner.check_schedule_numbers(
        tfxfer.FineTuneConfig(label_smoothing=2)),
        ConfigError, r"label_smoothing must be a number from 0 \(none\) up to, not including, 1.*"
                     r"Received: label_smoothing=2"),
    "global_clipnorm_of_zero": (lambda tmp: planner.check_schedule_numbers(
        tfxfer.FineTuneConfig(global_clipnorm=0.0)),
        ConfigError, r"global_clipnorm must be a number > 0.*or None to clip nothing\. Received: global_clipnorm=0\.0"),
    "early_stopping_patience_as_text": (lambda tmp: planner.check_schedule_numbers(
        tfxfer.FineTuneConfig(early_stopping_patience="3")),
        ConfigError, r"early_stopping_patience must be an int >= 0.*Received: early_stopping_patience='3'"),
    "dropout_of_one": (lambda tmp: heads.classification_head(keras.Input((4,)), 2, dropout=1.0),
                       ConfigError, r"dropout is the share of features dropped .* up to, not including, 1\. "
                                    r"Received: dropout=1\.0"),
    "negative_top_k": (lambda tmp: serving.check_top_k(-1, 3),
                       ConfigError, r"top_k must be a positive integer .*Received: top_k=-1"),
    "config_as_a_dict": (lambda tmp: planner.config_or_default({"epochs": 1}),
                         ConfigError, r"config must be a tfxfer\.FineTuneConfig.*tfxfer\.FineTuneConfig\(\*\*fields\)"
                                      r"\. Received: config of type dict"),
    "numpy_arrays_as_data": (lambda tmp: input_checks.check_are_datasets(
        validation_data=None, train_data=(np.zeros((4, 2)), np.zeros(4))),
        ConfigError, r"train_data must be a tf\.data\.Dataset of batches; NumPy arrays become one with "
                     r"tf\.data\.Dataset\.from_tensor_slices\(\(x, y\)\)\.batch\(32\)\. "
                     r"Received: train_data of type tuple"),
    "report_labels_as_class_names": (lambda tmp: tfxfer.classification_report(
        ["a", "b"], [[0.9, 0.1], [0.2, 0.8]], ["a", "b"]),
        ConfigError, r"Labels are class ids here \(ints from 0 to 1, in class_names order\), not class names or "
                     r"other values: turn names into ids with \[class_names\.index\(name\) for name in labels\]\. "
                     r"Received: e\.g\. \['a', 'b'\]"),
    "format_report_of_another_dict": (lambda tmp: tfxfer.format_report({"x": 1}),
                                      ConfigError, r"report must be a report dict as classification_report, "
                                                   r"evaluate_model or evaluate_export return it .*Received: a dict "
                                                   r"without 'task', 'num_examples', .* \(its keys: \['x'\]\)"),
    "class_counts_as_a_dict_of_strings": (lambda tmp: input_checks.check_class_counts({"ants": "12"}, 2),
                                          ConfigError, r"class_counts is a list of training examples per class.*not a "
                                                       r"dict.*Received: class_counts=\{'ants': '12'\}"),
    "class_counts_as_strings": (lambda tmp: input_checks.check_class_counts(["12", "3"], 2),
                                ConfigError, r"class_counts must be a list of numbers >= 0, the training examples of "
                                             r"each class.*Received: class_counts=\['12', '3'\]"),
}


@pytest.mark.parametrize("name", sorted(_LIBRARY_MISTAKES))
def test_library_mistakes_are_user_errors_with_their_message(name, tmp_path):
    call, error_type, match = _LIBRARY_MISTAKES[name]
    with pytest.raises(error_type, match=match) as info:
        call(tmp_path)
    assert isinstance(info.value, UserError), type(info.value).__mro__
