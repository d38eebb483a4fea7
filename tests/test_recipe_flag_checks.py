"""Flag values the recipes cannot use end with a usage message naming the flag, before any work.

Each runs a recipe with an empty data folder (or a model folder that does not
exist): a check that came later, after loading data or a model, would end with
another message, and one that came after training would take minutes.
"""

import os

import digits_data  # recipes/digits_data.py
import keras
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = ["image_classifier.py", "text_classifier.py"]
# The image recipe's flags of a registry backbone small enough to build in a second; no download.
TINY_MOBILENET = ["--backbone=mobilenet_v2", "--alpha=0.35", "--weights=none", "--image_size=32"]


def _usage_error(script_server, script, tmp_path, *flags):
    """stderr of `script` run with `flags` on an empty data folder, after asserting the usage-error ending
    (exit code 2, no traceback) and that no run folder was made."""
    (tmp_path / "empty").mkdir(exist_ok=True)  # loading it would fail with another message
    data = [] if script == "digits_transfer.py" else [f"--data_dir={tmp_path / 'empty'}"]
    own_backbone = any(flag.startswith("--backbone=") and flag.endswith(".keras") for flag in flags)
    tiny = TINY_MOBILENET if script == "image_classifier.py" and not own_backbone else []  # own: --alpha refused
    outputs = [f"--{name}={tmp_path / name}" for name in ("run_dir", "export_dir")
               if not any(flag.startswith(f"--{name}=") for flag in flags)]
    stderr = script_server.usage_error(script, *data, *tiny, *outputs, *flags)
    assert not (tmp_path / "run_dir").exists() and not (tmp_path / "export_dir").exists()
    return stderr


def _ending(script, message):
    return f"{script}: error: {message}\nRun {script} --helpshort for its flags.\n"


# 1. --labels_per_class of the digits job.

@pytest.mark.parametrize("value", [-1, 0, 174, 1000])
def test_digits_labels_per_class_out_of_range_is_a_usage_error(value, tmp_path, script_server):
    stderr = _usage_error(script_server, "digits_transfer.py", tmp_path, f"--labels_per_class={value}")
    assert stderr.endswith(_ending(
        "digits_transfer.py", "--labels_per_class must be an integer from 1 to 173: the labelled examples of each "
        "digit 5-9, whose smallest class has 174 images and keeps one for validation; e.g. 10. "
        f"Received: --labels_per_class={value}")), stderr[-2000:]


def test_digits_split_takes_labels_per_class_up_to_one_fewer_than_the_smallest_class():
    assert digits_data.labels_per_class_range() == range(1, 174)  # digit 8 has 174 images
    task = digits_data.load_digits_transfer(173)
    assert len(task.target_train.labels) == 5 * 173
    assert min(int((task.target_validation.labels == label).sum()) for label in range(5)) == 1
    for value in (0, -1, 174):
        with pytest.raises(ValueError, match=f"labels_per_class must be an int from 1 to 173. "
                                             f"Received: labels_per_class={value}"):
            digits_data.load_digits_transfer(value)


# 2. The distillation flags.

@pytest.mark.parametrize("script", RECIPES)
@pytest.mark.parametrize("flag, message", [
    ("--distill_alpha=2", "--distill_alpha must be a number in [0, 1]: the weight of the hard labels (1 ignores "
                          "the teacher, 0 learns from the teacher alone), e.g. 0.1. Received: --distill_alpha=2.0"),
    ("--distill_alpha=-0.5", "Received: --distill_alpha=-0.5"),
    ("--distill_temperature=0", "--distill_temperature must be a number > 0 (1 leaves the probabilities as they "
                                "are; 2 to 10 soften them, as is usual for distillation), e.g. 4.0. "
                                "Received: --distill_temperature=0.0"),
    ("--distill_temperature=inf", "Received: --distill_temperature=inf"),
])
def test_distillation_numbers_out_of_range_fail_before_any_work(script, flag, message, tmp_path, script_server):
    stderr = _usage_error(script_server, script, tmp_path, "--distill_into=mobilenet_v3_small",
                          "--student_weights=none", flag)
    assert f"{script}: error: " in stderr and stderr.endswith(f"{message}\n"), stderr[-2000:]


