"""`tune`: hyperparameter search for `fine_tune`, on KerasTuner's random search, Bayesian optimisation or Hyperband.

KerasTuner's oracles choose each trial's settings (`tfxfer.tuning.space`);
`_TransferTuner.run_trial` trains one trial with `fine_tune`'s own phases and
loop (`engine.run_phase`), so a search runs under every strategy training does.

What keeps a search cheap:
- the backbone runs over the data once for the whole search: phase 1 of every
  trial trains the head on the same cached features (the backbone is frozen
  and back at its starting weights in every trial, so its features are too);
- phase 2 of a trial is `tune_epochs` long (Hyperband: its own budget per trial);
- the model is built once: each trial starts from the weights the model had
  when the search began, with the trial's dropout rate set on its head.

What keeps it honest: trials are scored on examples held out of the training
data (`holdout_data`, or a seeded content-hashed share of `train_data`,
`tfxfer.data.holdout`), never on the validation data the final model reports.
The caller trains the final model with the best settings on all the training
data and evaluates it once (the recipes do).
"""

import contextlib
import dataclasses
import logging as python_logging
import math
import shutil
import tempfile
import time

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer import distribute
from tfxfer import tasks as tasks_lib
from tfxfer.data import holdout as holdout_lib
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError
from tfxfer.models import heads, layer_names
from tfxfer.training import backup as backup_lib
from tfxfer.training import engine, feature_cache, freezing, input_checks, losses, planner, precision
from tfxfer.training.loop import TrainLoop
from tfxfer.tuning import TUNERS
from tfxfer.tuning import space as space_lib

OBJECTIVES = {"val_accuracy": "max", "val_loss": "min"}
DEFAULTS_TRIAL = "defaults"
_HYPERBAND_EPOCHS = "tuner/epochs"  # the phase-2 budget Hyperband gives a trial


@dataclasses.dataclass
class TuneResult:
    """What a search found.

    Attributes:
        config: FineTuneConfig. The base config with the best trial's settings
            (its epochs are the base config's, not the trials' shorter phase 2):
            `fine_tune(model, train, validation, config=result.config)`.
        dropout: float | None. The best trial's head dropout, already set on
            the model; None when dropout was not searched.
        best_trial: dict. The best row of `trials`.
        trials: list[dict]. One row per trial, in the order they ran: `trial`
            (id, or "defaults" for the base config), `status`, the settings,
            `val_accuracy` and `val_loss` (the cross-entropy without label
            smoothing, which trials vary) on the held-out examples,
            `phase2_epochs` and `seconds`.
        objective: str. What the trials were ranked by, on the held-out examples.
        holdout_size: int. Held-out examples the trials were scored on.
        seconds: float. Wall time of the whole search.

    Example:

    ```python
    search = tfxfer.tune(model, data.train, max_trials=10)
    print(search.best_trial["trial"], search.best_trial["val_accuracy"], search.settings())
    for row in search.trials:  # "defaults" first, then the oracle's trials in the order they ran
        print(row["trial"], row["status"], row["val_accuracy"], row["seconds"])
    tfxfer.fine_tune(model, data.train, data.validation, config=search.config)
    ```
    """

    config: FineTuneConfig
    dropout: float | None
    best_trial: dict
    trials: list[dict]
    objective: str
    holdout_size: int
    seconds: float

    def settings(self) -> dict:
        """The best trial's searched settings only, e.g. `{"learning_rate": 0.004, ...}`."""
        return {name: value for name, value in self.best_trial.items() if name not in _ROW_FACTS}

    def summary(self) -> dict:
        """JSON-ready facts of the search (its trials are in `trials`): the best settings and score,
        the objective, the held-out size, the number of trials and the time."""
        return {"best": self.settings(), "best_trial": self.best_trial["trial"], "objective": self.objective,
                "best_score": self.best_trial[self.objective], "holdout_size": self.holdout_size,
                "trials": len(self.trials), "seconds": round(self.seconds, 2)}


_ROW_FACTS = ("trial", "status", "error", "val_accuracy", "val_loss", "phase2_epochs", "seconds")


