"""Hyperparameter search: the held-out split it scores on, `tfxfer.tune`, and the recipes' `--tune`.

The models are a tiny conv backbone on generated colour images (as in
tests/test_training.py), so a whole search of a few trials takes seconds.
"""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf
import tuning_run  # recipes/tuning_run.py
from _text_helpers import save_tiny_bert_preset, write_line_files
from absl import flags
from test_recipes import _run_recipe, _tiny_backbone_file, _write_colour_folders
from test_training import _colour_images, _tiny_backbone

import tfxfer
import tfxfer.tuning.search
from tfxfer.data import holdout
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError
from tfxfer.training import feature_cache
from tfxfer.tuning import space

NUM_CLASSES = 3
BASE = FineTuneConfig(epochs=3, fine_tune_epochs=7, learning_rate=3e-2, fine_tune_learning_rate=3e-3,
                      fine_tune_at=0.5, label_smoothing=0.0, early_stopping_patience=None)


def _examples(count=60, seed=0):
    labels = np.arange(count) % NUM_CLASSES
    return _colour_images(labels, seed), labels


def _batches(count=60, shuffle_seed=None, batch_size=8):
    images, labels = _examples(count)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(count, seed=shuffle_seed)
    return dataset.batch(batch_size)


def _classifier(dropout=0.2):
    return tfxfer.build_image_classifier(_tiny_backbone(), num_classes=NUM_CLASSES, preprocessing="tf",
                                         augmentation=False, dropout=dropout)


def _labels_and_pixels(dataset):
    """Each example as (label, sum of its pixels): enough to tell the generated examples apart."""
    return sorted((int(label), round(float(image.sum()), 1))
                  for images, labels in dataset for image, label in zip(images.numpy(), labels.numpy()))


# --- the held-out split ---

def test_holdout_is_the_same_examples_whatever_the_order_and_every_example_is_on_one_side():
    rest, held_out = holdout.split_by_content(_batches(shuffle_seed=1), 0.25, seed=3)
    other_rest, other_held_out = holdout.split_by_content(_batches(shuffle_seed=2, batch_size=5), 0.25, seed=3)

    assert _labels_and_pixels(held_out) == _labels_and_pixels(other_held_out)
    assert _labels_and_pixels(rest) == _labels_and_pixels(other_rest)
    assert sorted(_labels_and_pixels(rest) + _labels_and_pixels(held_out)) == _labels_and_pixels(_batches())
    assert 5 <= len(_labels_and_pixels(held_out)) <= 25  # 15 expected of 60
    assert max(len(labels) for _, labels in held_out) == 8  # the first batch's size


def test_holdout_depends_on_the_seed_and_keeps_the_fraction_on_many_examples():
    images = np.arange(4000, dtype=np.float32)[:, None]
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(4000, np.int64))).batch(100)
    held = [{float(x) for batch, _ in holdout.split_by_content(dataset, 0.2, seed=seed)[1] for x in batch.numpy()[:, 0]}
            for seed in (0, 1)]

    assert all(700 <= len(part) <= 900 for part in held)  # 800 expected; a binomial sd is 25
    assert held[0] != held[1]


def test_holdout_of_token_inputs_ignores_how_a_batch_padded_them():
    def tokens(rows, length):
        ids = np.zeros((len(rows), length), np.int32)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
        return {"token_ids": ids, "padding_mask": ids > 0}

    rows = [[5, 6], [7, 8, 9], [3], [4, 4, 4, 4]]
    short = tf.data.Dataset.from_tensors((tokens(rows, 4), np.array([0, 1, 0, 1])))
    long = tf.data.Dataset.from_tensors((tokens(rows, 9), np.array([0, 1, 0, 1])))
    buckets = [[int(holdout.example_bucket(inputs, label, seed=0)) for inputs, label in data.unbatch()]
               for data in (short, long)]
    assert buckets[0] == buckets[1]
    rest, held_out = holdout.split_by_content(long, 0.5, seed=0)
    for inputs, _ in rest.concatenate(held_out):  # trimmed again, to a multiple of 8 past the longest row
        longest = int(tf.reduce_max(tf.reduce_sum(tf.cast(inputs["padding_mask"], tf.int32), axis=1)))
        assert inputs["token_ids"].shape[1] == 8 >= longest


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, True])
def test_holdout_refuses_a_fraction_outside_0_and_1(fraction):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        holdout.split_by_content(_batches(), fraction)