def test_text_recipe_negative_distill_augment_is_a_usage_error(tmp_path, script_server):
    stderr = _usage_error(script_server, "text_classifier.py", tmp_path, f"--distill_into={tmp_path / 'student'}",
                          "--distill_augment=-1")
    assert stderr.endswith(_ending("text_classifier.py", "--distill_augment must be >= 0 (0 makes no altered "
                                                         "copies). Received: --distill_augment=-1")), stderr[-2000:]


# 3. --warmup_examples.

@pytest.mark.parametrize("script", RECIPES)
def test_negative_warmup_examples_is_a_usage_error(script, tmp_path, script_server):
    stderr = _usage_error(script_server, script, tmp_path, "--warmup_examples=-1")
    assert stderr.endswith(_ending(script, "--warmup_examples must be >= 0 (0 writes no warmup file). "
                                           "Received: --warmup_examples=-1")), stderr[-2000:]


# 4. Empty folder flags (an unset shell variable, say).

@pytest.mark.parametrize("script, flag", [
    ("image_classifier.py", "run_dir"), ("image_classifier.py", "export_dir"),
    ("image_classifier.py", "backup_dir"), ("image_classifier.py", "tflite_dir"),
    ("text_classifier.py", "run_dir"), ("text_classifier.py", "export_dir"), ("text_classifier.py", "backup_dir"),
    ("digits_transfer.py", "run_dir"), ("digits_transfer.py", "export_dir"), ("digits_transfer.py", "tflite_dir"),
])
def test_an_empty_folder_flag_is_a_usage_error(script, flag, tmp_path, script_server):
    stderr = _usage_error(script_server, script, tmp_path, f"--{flag}=")
    assert stderr.endswith(_ending(script, f"--{flag} must be a folder (it is created if missing), but it is empty; "
                                           f"pass a folder ('.' for the current one), or leave --{flag} out for its "
                                           f"default. Received: --{flag}=")), stderr[-2000:]


def test_digits_folder_inside_a_file_is_a_usage_error(tmp_path, script_server):
    (tmp_path / "file.txt").write_text("")
    stderr = _usage_error(script_server, "digits_transfer.py", tmp_path, f"--run_dir={tmp_path / 'file.txt' / 'run'}")
    assert stderr.endswith(_ending("digits_transfer.py", f"--run_dir must be a folder (it is created if missing), "
                                                         f"but it is inside a file ({tmp_path / 'file.txt'}); pass "
                                                         f"another path. Received: --run_dir="
                                                         f"{tmp_path / 'file.txt' / 'run'}")), stderr[-2000:]


# 5. --seed.

@pytest.mark.parametrize("script", [*RECIPES, "digits_transfer.py"])
@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_numpy_cannot_take_is_a_usage_error(script, seed, tmp_path, script_server):
    stderr = _usage_error(script_server, script, tmp_path, f"--seed={seed}")
    assert stderr.endswith(_ending(script, f"--seed must be an integer from 0 to 4294967295 (2**32 - 1), e.g. 0. "
                                           f"Received: --seed={seed}")), stderr[-2000:]


# 6. evaluate.py --output.

def test_evaluate_empty_output_fails_before_the_evaluation(script_server):
    stderr = script_server.usage_error("evaluate.py", "--model_dir=nowhere", "--data_dir=somewhere", "--output=")
    assert stderr.endswith(_ending("evaluate.py", "--output is the report's file, but it is empty; pass a file "
                                                  "path such as metrics.json, or leave --output out for "
                                                  "evaluation/metrics.json in the evaluated version folder. "
                                                  "Received: --output=")), stderr[-2000:]
    assert not os.path.exists(os.path.join(REPO, ".tmp"))