def tune(
    model: keras.Model,
    train_data: tf.data.Dataset,
    holdout_data: tf.data.Dataset | None = None,
    *,
    config: FineTuneConfig | None = None,
    search_space: space_lib.SearchSpace | None = None,
    tuner: str = "bayesian",
    max_trials: int = 10,
    tune_epochs: int = 3,
    objective: str = "val_accuracy",
    holdout_fraction: float = 0.2,
    include_defaults: bool = True,
    seed: int = 0,
    class_counts: list[int] | None = None,
    directory: str | None = None,
) -> TuneResult:
    """Searches `fine_tune`'s settings for `model` on held-out training examples; returns the best.

    Args:
        model: keras.Model. A tfxfer classifier with its pretrained weights.
            Every trial starts from the weights it has now; afterwards it has
            them again, with the best trial's dropout, ready for
            `fine_tune(model, ..., config=result.config)`.
        train_data: tf.data.Dataset. Batches of `(inputs, labels)`: the
            training data (the trials train on it, less the held-out part).
        holdout_data: tf.data.Dataset | None. Batches the trials are scored
            on. None holds out `holdout_fraction` of `train_data`, chosen by
            a seeded hash of each example (`tfxfer.data.holdout`). Never the
            validation data you report: the best of many trials on it is an
            optimistic score.
        config: FineTuneConfig. The base every trial changes (defaults if None).
        search_space: callable. `hp -> {setting: value}` with KerasTuner's
            `HyperParameters` (`tfxfer.tuning.space`); None searches
            `space.default_space(model)`: both learning rates, `fine_tune_at`,
            label smoothing, weight decay, the head's dropout and (transformer
            backbones) `layer_decay`; with `config.fine_tune_epochs=0`, the
            settings of phase 1 alone.
        tuner: str. "random" (`RandomSearch`), "bayesian"
            (`BayesianOptimization`: random first trials, then a Gaussian
            process) or "hyperband" (many short trials, the best continued
            longer: phase 2 of 1 up to `tune_epochs` epochs).
        max_trials: int. Trials the oracle runs (Hyperband stops there too).
        tune_epochs: int. Phase-2 epochs of a trial (Hyperband: the most).
            Phase 1 runs the config's `epochs` on cached features. A config
            with `fine_tune_epochs=0` has no phase 2, nor then do the trials.
        objective: str. "val_accuracy" (highest wins) or "val_loss" (lowest)
            on the held-out examples. Ties go to the lower `val_loss`.
        holdout_fraction: float. Share held out of `train_data` when
            `holdout_data` is None.
        include_defaults: bool. Also score the base config, as trial
            "defaults": the search then returns it unless a trial beats it.
        seed: int. Seed of the oracle and of the held-out split.
        class_counts: list of int. Training examples per class, as in
            `fine_tune` (only `class_weight="balanced"` needs it; the held-out
            part is then not subtracted).
        directory: str. KerasTuner's trial records go to
            `<directory>/keras_tuner`; None keeps them in a temporary folder,
            removed afterwards.

    Returns:
        A `TuneResult`.

    Raises:
        ConfigError: before any trial, for a bad argument, a search space
            that returns something other than `FineTuneConfig` fields and
            "dropout" or declares no hyperparameter, or (with
            `fine_tune_epochs=0`) Hyperband or phase-2 settings; during the
            search, for settings `fine_tune` refuses.

    Example:

    ```python
    data = tfxfer.load_image_folders("photos", image_size=(320, 320), validation_split=0.2)
    model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names))
    search = tfxfer.tune(model, data.train, tuner="bayesian", max_trials=10)
    print(search.settings(), search.best_trial["val_accuracy"])
    tfxfer.fine_tune(model, data.train, data.validation, config=search.config)
    ```
    """
    start = time.perf_counter()
    base = planner.config_or_default(config)
    _check_arguments(tuner, max_trials, tune_epochs, objective)
    input_checks.check_are_datasets(train_data=train_data, holdout_data=holdout_data)
    phase_2 = base.fine_tune_epochs > 0  # the trials train as the training that follows: phase 1 alone, or both
    if search_space is None:
        search_space = space_lib.default_space(model, phase_2=phase_2)
    trial_base = base.replace(fine_tune_epochs=tune_epochs if phase_2 else 0)
    hyperparameters = keras_tuner.HyperParameters()
    searched = _first_settings(search_space, hyperparameters)
    # A bad space fails before any trial: an unknown setting, or dropout for a model without the layer.
    _, dropout = space_lib.split_settings(searched, trial_base)
    if not phase_2:
        _check_without_phase_2(tuner, searched)
    if dropout is not None and _dropout_rate(model) is None:
        heads.set_dropout(model, dropout)  # raises the ConfigError that says how to build it
    # Checked here under the names the caller passed them as: the trials plan them as fine_tune's validation_data.
    input_checks.check_dataset(model, train_data, name="train_data", peek=class_counts is None)
    if holdout_data is None:
        train_data, holdout_data = _split_holdout(train_data, holdout_fraction, seed)
    else:
        input_checks.check_dataset(model, holdout_data, name="holdout_data", peek=class_counts is None)
    runner = _TrialRunner(model, train_data, holdout_data, trial_base, class_counts)
    oracle = _oracle(tuner, max_trials, tune_epochs, objective, seed, hyperparameters)
    work_dir = directory or tempfile.mkdtemp(prefix="tfxfer_tune_")
    try:
        search = _TransferTuner(runner, search_space, oracle=oracle, directory=work_dir,
                                project_name="keras_tuner", overwrite=True)
        with _quiet_retracing():
            if include_defaults:  # the base config's own values of the searched settings
                runner.run(DEFAULTS_TRIAL, runner.current_settings(searched), trial_base.fine_tune_epochs)
            _search(search)
    finally:
        if directory is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    best = best_row(runner.rows, objective)
    best_config, dropout = space_lib.split_settings(
        {name: value for name, value in best.items() if name not in _ROW_FACTS}, base)
    runner.reset(dropout)
    result = TuneResult(best_config, dropout, best, runner.rows, objective, runner.holdout_size,
                        time.perf_counter() - start)
    logging.info("Search done in %.0fs: %d trials; best %s (%s %.4f on %d held-out examples): %s.",
                 result.seconds, len(runner.rows), best["trial"], objective, best[objective],
                 runner.holdout_size, result.settings() or "the defaults")
    return result


