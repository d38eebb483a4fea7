"""`--tune`: the hyperparameter search a recipe runs before training, and the files it leaves.

    config = training_flags.fine_tune_config(global_batch)
    search = tuning_run.search(model, data.train, config, class_counts=data.train_class_counts)
    if search is not None:
        config = search.config                         # the model already has the best dropout
    ... train_or_resume(..., config, ..., search=search), export ...  # backs the search up with the model
    written = tuning_run.write(run_dir, search)        # tuning/trials.csv, tuning/best_flags.txt

The trials are scored on `--tune_holdout` of the training data; the final model
then trains on all of it and is evaluated once, on the validation data.
"""

import csv
import io
import os

import run_folder
import tensorflow as tf
import training_flags
from absl import app, flags, logging

import tfxfer
from tfxfer import tuning

FLAGS = flags.FLAGS
TUNING_DIR = "tuning"
TRIALS_FILE = "trials.csv"
BEST_FLAGS_FILE = "best_flags.txt"
# The search's settings, and what each does (`training_flags.refuse_without`): without --tune there is no
# search, and they would do nothing.
_SEARCH_SETTINGS = {
    "max_trials": "sets the number of trials of the search of",
    "tune_epochs": "sets the phase-2 epochs of each trial of the search of",
    "tune_holdout": "sets the share of the training data that scores the trials of the search of",
}
# The search's own flags: the best settings' flagfile trains with them, it does not search again.
_SEARCH_FLAGS = ("tune", *_SEARCH_SETTINGS)


def check_flags() -> None:
    """Usage errors of the search flags, before any work: the search's settings without --tune would do nothing,
    numbers `tfxfer.tune` refuses would stop the run once its data has loaded, and without phase 2
    (`_check_without_phase_2`) the trials have none either."""
    training_flags.refuse_without("tune", _SEARCH_SETTINGS, how=f"--tune={'|'.join(tuning.TUNERS)}")
    if not FLAGS.tune:
        return
    if FLAGS.find_learning_rate:
        raise app.UsageError("--tune searches both learning rates; --find_learning_rate would replace the one it "
                             f"found. Pass one of them. Received: --tune={FLAGS.tune} "
                             f"--find_learning_rate={FLAGS.find_learning_rate}")
    if not 0 < FLAGS.tune_holdout < 1:
        raise app.UsageError(f"--tune_holdout must be between 0 and 1, e.g. 0.2. Received: "
                             f"--tune_holdout={FLAGS.tune_holdout}")
    for name in ("max_trials", "tune_epochs"):  # tfxfer.tune would refuse them only once the data has loaded
        if FLAGS[name].value < 1:
            raise app.UsageError(f"--{name} must be a positive integer, e.g. {FLAGS[name].default}. "
                                 f"Received: --{name}={FLAGS[name].value}")
    if not FLAGS.fine_tune_epochs:
        _check_without_phase_2()


def _check_without_phase_2() -> None:
    """With --fine_tune_epochs=0 the trials train as the run does, phase 1 alone (`tfxfer.tune`): Hyperband, whose
    budgets are phase-2 epochs, cannot search, and --tune_epochs does nothing."""
    if FLAGS.tune == "hyperband":
        raise app.UsageError("--tune=hyperband gives each trial a budget of phase-2 epochs, and --fine_tune_epochs=0 "
                             "skips phase 2 (in the trials as in the run), so every trial would train as long; pass "
                             "--tune=random or --tune=bayesian, or --fine_tune_epochs=N (N >= 1). "
                             "Received: --tune=hyperband --fine_tune_epochs=0")
    # Except after a run's flagfile with phase 2 skipped on purpose, as training_flags.check_phase_2_flags allows.
    if training_flags.on_command_line("fine_tune_epochs") and not training_flags.on_command_line("tune_epochs"):
        return
    training_flags.refuse_if_passed(
        "tune_epochs", "--tune_epochs sets the phase-2 epochs of each trial of the search, and --fine_tune_epochs=0 "
        "skips phase 2 (in the trials as in the run), so --tune_epochs does nothing; pass --fine_tune_epochs=N "
        "(N >= 1) too, or leave --tune_epochs out.")


def search(model, train, config: tfxfer.FineTuneConfig, *, class_counts) -> "tfxfer.TuneResult | None":
    """The search `--tune` asks for (None without it); the model keeps its weights, with the best dropout.

    A run killed after training left its search in --backup_dir with the trained model (`run_folder.save_trained`):
    the rerun, which exports that model rather than train `model`, takes the search from there instead.
    """
    if not FLAGS.tune:
        return None
    backed_up = run_folder.load_search(FLAGS.backup_dir)
    if backed_up is not None:
        logging.warning("Search skipped: %s holds the search that chose the settings of the model it backed up "
                        "(best trial %s of %d); its trials go to %s/ as a search's would.", FLAGS.backup_dir,
                        backed_up.best_trial["trial"], len(backed_up.trials), TUNING_DIR)
        return backed_up
    return tfxfer.tune(model, train, config=config, tuner=FLAGS.tune, max_trials=FLAGS.max_trials,
                       tune_epochs=FLAGS.tune_epochs, holdout_fraction=FLAGS.tune_holdout, seed=FLAGS.seed,
                       class_counts=class_counts)


def write(run_dir: str, result: "tfxfer.TuneResult | None") -> list[str]:
    """Writes `tuning/trials.csv` (every trial: settings, held-out score, seconds) and `tuning/best_flags.txt`
    (this run's flags with the best settings, without the search); returns their paths."""
    if result is None:
        return []
    folder = os.path.join(run_dir, TUNING_DIR)
    trials_path = os.path.join(folder, TRIALS_FILE)
    tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(trials_path, "w") as f:
        f.write(trials_csv(result.trials))
    # The rates written are the ones trained with, already scaled: not scaled again.
    changes = {**result.settings(), **dict.fromkeys(_SEARCH_FLAGS), "scale_learning_rate": False}
    best_path = run_folder.write_flagfile(run_dir, path=os.path.join(folder, BEST_FLAGS_FILE), changes=changes,
                                          what=f"this run's training with the best settings of its search "
                                               f"(trial {result.best_trial['trial']})")
    return [trials_path, best_path]


def trials_csv(rows: list[dict]) -> str:
    """The trials as CSV: one row each, a column per setting and fact any of them has."""
    columns = list(dict.fromkeys(name for row in rows for name in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