@pytest.mark.parametrize("below", [["e.json"], ["reports", "e.json"]])
def test_evaluate_output_under_a_file_fails_before_the_evaluation(below, tmp_path, script_server):
    blocking = tmp_path / "file.txt"
    blocking.write_text("not a folder")
    output = os.path.join(blocking, *below)
    stderr = script_server.usage_error("evaluate.py", "--model_dir=nowhere", "--data_dir=somewhere",
                                       f"--output={output}")
    assert stderr.endswith(_ending("evaluate.py", f"--output is the report's file, but {blocking} on its path is a "
                                                  f"file, not a folder; pass a path in a folder (missing folders are "
                                                  f"created). Received: --output={output}")), stderr[-2000:]
    assert os.listdir(tmp_path) == ["file.txt"] and blocking.read_text() == "not a folder"


# 7. Flags that would do nothing: refused when passed, let through where they act or at their defaults.

# What each recipe says of the empty data folder: the run got past every flag check to loading the data.
_NO_DATA = {"image_classifier.py": "error: Found no class sub-folders in ",
            "text_classifier.py": "error: Expected a folder of class folders "}
_STUDENT = ", which is not set, so {flag} does nothing; pass --distill_into=STUDENT too, or leave {flag} out. "


def _error_line(stderr):
    return [line for line in stderr.splitlines() if ": error: " in line][-1]


def _passes_the_flag_checks(script_server, script, tmp_path, *flags):
    stderr = _usage_error(script_server, script, tmp_path, *flags)
    assert _NO_DATA[script] in _error_line(stderr), stderr[-2000:]


@pytest.mark.parametrize("script, flag, does, received", [
    *[(script, flag, does, received) for script in RECIPES for flag, does, received in [
        ("--student_weights", "sets the starting weights of the student", "none"),
        ("--distill_temperature", "softens the teacher's probabilities for the student", "2.0"),
        ("--distill_alpha", "weighs the labels against the teacher's probabilities for the student", "0.5"),
        ("--unlabelled_data", "is for the student", "more")]],
    ("image_classifier.py", "--student_alpha", "sets the width of the MobileNet student", "0.35"),
    ("image_classifier.py", "--student_image_size", "sets the input size of the student", "16"),
    ("text_classifier.py", "--distill_augment", "makes texts for the student", "2"),
])
def test_a_student_flag_without_distill_into_is_a_usage_error(script, flag, does, received, tmp_path, script_server):
    stderr = _usage_error(script_server, script, tmp_path, f"{flag}={received}")
    assert stderr.endswith(_ending(script, f"{flag} {does} of --distill_into"
                                           f"{_STUDENT.format(flag=flag)}Received: {flag}={received}")), \
        stderr[-2000:]


@pytest.mark.parametrize("script, flag, does, received", [
    ("image_classifier.py", "--max_trials", "sets the number of trials", "5"),
    ("text_classifier.py", "--max_trials", "sets the number of trials", "5"),
    ("image_classifier.py", "--tune_epochs", "sets the phase-2 epochs of each trial", "2"),
    ("text_classifier.py", "--tune_holdout", "sets the share of the training data that scores the trials", "0.3"),
])
def test_a_search_setting_without_tune_is_a_usage_error(script, flag, does, received, tmp_path, script_server):
    stderr = _usage_error(script_server, script, tmp_path, f"{flag}={received}")
    assert stderr.endswith(_ending(script, f"{flag} {does} of the search of --tune, which is not set, so {flag} does "
                                           f"nothing; pass --tune=random|bayesian|hyperband too, or leave {flag} out. "
                                           f"Received: {flag}={received}")), stderr[-2000:]


def test_image_column_without_label_columns_is_a_usage_error(tmp_path, script_server):
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, "--image_column=path")
    assert stderr.endswith(_ending("image_classifier.py", "--image_column names the image column of the CSV/TSV read "
                                                          "with --label_columns, which is not set, so --image_column "
                                                          "does nothing; pass --label_columns=COLUMN[,COLUMN...] too, "
                                                          "or leave --image_column out. Received: --image_column=path")
                           ), stderr[-2000:]