def best_row(rows: list[dict], objective: str) -> dict:
    """The completed row with the best `objective`, ties to the lower `val_loss`, then to the earlier row."""
    completed = [row for row in rows if row["status"] == "COMPLETED"]
    if not completed:
        raise ConfigError(f"Every trial of the search failed ({len(rows)} run); the log says why. Check the "
                          "search space's ranges and the data.")
    sign = 1 if OBJECTIVES[objective] == "max" else -1
    return max(completed, key=lambda row: (sign * row[objective], -row["val_loss"]))


def _check_arguments(tuner, max_trials, tune_epochs, objective) -> None:
    if tuner not in TUNERS:
        raise ConfigError(f"tuner must be one of {', '.join(TUNERS)}. Received: tuner={tuner!r}")
    for name, value in (("max_trials", max_trials), ("tune_epochs", tune_epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer. Received: {name}={value!r}")
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)} (on the held-out examples). "
                          f"Received: objective={objective!r}")


def _first_settings(search_space, hyperparameters: keras_tuner.HyperParameters) -> dict:
    """What `search_space` returns for the first trial; raises a `ConfigError` unless it is a function that
    declares hyperparameters and returns a non-empty dict of settings."""
    example = ('lambda hp: {"fine_tune_learning_rate": hp.Float("fine_tune_learning_rate", 1e-5, 1e-3, '
               'sampling="log")}')
    if not callable(search_space):
        raise ConfigError(f"search_space must be a function of KerasTuner's HyperParameters that returns "
                          f"{{setting: value}}, e.g. {example}; None searches tfxfer's own space. "
                          f"Received: search_space of type {type(search_space).__name__}")
    searched = search_space(hyperparameters)
    # Without a hyperparameter the oracle has nothing to vary: every trial would train the same settings.
    if not isinstance(searched, dict) or not searched or not hyperparameters.space:
        raise ConfigError(f"search_space must return {{setting: value}} with at least one setting drawn from its "
                          f"argument (hp.Float, hp.Int, hp.Choice, ...), or there is nothing to search, e.g. "
                          f"{example}; None searches tfxfer's own space. Received: search_space returned "
                          f"{searched!r}")
    return searched


def _check_without_phase_2(tuner: str, searched: dict) -> None:
    """Raises a `ConfigError` for what a search of a config without phase 2 (`fine_tune_epochs=0`) cannot vary."""
    if tuner == "hyperband":
        raise ConfigError("Hyperband gives each trial a budget of phase-2 epochs, and config.fine_tune_epochs=0 "
                          "skips phase 2 (in the trials as in the training that follows), so every trial would "
                          "train as long. Pass tuner='random' or 'bayesian', or a config with fine_tune_epochs >= 1. "
                          "Received: tuner='hyperband', fine_tune_epochs=0")
    phase_2 = [name for name in searched if name in space_lib.PHASE_2_SETTINGS]
    if phase_2:
        raise ConfigError(f"config.fine_tune_epochs=0 skips phase 2 (in the trials as in the training that "
                          f"follows), so searching the phase-2 settings {', '.join(map(repr, phase_2))} would change "
                          f"nothing. Leave them out of search_space, or pass a config with fine_tune_epochs >= 1. "
                          f"Received: {sorted(searched)}")


