"""A run's folder: a new one per run unless the user names one, and the flagfile that reruns the run.

    run_dir = run_folder.choose(FLAGS.run_dir, FLAGS.model_name)   # runs/<model_name>/<time>/
    ...
    run_folder.write_flagfile(run_dir)                              # <run_dir>/flags.txt

`python recipes/<recipe>.py --flagfile=<run_dir>/flags.txt` reruns the run with
the same flags, into a new run folder: `--run_dir` is left out of the file, so
the rerun cannot overwrite the run it repeats.

With `--backup_dir`, the trained model is backed up too, between training and the
run's end: `fine_tune` deletes its own backup when it returns, and a run killed
while it exports or writes its report would otherwise train again from scratch.

    check_trained(FLAGS.backup_dir)                  # before any work: a backup of other flags is refused
    trained = load_trained(FLAGS.backup_dir)         # (model, result) of a killed run with these flags, or None
    ...search (or load_search), train, then save_trained(FLAGS.backup_dir, model, result, search)
    path = load_exported(FLAGS.backup_dir)           # the killed run's SavedModel version, or None: then
    ...export, then save_exported(FLAGS.backup_dir, path)
    ...report, then remove_trained(FLAGS.backup_dir)

`<backup_dir>/flags.txt`, written last, marks the backup complete and says which
flags trained it: the same lines as the run folder's flags.txt. With `--tune`,
the search is backed up with the model: a rerun needs its settings and trials for
the report, not a search of its own. The export is recorded there too, so that
a rerun does not publish a second version of the same model beside it.
"""

import dataclasses
import json
import os
import sys
import time

import keras
import metrics_file
import tensorflow as tf
from absl import app, flags, logging

import tfxfer
from tfxfer.export import versioning
from tfxfer.export.layout import SAVED_MODEL_FILE
from tfxfer.training import backup
from tfxfer.training.results import PhaseResult

RUNS_ROOT = "runs"
FLAGS_FILE = "flags.txt"
# Not written to flags.txt: a rerun gets a folder of its own, and reads no other flagfile.
_NOT_RERUN = ("run_dir", "flagfile")
# In --backup_dir: the trained model and what fine_tune returned, until the run has exported and reported.
TRAINED_MODEL = "trained.keras"
TRAINED_RESULT = "trained_result.json"
TRAINED_SEARCH = "trained_search.json"  # with --tune: the search that chose the model's settings
EXPORTED = "exported.txt"  # the SavedModel version the run exported, once it has

FLAGS = flags.FLAGS


def choose(run_dir: str | None, name: str) -> str:
    """The run's folder: `run_dir`, or a new `runs/<name>/<YYYYmmdd-HHMMSS>` when None (`-2`, `-3`, ...
    when a run started in the same second). Not created here: the first file written creates it, so a
    run that fails before training leaves no folder.

    A folder that already holds a finished run (its metrics.json) is refused:
    a run never overwrites an earlier one. A folder without one (a run that was
    killed, resumed with --backup_dir) is used.

    Raises:
        app.UsageError: `run_dir` holds a finished run.
    """
    if run_dir is not None:
        check_unused(run_dir)
        return run_dir
    base = os.path.join(RUNS_ROOT, name, time.strftime("%Y%m%d-%H%M%S"))
    path, attempt = base, 1
    while tf.io.gfile.exists(path):
        attempt += 1
        path = f"{base}-{attempt}"
    return path


def check_unused(run_dir: str | None) -> None:
    """Raises `app.UsageError` if `run_dir` holds a finished run (see `choose`); recipes check it first."""
    if run_dir is not None and tf.io.gfile.exists(os.path.join(run_dir, metrics_file.METRICS_FILE)):
        raise app.UsageError(f"--run_dir holds an earlier run (its {metrics_file.METRICS_FILE}), which this run "
                             f"would overwrite; pass a new folder, or leave --run_dir unset for a new one under "
                             f"{RUNS_ROOT}/. Received: --run_dir={run_dir}")