def test_backbone_output_layer_is_refused_with_a_registry_backbone_and_taken_with_your_own(tmp_path, script_server):
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, "--backbone_output_layer=features")
    assert stderr.endswith(_ending(
        "image_classifier.py", "--backbone_output_layer is the layer to cut your own .keras --backbone at, and "
        "--backbone=mobilenet_v2 is not a .keras file: a keras.applications backbone brings its own features layer, "
        "so --backbone_output_layer does nothing. Leave it out, or pass your model as --backbone=FILE.keras. "
        "Received: --backbone_output_layer=features")), stderr[-2000:]
    # With a .keras file it cuts that model: the checks let it through to loading the file.
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, f"--backbone={tmp_path / 'own.keras'}",
                          "--backbone_output_layer=features")
    assert "own.keras" in _error_line(stderr) and "does nothing" not in stderr, stderr[-2000:]


def _own_backbone_file(path):
    """A tiny .keras model of 32x32 images, for the image recipe's --backbone (loaded before the data)."""
    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Conv2D(4, 3, name="features")(inputs)).save(path)
    return path


@pytest.mark.parametrize("flag, message", [
    ("--alpha=0.5", "--alpha sets the width of a MobileNet registry backbone, and --backbone={own} is your own .keras "
                    "model, whose width is the one it was saved with, so --alpha does nothing; leave it out. "
                    "Received: --alpha=0.5"),
    ("--weights=none", "--weights picks the starting weights of a registry backbone, and --backbone={own} is your own "
                       ".keras model, which starts from the weights saved in it, so --weights does nothing; leave it "
                       "out. Received: --weights=none"),
])
def test_alpha_and_weights_are_refused_with_your_own_backbone(flag, message, tmp_path, script_server):
    own = _own_backbone_file(tmp_path / "own.keras")
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, f"--backbone={own}", flag)
    assert stderr.endswith(_ending("image_classifier.py", message.format(own=own))), stderr[-2000:]


@pytest.mark.parametrize("flag", ["--nosafe_mode", "--safe_mode=false"])
def test_nosafe_mode_is_refused_with_a_registry_backbone_and_taken_with_your_own(flag, tmp_path, script_server):
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, flag)
    assert stderr.endswith(_ending(
        "image_classifier.py", "--nosafe_mode lets your own .keras --backbone run the Python code of its Lambda "
        "layers as it loads, and --backbone=mobilenet_v2 is not a .keras file: a keras.applications backbone is "
        "built, not loaded, so --nosafe_mode does nothing. Leave it out, or pass your model as "
        "--backbone=FILE.keras. Received: --nosafe_mode")), stderr[-2000:]
    # Your own model loads with it, and --weights at its default passes too when a flagfile (a run's flags.txt,
    # which lists every flag) sets it; typed, it is refused even at its default, since it does nothing.
    own = _own_backbone_file(tmp_path / "own.keras")
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("--weights=pretrained\n")
    _passes_the_flag_checks(script_server, "image_classifier.py", tmp_path, f"--backbone={own}", flag,
                            f"--flagfile={flagfile}")
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, f"--backbone={own}", "--weights=pretrained")
    assert stderr.endswith("so --weights does nothing; leave it out. Received: --weights=pretrained\n"
                           "Run image_classifier.py --helpshort for its flags.\n"), stderr[-2000:]


def test_text_recipe_backbone_with_word_vectors_is_a_usage_error(tmp_path, script_server):
    stderr = _usage_error(script_server, "text_classifier.py", tmp_path, f"--word_vectors={tmp_path / 'v.txt'}",
                          "--backbone=bert_tiny_en_uncased")
    assert stderr.endswith(_ending("text_classifier.py", "--backbone is not used with --word_vectors, whose vectors "
                                                         "are the model's backbone instead; leave one of them out. "
                                                         "Received: --backbone=bert_tiny_en_uncased")), stderr[-2000:]


def test_text_recipe_encoder_is_refused_unless_a_model_reads_word_vectors(tmp_path, script_server):
    stderr = _usage_error(script_server, "text_classifier.py", tmp_path, "--encoder=mean")
    assert stderr.endswith(_ending("text_classifier.py", "--encoder is the encoder over word vectors (--word_vectors, "
                                                         "or a word-vector file as --distill_into), and --backbone is "
                                                         "a transformer, which has its own, so --encoder does nothing; "
                                                         "leave it out, or pass --word_vectors=FILE. "
                                                         "Received: --encoder=mean")), stderr[-2000:]
    # It builds the model over --word_vectors, or a word-vector student under a transformer teacher.
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 1 0\n")
    for model_or_student in ("--word_vectors", "--distill_into"):
        _passes_the_flag_checks(script_server, "text_classifier.py", tmp_path, "--encoder=mean",
                                f"{model_or_student}={vectors}")