# --- tfxfer.tune ---

def test_tune_scores_the_defaults_and_every_trial_on_held_out_data_and_returns_the_best(monkeypatch):
    model = _classifier()
    start_weights = model.get_weights()
    extractions = []
    cache_phase = feature_cache.cache_phase
    monkeypatch.setattr(feature_cache, "cache_phase",
                        lambda *args, **kwargs: extractions.append(1) or cache_phase(*args, **kwargs))

    result = tfxfer.tune(model, _batches(shuffle_seed=0), config=BASE, tuner="random", max_trials=3,
                         tune_epochs=1, seed=0)

    assert [row["trial"] for row in result.trials] == ["defaults", "0", "1", "2"]
    assert len(extractions) == 1  # the backbone ran over the data once, for every trial's phase 1
    assert all(row["phase2_epochs"] == 1 and row["status"] == "COMPLETED" for row in result.trials)
    searched = {"learning_rate", "fine_tune_learning_rate", "fine_tune_at", "label_smoothing", "weight_decay",
                "dropout"}
    assert all(searched <= set(row) for row in result.trials)
    defaults = result.trials[0]
    assert {name: defaults[name] for name in searched - {"dropout"}} == {
        name: getattr(BASE, name) for name in searched - {"dropout"}}
    assert defaults["dropout"] == pytest.approx(0.2)
    assert result.best_trial == tfxfer.tuning.search.best_row(result.trials, "val_accuracy")
    assert result.settings() == {name: result.best_trial[name] for name in searched}
    # The best settings on the base config, whose phases keep their own length.
    assert result.config.fine_tune_epochs == BASE.fine_tune_epochs and result.config.epochs == BASE.epochs
    assert result.config.learning_rate == result.best_trial["learning_rate"]
    assert result.config.fine_tune_at == result.best_trial["fine_tune_at"]
    # The model is as it came, with the best dropout for the training that follows.
    assert all(np.array_equal(a, b) for a, b in zip(start_weights, model.get_weights()))
    assert model.get_layer("dropout").rate == result.dropout == result.best_trial["dropout"]
    assert model.dropout == result.dropout
    assert 10 <= result.holdout_size <= 20  # 12 expected of 60
    assert result.summary()["trials"] == 4 and result.summary()["best"] == result.settings()


def test_best_row_ranks_by_the_objective_then_by_the_lower_loss():
    rows = [{"trial": "a", "status": "COMPLETED", "val_accuracy": 0.9, "val_loss": 0.5},
            {"trial": "b", "status": "COMPLETED", "val_accuracy": 0.9, "val_loss": 0.3},
            {"trial": "c", "status": "FAILED", "val_accuracy": 1.0, "val_loss": 0.1},
            {"trial": "d", "status": "COMPLETED", "val_accuracy": 0.8, "val_loss": 0.2}]
    assert tfxfer.tuning.search.best_row(rows, "val_accuracy")["trial"] == "b"
    assert tfxfer.tuning.search.best_row(rows, "val_loss")["trial"] == "d"
    with pytest.raises(ConfigError, match="Every trial of the search failed"):
        tfxfer.tuning.search.best_row(rows[2:3], "val_accuracy")


def test_hyperband_gives_trials_phase_2_budgets_up_to_tune_epochs():
    result = tfxfer.tune(_classifier(), _batches(), config=BASE, tuner="hyperband", max_trials=4, tune_epochs=3,
                         include_defaults=False, seed=0)

    budgets = [row["phase2_epochs"] for row in result.trials]
    assert len(budgets) == 4 and set(budgets) <= {1, 3} and 1 in budgets


