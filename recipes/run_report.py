"""What a recipe does after training: evaluate, draw, write metrics.json, and say where it all went.

    evaluation = run_report.evaluate(model, data.validation, data.class_names, multi_label=False)
    ...export...
    run_report.finish(run_dir, metrics, result, evaluation, export_path=path)

`finish` writes `flags.txt` (`run_folder.write_flagfile`), `metrics.json` (with the evaluation under "evaluation"), the
pictures (`training_curves.png`, `confusion_matrix.png` for single-label tasks,
`lr_find.png` when the finder ran), then prints the evaluation table and a
closing summary naming every file (after a line on the data's exact copies,
when it held any). Only the chief prints.

A multi-task run's evaluation has a report per task (`{"tasks": {task: report}}`), its
phases' metrics `val_<task>_accuracy` per task, the training curves an accuracy panel per
task, and each single-label task its `confusion_matrix_<task>.png`.
"""

import os

import metrics_file
import run_folder
from absl import logging

import tfxfer
from tfxfer.evaluation import keras_model, report_text
from tfxfer.reports import plots

TENSORBOARD_DIR = "tensorboard"


def tensorboard_dir(run_dir: str) -> str:
    return os.path.join(run_dir, TENSORBOARD_DIR)


def evaluate(model, validation, class_names: list[str] | dict[str, list[str]], *, multi_label: bool) -> dict | None:
    """The evaluation report of `model` on the validation data, or None without validation data.

    A multi-task model takes `class_names` as `{task: [names]}` and gets a report per task
    (its tasks say which are multi-label: `multi_label` is then ignored).
    """
    if validation is None:
        logging.info("No validation data: no evaluation report.")
        return None
    return keras_model.evaluate_model(model, validation, class_names, multi_label=multi_label)


def finish(run_dir: str, metrics: dict, result: tfxfer.FineTuneResult, evaluation: dict | None, *,
           export_path: str, written: list[str] = (), training_data: str | None = None,
           tflite_dir: str | None = None, student_tflite_dir: str | None = None) -> None:
    """Writes the run's report to `run_dir` and prints the evaluation and where everything was written.

    Args:
        written: list of str. Files the recipe wrote to `run_dir` itself, for the closing summary.
        training_data: str | None. The files the run trained on (`--data_dir`), for the
            closing summary's evaluate command (to find copies of them in new data).
        tflite_dir, student_tflite_dir: str | None. Where the model's and the distilled
            student's TFLite models went (`--tflite_dir`), for the closing summary.
    """
    metrics = {**metrics, "evaluation": evaluation, "export": export_path, "run_dir": run_dir}
    flags_path = run_folder.write_flagfile(run_dir)
    written = [*written, metrics_file.write_metrics(run_dir, metrics)]
    # A multi-task run's curves: a panel per task, found in the histories' `<task>_accuracy`.
    written.append(plots.save_training_curves(result.histories(), os.path.join(run_dir, plots.TRAINING_CURVES_FILE)))
    if evaluation is not None:
        written += save_confusion_matrices(run_dir, evaluation)
    for phase in (result.phase1, result.phase2):
        if phase is not None and phase.learning_rate_sweep is not None:
            sweep = phase.learning_rate_sweep
            written.append(plots.save_learning_rate_sweep(
                sweep["learning_rates"], sweep["losses"], sweep["smoothed_losses"], sweep["suggestion"],
                os.path.join(run_dir, plots.LR_FIND_FILE)))
    if not tfxfer.is_chief():
        return
    if evaluation is not None:
        print(report_text.format_report(evaluation))
    print(closing_summary(run_dir, flags_path, written, export_path, metrics.get("distillation"),
                          copies=metrics.get("data", {}).get("exact_copies"), training_data=training_data,
                          tflite_dir=tflite_dir, student_tflite_dir=student_tflite_dir))


def save_confusion_matrices(run_dir: str, evaluation: dict) -> list[str]:
    """`confusion_matrix.png` of a single-label evaluation, or `confusion_matrix_<task>.png` per single-label task."""
    reports = evaluation["tasks"] if "tasks" in evaluation else {None: evaluation}
    written = []
    for task, report in reports.items():
        if "confusion_matrix" in report:  # multi-label reports (and tasks without labelled examples) have none
            title = "Confusion matrix" if task is None else f"Confusion matrix: {task}"
            written.append(plots.save_confusion_matrix(report["confusion_matrix"], report["class_names"],
                                                       os.path.join(run_dir, plots.confusion_matrix_file(task)),
                                                       title=title))
    return written