def test_text_recipe_pooling_is_refused_unless_a_model_is_a_transformer(tmp_path, script_server):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 1 0\n")
    message = _ending("text_classifier.py", "--pooling pools a transformer's token features, and the encoder over "
                                            "--word_vectors gives one vector per text, so --pooling does nothing; "
                                            "leave it out (--encoder=mean averages the word vectors). "
                                            "Received: --pooling=cls")
    for student in ([], [f"--distill_into={vectors}"]):  # no student, or a word-vector one
        stderr = _usage_error(script_server, "text_classifier.py", tmp_path, f"--word_vectors={vectors}",
                              "--pooling=cls", *student)
        assert stderr.endswith(message), stderr[-2000:]
    # A transformer student (a preset, not a file) pools with it.
    _passes_the_flag_checks(script_server, "text_classifier.py", tmp_path, f"--word_vectors={vectors}",
                            "--pooling=cls", f"--distill_into={tmp_path / 'preset'}")


def test_text_recipe_weights_are_refused_for_word_vectors_before_the_data_loads(tmp_path, script_server):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 1 0\n")
    stderr = _usage_error(script_server, "text_classifier.py", tmp_path, f"--word_vectors={vectors}",
                          "--weights=none")
    assert stderr.endswith(_ending("text_classifier.py", "--weights are the weights of a keras-hub --backbone, and "
                                                         "--word_vectors replaces it with the file's vectors, which "
                                                         "are the model's own; leave --weights out. "
                                                         "Received: --weights=none")), stderr[-2000:]
    # A word-vector student's too, under either kind of teacher.
    for teacher in ([], [f"--word_vectors={vectors}"]):
        stderr = _usage_error(script_server, "text_classifier.py", tmp_path, *teacher, f"--distill_into={vectors}",
                              "--student_weights=none")
        assert stderr.endswith(_ending("text_classifier.py", f"--student_weights are the starting weights of a "
                                                             f"keras-hub student, and --distill_into={vectors} is a "
                                                             f"word-vector file, whose vectors are the student's "
                                                             f"own; leave --student_weights out. "
                                                             f"Received: --student_weights=none")), stderr[-2000:]
    # At their defaults from a flagfile (as a run's flags.txt lists them), and for a transformer student, they pass.
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("--weights=pretrained\n--student_weights=pretrained\n")
    _passes_the_flag_checks(script_server, "text_classifier.py", tmp_path, f"--word_vectors={vectors}",
                            f"--flagfile={flagfile}", f"--distill_into={vectors}")
    _passes_the_flag_checks(script_server, "text_classifier.py", tmp_path, f"--word_vectors={vectors}",
                            f"--distill_into={tmp_path / 'preset'}", "--student_weights=none")


_EMPTY_STUDENT = ("--distill_into must be {what}, but it is empty; pass one, or leave --distill_into out to export the "
                  "model alone. Received: --distill_into=")
_EMPTY_UNLABELLED = ("--unlabelled_data must be {what}, but it is empty; pass one, or leave --unlabelled_data out to "
                     "distil on the training data alone. Received: --unlabelled_data=")


@pytest.mark.parametrize("script, flags, message", [
    ("text_classifier.py", ["--word_vectors="], "--word_vectors must be a GloVe/word2vec text-format file, but it is "
                                                "empty; pass one, or leave --word_vectors out to train --backbone. "
                                                "Received: --word_vectors="),
    ("image_classifier.py", ["--distill_into=mobilenet_v3_small", "--unlabelled_data="],
     _EMPTY_UNLABELLED.format(what="a folder of images (any depth)")),
    ("text_classifier.py", ["--distill_into=student", "--unlabelled_data="],
     _EMPTY_UNLABELLED.format(what="a text file with one text per line")),
    # Empty, not unset: a student flag with it is not told that --distill_into "is not set".
    *[(script, ["--distill_into=", *student], _EMPTY_STUDENT.format(what=what))
      for script, what in [("image_classifier.py", "an image backbone name, e.g. mobilenet_v3_small"),
                           ("text_classifier.py", "a keras-hub preset or folder, or a word-vector file")]
      for student in ([], ["--distill_temperature=2"])],
])
def test_an_empty_data_flag_is_a_usage_error(script, flags, message, tmp_path, script_server):
    stderr = _usage_error(script_server, script, tmp_path, *flags)
    assert stderr.endswith(_ending(script, message)), stderr[-2000:]