def write_flagfile(run_dir: str, flag_values: flags.FlagValues = FLAGS, script: str | None = None, *,
                   path: str | None = None, changes: dict | None = None, what: str = "this run") -> str:
    """Writes the recipe's flags (its own and the ones it adopted), as resolved, to `<run_dir>/flags.txt`.

    Args:
        run_dir: str. The run's folder.
        flag_values: FlagValues. Parsed flags; absl's global `FLAGS` by default.
        script: str. The recipe whose key flags to write; the running script by default.
        path: str. Where to write instead of `<run_dir>/flags.txt`.
        changes: dict. `{flag name: value}` written instead of the flags' own values (None: a
            flag left out).
        what: str. What the file reruns, for its first line.
    """
    script = script or sys.argv[0]
    path = path or os.path.join(run_dir, FLAGS_FILE)
    lines = [
        f"# Reruns {what} into a new run folder: python {script} --flagfile={path}",
        f"# Relative paths below are relative to {os.getcwd()}",
        *flag_lines(flag_values, script, changes),
    ]
    versioning.make_folders(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def flag_lines(flag_values: flags.FlagValues = FLAGS, script: str | None = None,
               changes: dict | None = None) -> list[str]:
    """The flag lines of flags.txt (`write_flagfile`): what makes two runs of a recipe the same run."""
    script = script or sys.argv[0]
    changes = changes or {}
    lines = []
    for flag in sorted(flag_values.get_key_flags_for_module(script), key=lambda flag: flag.name):
        value = changes.get(flag.name, flag.value)
        if flag.name not in _NOT_RERUN and value is not None:
            lines.append(_serialize(flag, value))
    return lines


def check_trained(backup_dir: str | None) -> None:
    """Raises `app.UsageError` if `backup_dir` holds the trained model of a run with other flags: this run
    would export a model its flags did not train. Recipes check it with their flags, before any work."""
    saved = _trained_flag_lines(backup_dir)
    if saved is None:
        return
    current = flag_lines()
    then, now = [line for line in saved if line not in current], [line for line in current if line not in saved]
    if then or now:
        marker = os.path.join(backup_dir, FLAGS_FILE)
        differences = "; ".join([*([f"it had {', '.join(then)}"] if then else []),
                                 *([f"this run has {', '.join(now)}"] if now else [])])
        raise app.UsageError(
            f"--backup_dir holds the model a run trained before it was stopped, with other flags than this run's "
            f"({differences}). Rerun that run with --flagfile={marker} to export its model, or pass a new "
            f"--backup_dir (or delete this one) to train from scratch. Received: --backup_dir={backup_dir}")


def load_trained(backup_dir: str | None, *, safe_mode: bool = True
                 ) -> tuple[keras.Model, tfxfer.FineTuneResult] | None:
    """The model and `fine_tune` result a run with these flags backed up after training (`save_trained`),
    or None: no `backup_dir`, or nothing backed up there. Call it in the strategy's scope."""
    if _trained_flag_lines(backup_dir) is None:
        return None
    model = keras.models.load_model(os.path.join(backup_dir, TRAINED_MODEL), safe_mode=safe_mode)
    with tf.io.gfile.GFile(os.path.join(backup_dir, TRAINED_RESULT), "r") as f:
        phases = json.loads(f.read())
    result = tfxfer.FineTuneResult(*(None if phase is None else PhaseResult(**phase) for phase in phases))
    logging.warning("Training skipped: %s holds the model a run with the same flags trained before it was stopped "
                    "(after training, before the end of its export and report). Exporting and reporting it; delete "
                    "%s to train again.", backup_dir, backup_dir)
    return model, result


def save_trained(backup_dir: str | None, model: keras.Model, result: tfxfer.FineTuneResult,
                 search: "tfxfer.TuneResult | None" = None) -> None:
    """Backs up the trained `model` and `result` in `backup_dir` (nothing without one; only the chief writes),
    with the `--tune` `search` that chose its settings, so that a rerun with the same flags after a kill exports
    them instead of searching and training again."""
    if not backup_dir or not tfxfer.is_chief():
        return
    versioning.make_folders(backup_dir)
    model.save(os.path.join(backup_dir, TRAINED_MODEL))
    phases = [None if phase is None else dataclasses.asdict(phase) for phase in (result.phase1, result.phase2)]
    with tf.io.gfile.GFile(os.path.join(backup_dir, TRAINED_RESULT), "w") as f:
        f.write(json.dumps(phases, default=float))
    if search is not None:
        with tf.io.gfile.GFile(os.path.join(backup_dir, TRAINED_SEARCH), "w") as f:
            f.write(json.dumps(dataclasses.asdict(search), default=_python_number))
    # Last: it promises that the model and result above are complete.
    write_flagfile(backup_dir, what="the run that trained this model")


def load_search(backup_dir: str | None) -> "tfxfer.TuneResult | None":
    """The `--tune` search a run with these flags backed up with its trained model (`save_trained`), or None:
    no complete backup in `backup_dir`, or one without a search."""
    path = os.path.join(backup_dir, TRAINED_SEARCH) if backup_dir else None
    if _trained_flag_lines(backup_dir) is None or not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        fields = json.loads(f.read())
    config = fields.pop("config")
    if isinstance(config["class_weight"], dict):  # JSON's keys are strings; the head's class ids are ints
        config["class_weight"] = {int(index): weight for index, weight in config["class_weight"].items()}
    return tfxfer.TuneResult(config=tfxfer.FineTuneConfig(**config), **fields)


def save_exported(backup_dir: str | None, path: str) -> None:
    """Records in `backup_dir` the SavedModel version `path` the run exported its backed-up model to (nothing
    without a backup of it there; only the chief writes), so that a rerun after a kill before the end of the
    report (`load_exported`) reuses it rather than publish a second version of the same model."""
    if not tfxfer.is_chief() or _trained_flag_lines(backup_dir) is None:
        return
    with tf.io.gfile.GFile(os.path.join(backup_dir, EXPORTED), "w") as f:
        f.write(path)


def load_exported(backup_dir: str | None) -> str | None:
    """The SavedModel version a run with these flags exported its backed-up model to before it was stopped
    (`save_exported`), when that version is still there and complete; else None, and the run exports."""
    record = os.path.join(backup_dir, EXPORTED) if backup_dir else None
    if _trained_flag_lines(backup_dir) is None or not tf.io.gfile.exists(record):
        return None
    with tf.io.gfile.GFile(record, "r") as f:
        path = f.read()
    # Complete once it holds saved_model.pb: `versioning.publish` renames a finished staging folder into place
    # (on an object store, saved_model.pb comes last). A version deleted since, or a record cut short, is not.
    if not path or not tf.io.gfile.exists(os.path.join(path, SAVED_MODEL_FILE)):
        logging.warning("Exporting again: %s records that the run stopped after training exported its model to "
                        "%r, which holds no complete SavedModel now.", backup_dir, path)
        return None
    logging.warning("Export skipped: the run stopped after training had exported its model to %s (recorded in %s); "
                    "reporting that version rather than exporting a second one.", path, backup_dir)
    return path


def remove_trained(backup_dir: str | None) -> None:
    """Deletes `backup_dir` once the run has exported and reported, as `fine_tune` deletes its own backups:
    a finished run leaves nothing to resume, and the same command then trains again."""
    backup.RunBackup(backup_dir, is_chief=tfxfer.is_chief()).finish()


def _trained_flag_lines(backup_dir: str | None) -> list[str] | None:
    """The flag lines of `<backup_dir>/flags.txt`, the marker of a complete `save_trained`, or None."""
    marker = os.path.join(backup_dir, FLAGS_FILE) if backup_dir else None
    if marker is None or not tf.io.gfile.exists(marker):
        return None
    with tf.io.gfile.GFile(marker, "r") as f:
        return [line for line in f.read().splitlines() if line and not line.startswith("#")]


def _python_number(value) -> int | float:
    """A NumPy number (a trial's score, say) as the Python number it holds, which `json.dumps` writes."""
    return value.item() if hasattr(value, "item") else float(value)


def _serialize(flag: flags.Flag, value) -> str:
    """`flag` as a flagfile line, with `value` instead of its own."""
    if value == flag.value:
        return flag.serialize()
    if isinstance(value, bool):
        return f"--{'' if value else 'no'}{flag.name}"
    return f"--{flag.name}={value}"