def closing_summary(run_dir: str, flags_path: str, written: list[str], export_path: str,
                    distillation: dict | None = None, copies: dict | None = None,
                    training_data: str | None = None, tflite_dir: str | None = None,
                    student_tflite_dir: str | None = None) -> str:
    """Where the run wrote what, and the commands that use it; first, a reminder of exact copies in the data.

    Args:
        distillation: dict | None. `metrics.json`'s "distillation" (`distillation_run.distill_and_export`):
            the student's export, and its validation accuracy against the teacher's, whose log line
            scrolled past.
        copies: dict | None. The data's `exact_copies` counts (`tfxfer.data.Datasets`), whose
            log lines scrolled past at load time.
        training_data: str | None. The files the run trained on: the evaluate command then
            checks new data for copies of them.
        tflite_dir, student_tflite_dir: str | None. Where the TFLite models of the model and of the
            student went.
    """
    lines = copies_reminder(copies)
    lines += run_folder_lines(run_dir, written, flags_path)
    lines.append(f"  {TENSORBOARD_DIR}/: tensorboard --logdir={tensorboard_dir(run_dir)}")
    lines += export_lines(export_path, training_data=training_data, tflite_dir=tflite_dir)
    if distillation:
        lines.append(f"Exported distilled student: {distillation['student_export']}")
        if distillation.get("student") and distillation.get("teacher"):  # None without validation data
            lines.append(f"  validation accuracy {distillation['student']['accuracy']:.4f} (teacher "
                         f"{distillation['teacher']['accuracy']:.4f}), {distillation['student_parameters']:,} "
                         f"parameters (teacher {distillation['teacher_parameters']:,})")
        if student_tflite_dir:
            lines.append(tflite_line(student_tflite_dir, of="the student"))
    return "\n".join(lines)


def run_folder_lines(run_dir: str, written: list[str], flags_path: str | None = None) -> list[str]:
    """`Run folder: <run_dir>` and under it a line per file written there; first `flags.txt`, with how to rerun."""
    lines = [f"Run folder: {run_dir}"]
    if flags_path:
        lines.append(f"  {os.path.basename(flags_path)}: rerun with --flagfile={flags_path}")
    return lines + [f"  {os.path.relpath(path, run_dir)}" for path in written]


def export_lines(export_path: str, *, training_data: str | None = None, tflite_dir: str | None = None) -> list[str]:
    """Where the SavedModel went, the commands that evaluate it and predict with it, and where its TFLite models
    went (with `tflite_dir`)."""
    against_training = f" --training_data={training_data}" if training_data else ""
    lines = [f"Exported SavedModel: {export_path}",
             f"  evaluate it: python recipes/evaluate.py --model_dir={export_path} --data_dir=<labelled data>"
             f"{against_training}",
             f"  predict: python recipes/predict.py --model_dir={export_path} <inputs>"]
    return lines + ([tflite_line(tflite_dir)] if tflite_dir else [])


def tflite_line(folder: str, *, of: str | None = None) -> str:
    """Where `tfxfer.export_tflite` wrote TFLite models (`of` a model other than the run's), and the file that
    scores them."""
    return f"TFLite models{f' of {of}' if of else ''}: {folder} (their accuracies in tflite_report.json)"


def copies_reminder(copies: dict | None) -> list[str]:
    """A line on the exact copies the loader found, when it found any (the log named them at load time)."""
    if not copies or not (copies["copies"] or copies.get("validation_copies_of_training")):
        return []
    facts = [f"{copies['copies']} examples are exact copies of another"] if copies["copies"] else []
    if copies["groups_with_different_labels"]:
        facts.append(f"{copies['groups_with_different_labels']} groups of copies carry different labels")
    if copies.get("validation_copies_of_training"):
        facts.append(f"{copies['validation_copies_of_training']} validation examples copy training ones, so the "
                     "validation figures overstate the model")
    return [f"Data: {'; '.join(facts)} (named in the log, counted in metrics.json's \"data\")."]