def test_bayesian_search_runs_a_users_own_space_and_given_holdout():
    def own_space(hp):
        return {"fine_tune_learning_rate": hp.Float("fine_tune_learning_rate", 1e-4, 1e-2, sampling="log"),
                "dropout": hp.Choice("dropout", [0.0, 0.5])}

    result = tfxfer.tune(_classifier(), _batches(30), _batches(12), config=BASE, search_space=own_space,
                         tuner="bayesian", max_trials=2, tune_epochs=1, objective="val_loss")

    assert result.holdout_size == 12
    assert all(set(row) >= {"fine_tune_learning_rate", "dropout"} and "learning_rate" not in row
               for row in result.trials)
    assert all(1e-4 <= row["fine_tune_learning_rate"] <= 1e-2 for row in result.trials[1:])
    assert result.best_trial["val_loss"] == min(row["val_loss"] for row in result.trials)
    assert result.config.learning_rate == BASE.learning_rate  # not searched: the base's


def test_the_default_space_adds_dropout_only_to_models_with_a_dropout_layer():
    import keras_tuner

    with_dropout = space.default_space(_classifier(dropout=0.2))(keras_tuner.HyperParameters())
    without = space.default_space(_classifier(dropout=0.0))(keras_tuner.HyperParameters())
    assert set(with_dropout) - set(without) == {"dropout"}
    assert "layer_decay" not in with_dropout  # a conv backbone has no transformer blocks


def _tiny_bert_and_tokens(tmp_path):
    """A tiny BERT classifier, and line-file texts of two classes (24 each) split 75/25, tokenized by it."""
    data = tfxfer.load_text_data(write_line_files(tmp_path / "texts", count=24), batch_size=8,
                                 validation_split=0.25, seed=0)
    model = tfxfer.build_text_classifier(save_tiny_bert_preset(tmp_path / "bert"), num_classes=2,
                                         sequence_length=16)
    return model, data.map_inputs(model.preprocessor)


def test_tune_searches_layer_decay_of_a_transformer_on_trimmed_token_batches(tmp_path):
    model, tokens = _tiny_bert_and_tokens(tmp_path)

    result = tfxfer.tune(model, tokens.train, config=tfxfer.defaults.TextDefaults.fine_tune_config(),
                         tuner="random", max_trials=1, tune_epochs=1, include_defaults=False)

    [trial] = result.trials
    assert trial["status"] == "COMPLETED" and trial["layer_decay"] in (0.7, 0.8, 0.9, 1.0)
    assert trial["fine_tune_at"] in (0.25, 0.5) and result.config.layer_decay == trial["layer_decay"]
    assert 4 <= result.holdout_size <= 16  # 7 expected of 36 training texts


def test_every_trial_of_a_lora_search_starts_from_the_model_the_search_was_given(tmp_path):
    model, tokens = _tiny_bert_and_tokens(tmp_path)
    starting = {variable.path: variable.numpy() for variable in model.weights}
    runner_resets = []
    original_reset = tfxfer.tuning.search._TrialRunner.reset

    def reset(runner, dropout):
        original_reset(runner, dropout)
        # The weights the search was given, and any adapter an earlier trial added zeroed.
        runner_resets.append(all(np.array_equal(variable.numpy(), starting[variable.path]) if variable.path in starting
                                 else not np.any(variable.numpy()) for variable in runner.model.weights))

    config = tfxfer.defaults.TextDefaults.fine_tune_config().replace(lora_rank=2, mixed_precision=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tfxfer.tuning.search._TrialRunner, "reset", reset)
        result = tfxfer.tune(model, tokens.train, config=config, tuner="random", max_trials=2, tune_epochs=1)

    assert [trial["status"] for trial in result.trials] == ["COMPLETED"] * 3  # the defaults, then 2 trials
    assert len(runner_resets) >= 3 and all(runner_resets) and result.config.lora_rank == 2
    assert any("lora_kernel" in variable.path for variable in model.weights)  # the trials added adapters


