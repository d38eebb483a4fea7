"""`--distill_into`: after the model trains and exports, a smaller student learns from it and exports too.

    student = ...built by the recipe from --distill_into...
    distillation = distillation_run.distill_and_export(
        model, student, data.train, data.validation, config, teacher_export=path,
        class_names=data.class_names, warmup_examples=...)
    metrics["distillation"] = distillation

The student goes to `<export_dir>/<model_name>_student/<version>/`, served like any
tfxfer export; its metadata names its teacher. `metrics.json` gets `distillation`:
teacher against student on the validation data (accuracy, agreement), their
parameters and SavedModel sizes, and the student's training.
"""

import training_flags
from absl import app, flags, logging

import tfxfer
from tfxfer.errors import ConfigError
from tfxfer.export import versioning
from tfxfer.training import distillation_loss, freezing, planner

FLAGS = flags.FLAGS
STUDENT_SUFFIX = "_student"
# The shared flags that only shape the student, and what each does for it (`training_flags.refuse_without`):
# without --distill_into there is no student, and they would do nothing. Each recipe adds its own.
_STUDENT_FLAGS = {
    "student_weights": "sets the starting weights of the student of",
    "distill_temperature": "softens the teacher's probabilities for the student of",
    "distill_alpha": "weighs the labels against the teacher's probabilities for the student of",
    "unlabelled_data": "is for the student of",
}


def check_flags(*, student: str, unlabelled: str, student_flags: dict[str, str] | None = None) -> None:
    """Usage errors of the distillation flags, before any work.

    An empty --distill_into or --unlabelled_data would be taken for none, and
    distillation skipped or done on the training data alone; flags of the
    student without --distill_into (`_STUDENT_FLAGS` and the recipe's own
    `student_flags`) would do nothing; `tfxfer.distill` would refuse the numbers
    only after the teacher has trained and been exported, naming its own
    arguments (`alpha` reads as `--alpha`).

    Args:
        student: str. What the recipe's --distill_into takes, e.g. "an image backbone name, e.g. mobilenet_v3_small".
        unlabelled: str. What the recipe's --unlabelled_data takes, e.g. "a folder of images (any depth)".
        student_flags: dict. The recipe's own flags of the student, {flag: what it does for the student}.
    """
    # First: an empty --distill_into is not the "not set" that refuse_without's message names.
    training_flags.check_not_empty("distill_into", student, "to export the model alone")
    training_flags.refuse_without("distill_into", {**_STUDENT_FLAGS, **(student_flags or {})},
                                  how="--distill_into=STUDENT")
    training_flags.check_not_empty("unlabelled_data", unlabelled, "to distil on the training data alone")
    distillation_loss.check_temperature_and_alpha(FLAGS.distill_temperature, FLAGS.distill_alpha,
                                                  names=("--distill_temperature", "--distill_alpha"))


def check_student_fine_tune_at(student, config: tfxfer.FineTuneConfig) -> None:
    """A usage error, before the teacher trains, when `config.fine_tune_at` (--fine_tune_at as a layer name or
    index) is not one of the student's backbone layers: the student's phase 2 takes the teacher's settings, and
    `tfxfer.distill` would refuse it only once the teacher has trained and been exported."""
    if not config.fine_tune_epochs:
        return
    try:
        freezing.first_trainable_index(planner.backbone_of(student).layers, config.fine_tune_at)
    except ConfigError as error:
        raise app.UsageError(
            f"--fine_tune_at={FLAGS.fine_tune_at} is where phase 2 starts unfreezing the --distill_into student's "
            f"backbone too, which cannot take it ({error}). Pass a share of the layers, e.g. --fine_tune_at=0.3, "
            f"which fits both backbones. Received: --fine_tune_at={FLAGS.fine_tune_at} "
            f"--distill_into={FLAGS.distill_into}") from error


def student_export_dir() -> str:
    """`<export_dir>/<model_name>_student`: where the student's versions go (a temporary folder off the chief)."""
    return versioning.model_dir(tfxfer.chief_or_temp_dir(FLAGS.export_dir), FLAGS.model_name + STUDENT_SUFFIX)


def distill_and_export(teacher, student, train, validation, config: tfxfer.FineTuneConfig, *, teacher_export: str,
                       class_names: list[str], unlabelled=None, top_k: int | None = None,
                       warmup_examples=None) -> dict:
    """Distils `teacher` into `student` (`tfxfer.distill`, `--distill_temperature`, `--distill_alpha`, with the
    `unlabelled` batches of `--unlabelled_data`), exports the student as the teacher was exported (`top_k`,
    `warmup_examples`), and returns the `distillation` facts of `metrics.json`."""
    result = tfxfer.distill(teacher, student, train, validation, temperature=FLAGS.distill_temperature,
                            alpha=FLAGS.distill_alpha, unlabelled_data=unlabelled, config=config)
    facts = {"student_backbone": FLAGS.distill_into, "temperature": FLAGS.distill_temperature,
             "alpha": FLAGS.distill_alpha,
             "teacher_parameters": teacher.count_params(), "student_parameters": student.count_params(),
             **result.metrics()}
    path = tfxfer.export_saved_model(student, student_export_dir(), class_names=class_names,
                                     metadata={"teacher": teacher_export, "distillation": facts},
                                     top_k=top_k, warmup_examples=warmup_examples)
    facts.update(student_export=path, teacher_saved_model_mb=versioning.folder_megabytes(teacher_export),
                 student_saved_model_mb=versioning.folder_megabytes(path))
    if validation is not None:
        logging.info("Distilled into %s: validation accuracy %.4f (teacher %.4f), %d parameters (teacher %d).",
                     FLAGS.distill_into, facts["student"]["accuracy"], facts["teacher"]["accuracy"],
                     facts["student_parameters"], facts["teacher_parameters"])
    return facts