def test_a_runs_flagfile_with_every_flag_at_its_default_passes_the_checks(tmp_path, script_server):
    # flags.txt lists every flag, defaults included (run_folder.write_flagfile), so that it reruns the run.
    defaults = ["--student_weights=pretrained", "--distill_temperature=4.0", "--distill_alpha=0.1", "--max_trials=10",
                "--tune_epochs=3", "--tune_holdout=0.2"]
    own = {"image_classifier.py": ["--image_column=image", "--safe_mode"],
           "text_classifier.py": [f"--word_vectors={tmp_path / 'v.txt'}", "--backbone=bert_small_en_uncased",
                                  "--weights=pretrained",
                                  "--encoder=bilstm", "--pooling=avg", "--distill_augment=4"]}
    for script in RECIPES:
        flagfile = tmp_path / f"{script}.flags"
        flagfile.write_text("\n".join(defaults + own[script]) + "\n")
        _passes_the_flag_checks(script_server, script, tmp_path, f"--flagfile={flagfile}")


@pytest.mark.parametrize("script, flag", [("image_classifier.py", "--max_trials=10"),
                                          ("text_classifier.py", "--distill_temperature=4.0")])
def test_a_flag_typed_at_its_default_where_it_does_nothing_is_refused_too(script, flag, tmp_path, script_server):
    # Typed, a default is a flag the user set (and may think does something); from a flagfile, it is not.
    stderr = _usage_error(script_server, script, tmp_path, flag)
    assert stderr.endswith(f"Received: {flag}\nRun {script} --helpshort for its flags.\n"), stderr[-2000:]


# 8. Mistakes absl finds parsing the flags end as the recipes' own do, not with absl's "FATAL" and exit code 1.

@pytest.mark.parametrize("script, flags, message", [
    ("image_classifier.py", ["--mixed_precision=fp16"],
     "flag --mixed_precision=fp16: value should be one of <off|auto|mixed_bfloat16|mixed_float16>"),
    ("image_classifier.py", ["--find_learning_rate=3"], "flag --find_learning_rate=3: value should be one of <1|2>"),
    ("text_classifier.py", ["--epochs=abc"], "flag --epochs=abc: invalid literal for int() with base 10: 'abc'"),
    ("digits_transfer.py", ["--nosuchflag"], "Unknown command line flag 'nosuchflag'"),
    ("evaluate.py", ["--model_dir=nowhere", "--nosuchflag"], "Unknown command line flag 'nosuchflag'"),
    ("predict.py", ["photo.png"], "flag --model_dir=None: Flag --model_dir must have a value other than None."),
])
def test_a_flag_absl_cannot_parse_is_a_usage_error(script, flags, message, script_server):
    stderr = script_server.usage_error(script, *flags)
    assert stderr == _ending(script, message)  # the message alone: nothing of absl's "FATAL Flags parsing error"


# 9. What fine_tune would refuse once the images are decoded and the model built, refused from the flags.

def test_lora_rank_with_a_registry_backbone_is_refused_before_any_work(tmp_path, script_server):
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, "--lora_rank=8")
    assert stderr.endswith(
        "image_classifier.py: error: LoRA cannot adapt the keras.applications backbone 'mobilenet_v2': it is a "
        "convolutional network, Keras has no LoRA for convolutions, and tfxfer's LoRA is for transformer backbones "
        "(it adapts their Dense and EinsumDense projections). Leave lora_rank unset (None; in the recipes, no "
        "--lora_rank) to fine-tune its top layers from fine_tune_at. Received: lora_rank=8, "
        "backbone='mobilenet_v2'\n"), stderr[-2000:]
    # Your own model may have layers LoRA adapts: that is decided once it is built.
    own = _own_backbone_file(tmp_path / "own.keras")
    _passes_the_flag_checks(script_server, "image_classifier.py", tmp_path, f"--backbone={own}", "--lora_rank=4")