@pytest.mark.parametrize("arguments, message", [
    ({"tuner": "grid"}, "tuner must be one of random, bayesian, hyperband"),
    ({"max_trials": 0}, "max_trials must be a positive integer"),
    ({"tune_epochs": 1.5}, "tune_epochs must be a positive integer"),
    ({"objective": "accuracy"}, "objective must be one of val_accuracy, val_loss"),
    ({"search_space": lambda hp: {"epochs": hp.Int("epochs", 1, 5)}}, "'epochs' is not among them"),
    ({"holdout_data": (np.zeros((4, 16, 16, 3)), np.zeros(4))},
     r"holdout_data must be a tf\.data\.Dataset of batches.*Received: holdout_data of type tuple"),
    ({"config": {"epochs": 1}}, r"config must be a tfxfer\.FineTuneConfig.*Received: config of type dict"),
    ({"holdout_fraction": 1.5}, r"holdout_fraction must be a number between 0 and 1, the expected share of "
                                r"examples held out, e\.g\. 0\.2\. Received: holdout_fraction=1\.5"),
    ({"holdout_data": tf.data.Dataset.from_tensor_slices((np.zeros((4, 16, 16, 3), "float32"), [0, 1, 2, 0])).batch(2)},
     r"The model takes 32x32x3 images but holdout_data's inputs are 16x16x3 images.*Received: holdout_data's inputs"),
    ({"holdout_data": _batches(12).map(lambda images, labels: (images, labels + 3))},
     r"holdout_data has label 5, but the model's head has 3 classes.*in the first batch of holdout_data"),
    ({"search_space": {"learning_rate": 0.01}},
     r"search_space must be a function of KerasTuner's HyperParameters.*Received: search_space of type dict"),
    # Nothing to search: every trial would train the base config again.
    ({"search_space": lambda hp: {}}, r"at least one setting drawn from its argument \(hp\.Float.*returned \{\}"),
    ({"search_space": lambda hp: {"learning_rate": 0.01}},
     r"Received: search_space returned \{'learning_rate': 0\.01\}"),
    ({"config": BASE.replace(fine_tune_epochs=0), "tuner": "hyperband"},
     r"Hyperband gives each trial a budget of phase-2 epochs, and config\.fine_tune_epochs=0 skips phase 2.*"
     r"Received: tuner='hyperband', fine_tune_epochs=0"),
    ({"config": BASE.replace(fine_tune_epochs=0),
      "search_space": lambda hp: {"fine_tune_at": hp.Choice("fine_tune_at", [0.2, 0.5]),
                                  "learning_rate": hp.Choice("learning_rate", [0.01, 0.03])}},
     r"searching the phase-2 settings 'fine_tune_at' would change nothing.*fine_tune_epochs >= 1\. "
     r"Received: \['fine_tune_at', 'learning_rate'\]"),
])
def test_tune_refuses_bad_arguments_before_any_trial(arguments, message):
    with pytest.raises(ConfigError, match=message):
        tfxfer.tune(_classifier(), _batches(), **{"config": BASE, **arguments})


@pytest.mark.parametrize("count, fraction, seed, message", [
    # Of these 9 examples, seed 0 holds out every one at 0.9; of these 14, seed 5 none at 0.05.
    (9, 0.9, 0, r"holdout_fraction=0\.9 of train_data's 9 examples leaves no example to train on \(examples are held "
                r"out by a hash of their content\)\. Lower holdout_fraction, or pass holdout_data\. "
                r"Received: holdout_fraction=0\.9"),
    (14, 0.05, 5, r"holdout_fraction=0\.05 of train_data's 14 examples leaves no example to score the trials on .*"
                  r"Raise holdout_fraction, or pass holdout_data\. Received: holdout_fraction=0\.05"),
])
def test_a_holdout_fraction_that_leaves_either_part_empty_is_refused_before_any_trial(count, fraction, seed, message):
    with pytest.raises(ConfigError, match=message):
        tfxfer.tune(_classifier(), _batches(count), config=BASE, tuner="random", max_trials=1, tune_epochs=1,
                    holdout_fraction=fraction, seed=seed)


def test_a_config_without_phase_2_is_searched_without_phase_2_in_its_trials():
    # The training that follows trains phase 1 alone: trials with a phase 2 would score another training,
    # and their phase-2 settings would change nothing in it.
    result = tfxfer.tune(_classifier(), _batches(), config=BASE.replace(fine_tune_epochs=0), tuner="random",
                         max_trials=2, tune_epochs=3, seed=0)

    assert [row["phase2_epochs"] for row in result.trials] == [0, 0, 0]
    assert set(result.settings()) == {"learning_rate", "label_smoothing", "weight_decay", "dropout"}
    assert result.config.fine_tune_epochs == 0
    assert (result.config.fine_tune_at, result.config.fine_tune_learning_rate) == (
        BASE.fine_tune_at, BASE.fine_tune_learning_rate)