def _split_holdout(train_data: tf.data.Dataset, fraction, seed: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """`(train, holdout)`: `fraction` of `train_data` held out (`holdout.split_by_content`), neither part empty."""
    train, holdout = holdout_lib.split_by_content(train_data, fraction, seed, fraction_name="holdout_fraction")
    # A filtered dataset's size is unknown; counted once here, not by every trial's plan.
    batches = int(train.reduce(0, lambda count, _: count + 1))
    if not batches:
        _refuse_empty_part(fraction, train_data, "no example to train on", "Lower")
    if next(iter(holdout.take(1)), None) is None:
        _refuse_empty_part(fraction, train_data, "no example to score the trials on", "Raise")
    return train.apply(tf.data.experimental.assert_cardinality(batches)), holdout


def _refuse_empty_part(fraction, train_data: tf.data.Dataset, left: str, change: str) -> None:
    raise ConfigError(
        f"holdout_fraction={fraction!r} of train_data's {_count_examples(train_data)} examples leaves {left} "
        f"(examples are held out by a hash of their content). {change} holdout_fraction, or pass holdout_data. "
        f"Received: holdout_fraction={fraction!r}")


def _oracle(tuner, max_trials, tune_epochs, objective, seed, hyperparameters) -> keras_tuner.Oracle:
    goal = keras_tuner.Objective(objective, OBJECTIVES[objective])
    common = dict(objective=goal, seed=seed, hyperparameters=hyperparameters)
    if tuner == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    # Hyperband plans its brackets by epochs, not trials: it runs bracket after bracket until
    # max_trials stops it, as it stops the others.
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=tune_epochs, factor=3, hyperband_iterations=None,
                                                 **common)
    oracle.max_trials = max_trials
    return oracle