def test_jit_compile_with_augmentation_is_refused_before_any_work(tmp_path, script_server):
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, "--jit_compile")
    assert "image_classifier.py: error: jit_compile=True needs every layer to compile with XLA, but Keras marks " \
           "these as not compilable: random_affine (RandomAffine)" in stderr, stderr[-2000:]
    assert stderr.endswith("--noaugmentation in the image recipe). Received: jit_compile=True\n"), stderr[-2000:]
    _passes_the_flag_checks(script_server, "image_classifier.py", tmp_path, "--jit_compile", "--noaugmentation")


# 10. Flags of phase 2 with --fine_tune_epochs=0, which skips it: refused, as flags that would do nothing are.

_SKIPPED_PHASE_2 = (", and --fine_tune_epochs=0 skips phase 2, so {flag} does nothing; pass --fine_tune_epochs=N "
                    "(N >= 1) too, or leave {flag} out. Received: {flag}={value}")


@pytest.mark.parametrize("script, flag, does, value", [
    ("text_classifier.py", "--layer_decay", "decays the learning rate of phase 2 layer by layer", "0.8"),
    ("text_classifier.py", "--lora_rank", "trains LoRA adapters in phase 2", "8"),
    ("image_classifier.py", "--fine_tune_learning_rate", "sets the learning rate of phase 2", "0.001"),
    ("image_classifier.py", "--fine_tune_at", "picks the first backbone layer that phase 2 unfreezes", "0.5"),
    ("image_classifier.py", "--fine_tune_ema_momentum", "averages the weights of phase 2", "0.9"),
    ("text_classifier.py", "--fine_tune_interpolation", "moves phase 2's weights back toward phase 1's", "0.5"),
])
def test_a_phase_2_flag_without_phase_2_is_a_usage_error(script, flag, does, value, tmp_path, script_server):
    stderr = _usage_error(script_server, script, tmp_path, "--fine_tune_epochs=0", f"{flag}={value}")
    assert stderr.endswith(_ending(script, f"{flag} {does}{_SKIPPED_PHASE_2.format(flag=flag, value=value)}")), \
        stderr[-2000:]
    # With a phase 2 it shapes it: the checks let it through to loading the data.
    _passes_the_flag_checks(script_server, script, tmp_path, "--fine_tune_epochs=1", f"{flag}={value}")
    # A run's flagfile rerun with --fine_tune_epochs=0 typed after it skips that run's phase 2 on purpose.
    flagfile = tmp_path / "run.flags"
    flagfile.write_text(f"--fine_tune_epochs=1\n{flag}={value}\n")
    _passes_the_flag_checks(script_server, script, tmp_path, f"--flagfile={flagfile}", "--fine_tune_epochs=0")
    # Typed, or in the same file as --fine_tune_epochs=0, it is the user's own and refused.
    flagfile.write_text(f"--fine_tune_epochs=0\n{flag}={value}\n")
    stderr = _usage_error(script_server, script, tmp_path, f"--flagfile={flagfile}")
    assert f"Received: {flag}={value}\nRun {script} --helpshort" in stderr, stderr[-2000:]


def test_the_phase_2_learning_rate_finder_without_phase_2_is_a_usage_error(tmp_path, script_server):
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, "--fine_tune_epochs=0",
                          "--find_learning_rate=2")
    assert stderr.endswith(_ending(
        "image_classifier.py", "--find_learning_rate=2 runs the learning-rate finder right before phase 2, and "
        "--fine_tune_epochs=0 skips phase 2, so there is no phase to run it before; pass --fine_tune_epochs=N (N >= 1) "
        "too, or --find_learning_rate=1 for phase 1. Received: --find_learning_rate=2")), stderr[-2000:]
    _passes_the_flag_checks(script_server, "image_classifier.py", tmp_path, "--fine_tune_epochs=0",
                            "--find_learning_rate=1")
    # A flags.txt lists every flag at its value, defaults included: a run without phase 2 reruns from it.
    flagfile = tmp_path / "text.flags"
    flagfile.write_text("--fine_tune_epochs=0\n--fine_tune_at=0.5\n--fine_tune_learning_rate=5e-05\n"
                        "--fine_tune_interpolation=1.0\n")
    _passes_the_flag_checks(script_server, "text_classifier.py", tmp_path, f"--flagfile={flagfile}")