def test_trials_are_scored_on_the_held_out_cross_entropy_without_their_own_label_smoothing(monkeypatch):
    # Scored with its own smoothing, a trial's loss would rise with the rate it tried, whatever it predicts:
    # objective="val_loss", and the ties of val_accuracy, would favour no smoothing.
    plain_losses = []
    run_phase = tfxfer.tuning.search.engine.run_phase

    def run_and_score(model, phase, *args, **kwargs):
        result = run_phase(model, phase, *args, **kwargs)
        if phase.name != "phase 2":  # the trial's last
            return result
        images, labels = (np.concatenate(part) for part in zip(*phase.validation.as_numpy_iterator()))
        probabilities = model.predict(images, verbose=0)
        plain_losses.append(float(np.mean(-np.log(probabilities[np.arange(len(labels)), labels]))))
        return result

    monkeypatch.setattr(tfxfer.tuning.search.engine, "run_phase", run_and_score)
    result = tfxfer.tune(_classifier(), _batches(), config=BASE,
                         search_space=lambda hp: {"label_smoothing": hp.Choice("label_smoothing", [0.0, 0.3])},
                         tuner="random", max_trials=2, tune_epochs=1, include_defaults=False, objective="val_loss")

    assert sorted(row["label_smoothing"] for row in result.trials) == [0.0, 0.3]
    assert [row["val_loss"] for row in result.trials] == pytest.approx(plain_losses, rel=1e-4)


def test_settings_fine_tune_refuses_stop_the_search_with_its_error():
    def bad_layer(hp):
        return {"fine_tune_at": hp.Choice("fine_tune_at", ["no_such_layer"])}

    with pytest.raises(ConfigError, match="no_such_layer"):
        tfxfer.tune(_classifier(), _batches(), config=BASE, search_space=bad_layer, tuner="random", max_trials=2,
                    tune_epochs=1, include_defaults=False)


def test_searching_dropout_of_a_model_without_a_dropout_layer_fails_before_any_trial():
    def with_dropout(hp):
        return {"dropout": hp.Choice("dropout", [0.1, 0.3])}

    with pytest.raises(ConfigError, match="no 'dropout' layer.*build it with dropout > 0"):
        tfxfer.tune(_classifier(dropout=0.0), _batches(), config=BASE, search_space=with_dropout)


# --- the recipes' --tune ---

def test_trials_csv_has_a_column_for_every_setting_any_trial_has():
    text = tuning_run.trials_csv([{"trial": "defaults", "val_accuracy": 0.5},
                                  {"trial": "0", "learning_rate": 0.01, "val_accuracy": 0.75}])
    rows = list(csv.DictReader(text.splitlines()))
    assert rows == [{"trial": "defaults", "val_accuracy": "0.5", "learning_rate": ""},
                    {"trial": "0", "val_accuracy": "0.75", "learning_rate": "0.01"}]