@contextlib.contextmanager
def _quiet_retracing():
    """Leaves out TensorFlow's warning that steps are traced often: every trial traces its own
    (a new loop for new settings), as intended, and the warning would only alarm."""

    def not_retracing(record: python_logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()

    logger = tf.get_logger()
    logger.addFilter(not_retracing)
    try:
        yield
    finally:
        logger.removeFilter(not_retracing)


def _search(search: "_TransferTuner") -> None:
    try:
        search.search(verbose=0)  # the trials are logged through absl instead of printed
    except keras_tuner.errors.FatalError as error:
        raise error.__cause__ or error  # the ConfigError a trial raised, as the caller would get from fine_tune


class _TransferTuner(keras_tuner.Tuner):
    """A KerasTuner tuner whose trial is one `_TrialRunner.run`; KerasTuner's oracle picks the settings."""

    def __init__(self, runner: "_TrialRunner", search_space: space_lib.SearchSpace, **kwargs):
        super().__init__(**kwargs)
        self._runner = runner
        self._search_space = search_space

    def run_trial(self, trial, *args, **kwargs) -> dict:
        epochs = trial.hyperparameters.values.get(_HYPERBAND_EPOCHS, self._runner.base.fine_tune_epochs)
        settings = self._search_space(trial.hyperparameters)
        try:
            row = self._runner.run(trial.trial_id, settings, int(epochs))
        except ConfigError as error:
            # Bad settings are the search space's fault, not one trial's bad luck: stop the search.
            raise keras_tuner.errors.FatalError(str(error)) from error
        if row["status"] != "COMPLETED":
            raise keras_tuner.errors.FailedTrialError(row["error"])
        return {name: row[name] for name in OBJECTIVES}


class _TrialRunner:
    """Trains one trial on the shared cached features and scores it on the held-out data."""

    def __init__(self, model, train, holdout, base: FineTuneConfig, class_counts):
        self.model = model
        self.train, self.holdout, self.base, self.class_counts = train, holdout, base, class_counts
        self.rows: list[dict] = []
        # By variable: a trial with lora_rank adds adapters (new variables) that the next trial must not inherit.
        self._initial_weights = {id(variable): variable.numpy() for variable in model.weights}
        self._initial_dropout = _dropout_rate(model)
        self._compute = precision.Compute.for_model(model, base.mixed_precision, base.jit_compile)
        self._no_backup = backup_lib.RunBackup(None, is_chief=distribute.is_chief())
        # One pass of the frozen backbone over both datasets, for every trial's phase 1.
        freezing.set_trainable(model.get_layer(layer_names.BACKBONE), None)
        self._cached = feature_cache.cache_phase(model, train, holdout)
        self.holdout_size = _count_examples(self._cached.validation)

    def run(self, trial_id: str, settings: dict, phase2_epochs: int) -> dict:
        config, dropout = space_lib.split_settings(settings, self.base)
        config = config.replace(fine_tune_epochs=phase2_epochs)
        self.reset(dropout)
        start = time.perf_counter()
        row = {"trial": trial_id, "status": "COMPLETED", **settings}
        logging.info("Trial %s: %s, phase 2 for %d epochs.", trial_id, settings or "the base config", phase2_epochs)
        try:
            final = self._train(config)
        except ConfigError:
            raise
        except (tf.errors.OpError, ValueError, ArithmeticError) as error:  # e.g. a rate that diverges to NaN
            logging.warning("Trial %s failed: %s", trial_id, error)
            row.update(status="FAILED", error=str(error))
            final = {"val_accuracy": math.nan, "val_loss": math.nan}
        row.update(val_accuracy=final["val_accuracy"], val_loss=final["val_loss"], phase2_epochs=phase2_epochs,
                   seconds=round(time.perf_counter() - start, 2))
        if row["status"] == "COMPLETED" and not math.isfinite(row["val_loss"]):
            row.update(status="FAILED", error="the held-out loss is not finite (the training diverged)")
        self.rows.append(row)
        logging.info("Trial %s: held-out val_accuracy %.4f, val_loss %.4f in %.1fs.", trial_id,
                     row["val_accuracy"], row["val_loss"], row["seconds"])
        return row

    def current_settings(self, searched: dict) -> dict:
        """The base config's (and the model's dropout) values of the settings in `searched`."""
        return {name: self._initial_dropout if name == space_lib.DROPOUT else getattr(self.base, name)
                for name in searched}

    def reset(self, dropout: float | None) -> None:
        """The model as the search found it: its starting weights, and `dropout` (None: its own rate)."""
        for variable in self.model.weights:
            initial = self._initial_weights.get(id(variable))
            # Adapters an earlier trial added are zeroed: they then add nothing, and the next LoRA phase
            # merges nothing into the kernels before starting adapters anew (tfxfer.training.lora).
            variable.assign(np.zeros(variable.shape, variable.dtype) if initial is None else initial)
        rate = self._initial_dropout if dropout is None else dropout
        if rate is not None:
            heads.set_dropout(self.model, rate)

    def _train(self, config: FineTuneConfig) -> dict[str, float]:
        phases = planner.plan_phases(self.model, self.train, self.holdout, config, callbacks=None,
                                     class_counts=self.class_counts, cache_features=True)
        with precision.mixed_precision(self.model, self._compute.policy):
            for phase in phases:
                engine.run_phase(self.model, phase, self._no_backup, compute=self._compute, cached=self._cached)
            return self._score(phases[-1].kind, backbone_trained=len(phases) > 1)

    def _score(self, kind, *, backbone_trained: bool) -> dict[str, float]:
        """`val_accuracy` and `val_loss` of the trained trial on the held-out data, the loss without label
        smoothing: a trial's own (searched) smoothing would raise its loss with its rate, whatever it predicts."""
        tasks = tasks_lib.model_tasks(self.model)
        plain = losses.loss_for(kind) if tasks is None else losses.MultiTaskLoss(tasks)
        if backbone_trained:
            loop = TrainLoop(self.model, kind, plain, optimizer=keras.optimizers.SGD())
            metrics = loop.evaluate(self.holdout)
        else:  # the backbone is as it was: its held-out features are the cached ones
            loop = TrainLoop(self.model, kind, plain, head=self._cached.head, optimizer=keras.optimizers.SGD())
            metrics = loop.evaluate(self._cached.validation)
        return {f"val_{name}": value for name, value in metrics.items()}


def _dropout_rate(model: keras.Model) -> float | None:
    try:
        return float(model.get_layer(layer_names.DROPOUT).rate)
    except ValueError:
        return None


def _count_examples(dataset: tf.data.Dataset) -> int:
    return int(dataset.reduce(0, lambda count, batch: count + tf.shape(tf.nest.flatten(batch[1])[0])[0]))