# 11. --image_size and --student_image_size: one number (a square) or HEIGHT,WIDTH.

_IMAGE_SIZE_FORMS = "one positive integer for a square (e.g. 224) or HEIGHT,WIDTH for another shape (e.g. 256,320)"
_A_STUDENT = ["--distill_into=mobilenet_v3_small", "--student_weights=none"]


@pytest.mark.parametrize("flag, student", [("--image_size", []), ("--student_image_size", _A_STUDENT)])
@pytest.mark.parametrize("value", ["32,48,64", "32.5", "", "0", "-32", "32,0"])
def test_an_image_size_that_is_not_one_or_two_positive_integers_is_a_usage_error(flag, student, value, tmp_path,
                                                                                  script_server):
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, *student, f"{flag}={value}")
    assert stderr.endswith(_ending("image_classifier.py", f"{flag} must be {_IMAGE_SIZE_FORMS}. "
                                                          f"Received: {flag}={value}")), stderr[-2000:]


_TOO_SMALL = ("Backbone '{name}' needs inputs of at least 32x32 pixels; use a larger image size (recipes: {flag}; its "
              "ImageNet weights were trained at 224). Received: input_shape={shape}")


@pytest.mark.parametrize("flag, student, value, reason", [
    ("--image_size", [], "16", _TOO_SMALL.format(name="mobilenet_v2", flag="--image_size", shape=(16, 16, 3))),
    ("--image_size", [], "16,320", _TOO_SMALL.format(name="mobilenet_v2", flag="--image_size", shape=(16, 320, 3))),
    # The hint names the student's flag, not the teacher's.
    ("--student_image_size", _A_STUDENT, "40,16",
     _TOO_SMALL.format(name="mobilenet_v3_small", flag="--student_image_size", shape=(40, 16, 3))),
])
def test_an_image_size_the_backbone_refuses_is_a_usage_error_naming_the_flag(flag, student, value, reason, tmp_path,
                                                                             script_server):
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, *student, f"{flag}={value}")
    taker = "--distill_into" if student else "--backbone"
    assert stderr.endswith(_ending("image_classifier.py", f"{reason}. Pass {flag} as {_IMAGE_SIZE_FORMS} that {taker} "
                                                          f"takes. Received: {flag}={value}")), stderr[-2000:]


def test_an_image_size_your_own_backbone_refuses_is_a_usage_error_naming_the_flag(tmp_path, script_server):
    own = _own_backbone_file(tmp_path / "own.keras")
    stderr = _usage_error(script_server, "image_classifier.py", tmp_path, f"--backbone={own}",
                          "--backbone_output_layer=features", "--image_size=24,40")
    assert stderr.endswith(_ending("image_classifier.py", "Your backbone takes (32, 32) images; image_size must match "
                                                          "it or be left out. Received: image_size=(24, 40). Pass "
                                                          f"--image_size as {_IMAGE_SIZE_FORMS} that --backbone "
                                                          "takes. Received: --image_size=24,40")), stderr[-2000:]
    # Its own size, as one number or as HEIGHT,WIDTH, passes.
    for value in ("32", "32,32"):
        _passes_the_flag_checks(script_server, "image_classifier.py", tmp_path, f"--backbone={own}",
                                "--backbone_output_layer=features", f"--image_size={value}")


def test_a_height_and_width_pass_the_checks_for_the_model_and_the_student(tmp_path, script_server):
    _passes_the_flag_checks(script_server, "image_classifier.py", tmp_path, "--image_size=32,48")
    _passes_the_flag_checks(script_server, "image_classifier.py", tmp_path, "--image_size=32,48", *_A_STUDENT,
                            "--student_image_size=40,32")