@pytest.mark.slow
def test_image_recipe_tunes_then_trains_with_the_best_settings_and_writes_a_flagfile_of_them(
        tmp_path, script_server):
    _write_colour_folders(tmp_path / "data", per_class=10)
    backbone = _tiny_backbone_file(tmp_path / "own.keras")
    common = [f"--data_dir={tmp_path / 'data'}", f"--backbone={backbone}", "--backbone_output_layer=features",
              "--batch_size=8", "--epochs=4", "--fine_tune_at=0", f"--export_dir={tmp_path / 'exports'}"]
    # A dropout rate (the image default is none) puts the head's dropout in the search too.
    process = _run_recipe(script_server, "image_classifier.py", *common, "--dropout=0.2", "--fine_tune_epochs=2",
                          "--tune=random", "--max_trials=1", "--tune_epochs=1", f"--run_dir={tmp_path / 'run'}")

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    tuning = metrics["tuning"]
    with open(tmp_path / "run" / "tuning" / "trials.csv", encoding="utf-8") as f:
        trials = list(csv.DictReader(f))
    assert [row["trial"] for row in trials] == ["defaults", "0"] and tuning["trials"] == 2
    assert {row["phase2_epochs"] for row in trials} == {"1"}
    best = next(row for row in trials if row["trial"] == tuning["best_trial"])
    assert float(best["val_accuracy"]) == pytest.approx(tuning["best_score"])
    # The final model trained with the best settings, for the run's own phase-2 length.
    for name in ("learning_rate", "fine_tune_learning_rate", "label_smoothing", "weight_decay", "dropout"):
        assert metrics[name] == pytest.approx(tuning["best"][name]) == pytest.approx(float(best[name])), name
    assert metrics["phase2"]["epochs_run"] == 2
    assert "tuning/trials.csv" in process.stdout and "tuning/best_flags.txt" in process.stdout

    # best_flags.txt reruns the run with those settings, without searching again.
    best_flags = tmp_path / "run" / "tuning" / "best_flags.txt"
    lines = best_flags.read_text().splitlines()
    assert not [line for line in lines if line.startswith(("--tune", "--max_trials"))]
    assert f"--dropout={tuning['best']['dropout']}" in lines and "--noscale_learning_rate" in lines
    _run_recipe(script_server, "image_classifier.py", f"--flagfile={best_flags}", "--fine_tune_epochs=0",
                f"--run_dir={tmp_path / 'rerun'}")
    rerun = json.loads((tmp_path / "rerun" / "metrics.json").read_text())
    assert "tuning" not in rerun
    for name in ("learning_rate", "label_smoothing", "weight_decay", "dropout"):
        assert rerun[name] == pytest.approx(tuning["best"][name]), name


def test_tune_with_the_learning_rate_finder_is_a_usage_error(tmp_path, script_server):
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path}", "--tune=random",
                                       "--find_learning_rate=1")
    assert "--tune searches both learning rates" in stderr


@pytest.mark.parametrize("arguments, message", [
    # tfxfer.tune refuses these too, but only once the data has loaded, and by its own argument names.
    (["--max_trials=0"], "--max_trials must be a positive integer, e.g. 10. Received: --max_trials=0"),
    (["--tune_epochs=-1"], "--tune_epochs must be a positive integer, e.g. 3. Received: --tune_epochs=-1"),
    (["--fine_tune_epochs=0", "--tune_epochs=2"],
     "--tune_epochs sets the phase-2 epochs of each trial of the search, and --fine_tune_epochs=0 skips phase 2 (in "
     "the trials as in the run), so --tune_epochs does nothing; pass --fine_tune_epochs=N (N >= 1) too, or leave "
     "--tune_epochs out. Received: --tune_epochs=2"),
])
def test_search_numbers_and_a_search_without_phase_2_are_checked_before_the_data_loads(
        arguments, message, tmp_path, script_server):
    stderr = script_server.usage_error("image_classifier.py", f"--data_dir={tmp_path}", "--tune=random", *arguments)
    assert message in stderr


def test_hyperband_without_phase_2_is_a_usage_error(tmp_path, script_server):
    stderr = script_server.usage_error("text_classifier.py", f"--data_dir={tmp_path}", "--tune=hyperband",
                                       "--fine_tune_epochs=0")
    assert ("--tune=hyperband gives each trial a budget of phase-2 epochs, and --fine_tune_epochs=0 skips phase 2"
            in stderr and "Received: --tune=hyperband --fine_tune_epochs=0" in stderr)


def test_the_flagfile_writes_changed_values_and_leaves_out_none(tmp_path):
    import run_folder  # recipes/run_folder.py

    values = flags.FlagValues()
    flags.DEFINE_float("learning_rate", 0.1, "rate", flag_values=values, module_name="recipe.py")
    flags.DEFINE_bool("scale_learning_rate", True, "scale", flag_values=values, module_name="recipe.py")
    flags.DEFINE_string("tune", None, "search", flag_values=values, module_name="recipe.py")
    values(["recipe.py", "--tune=random"])
    path = run_folder.write_flagfile(str(tmp_path), values, script="recipe.py", path=str(tmp_path / "t" / "b.txt"),
                                     changes={"learning_rate": 0.004, "tune": None, "scale_learning_rate": False})
    assert [line for line in open(path).read().splitlines() if not line.startswith("#")] == [
        "--learning_rate=0.004", "--noscale_learning_rate"]
