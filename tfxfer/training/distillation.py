"""Knowledge distillation, `distill`: a small student learns from a trained teacher's probabilities.

The student trains on Hinton et al.'s loss (`distillation_loss.DistillationLoss`):
the hard labels mixed with the teacher's temperature-softened probabilities,
for every head kind (multi-class, one-unit binary, multi-label label by label).

The teacher runs once, not in every step. It is frozen, so its probabilities
for an example never change: `distill` runs it once over the training,
unlabelled and validation examples (in inference mode: no dropout, no
augmentation), keeps the probabilities keyed by a fingerprint of each
example's inputs, and the student's input pipeline looks each example's up
and carries them beside its label (`teacher_targets`). The student then trains
on the caller's own pipeline (its shuffling and batches) in the one training
loop of every `tf.distribute` strategy, at the cost of fine-tuning it plus one
teacher inference pass, instead of a teacher forward pass in every step of
every epoch. What that gives up:
- the teacher never sees the student's augmented images: an image model's
  augmentation layer runs inside the student, against the clean image's
  targets (distilling on the augmented views themselves, "function matching",
  Beyer et al., 2022, needs the teacher in every step);
- the pipeline must yield the same inputs every epoch (in any order): random
  augmentation in tf.data that differs between passes, or a reshuffled
  `.take()`, gives examples the teacher never saw, which stops training with
  a `ConfigError`;
- the probabilities stay in memory: examples x classes floats.

The student trains in the phases `config` plans, as `fine_tune` would train it
(phase 1 its head on the frozen backbone, on cached features; phase 2 the top
of the backbone), with the same epochs, learning rates and schedule: a student
is a transfer-learning model like any other, whose pretrained backbone the
same schedule protects, and `fine_tune_epochs=0` trains its head alone. Only
the loss and its targets change; `config.label_smoothing` is not used (the
teacher's soft targets are the smoothing), and class weights are refused.

Texts: a text classifier takes token ids from its own tokenizer, and teacher
and student rarely share one, so `distill` takes raw texts (batches of
`(strings, labels)`, e.g. `load_text_data(...).train` before `map_inputs`) and
runs each model's `preprocessor` itself. Those batches are padded to each
preprocessor's sequence length, not trimmed to their longest text.
"""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError
from tfxfer.models import heads
from tfxfer.models.heads import HeadKind
from tfxfer.training import backup as backup_lib
from tfxfer.training import console, engine, input_checks, losses, planner, precision
from tfxfer.training import teacher_targets as targets_lib
from tfxfer.training.distillation_loss import (
    DEFAULT_ALPHA,
    DEFAULT_TEMPERATURE,
    DistillationLoss,
    split_targets,
    teacher_labels,
)
from tfxfer.training.results import FineTuneResult


@dataclasses.dataclass
class DistillResult:
    """What a `distill` run did.

    Attributes:
        training: FineTuneResult. The student's phases, as `fine_tune` reports
            them; there, `loss` and `val_loss` are the distillation loss, and
            `accuracy` is against the labels (for unlabelled examples, the
            teacher's predictions).
        teacher_seconds: float. The teacher's one pass over the data.
        unlabelled_examples: int. Examples of `unlabelled_data` the student learned from.
        student_validation: dict | None. `loss` (plain cross-entropy) and
            `accuracy` of the trained student on `validation_data`; None without it.
        teacher_validation: dict | None. The same of the teacher, for comparison.
        agreement: float | None. Share of validation examples whose class the
            student predicts as the teacher does (of labels, for multi-label heads).

    Example:

    ```python
    result = tfxfer.distill(teacher, student, data.train, data.validation)
    print(result.student_validation["accuracy"], result.teacher_validation["accuracy"], result.agreement)
    print(result.metrics()["phase2"]["val_loss"])  # the distillation loss on validation_data
    ```
    """

    training: FineTuneResult
    teacher_seconds: float
    unlabelled_examples: int
    student_validation: dict[str, float] | None = None
    teacher_validation: dict[str, float] | None = None
    agreement: float | None = None

    def metrics(self) -> dict:
        """`fine_tune`'s phase metrics, plus `student` and `teacher` validation metrics and `agreement`.

        Example:

        ```python
        metrics = tfxfer.distill(teacher, student, data.train, data.validation).metrics()
        print(metrics["student"]["accuracy"] - metrics["teacher"]["accuracy"], metrics["agreement"])
        ```
        """
        return {**self.training.metrics(), "student": self.student_validation, "teacher": self.teacher_validation,
                "agreement": self.agreement, "teacher_seconds": round(self.teacher_seconds, 2),
                "unlabelled_examples": self.unlabelled_examples}


def distill(
    teacher: keras.Model,
    student: keras.Model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None = None,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
    unlabelled_data: tf.data.Dataset | None = None,
    config: FineTuneConfig | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    cache_features: bool | None = None,
    verbose: str | int = "auto",
) -> DistillResult:
    """Trains `student` to predict what `teacher` does, as well as the labels.

    The teacher runs once over the data, in inference mode; the student then
    trains in `config`'s phases, as `fine_tune` trains a model, on the loss of
    `DistillationLoss` (see `tfxfer.training.distillation` for the choices).
    Every head kind works: multi-class, binary (one sigmoid unit) and
    multi-label (distilled label by label).

    Args:
        teacher: keras.Model. A trained classifier (a `predictions` head),
            e.g. from `fine_tune`; not changed.
        student: keras.Model. A tfxfer classifier with the teacher's classes
            and head kind, e.g. a smaller backbone; trained in place. An
            image student may take smaller images than the teacher: its
            inputs are resized (antialiased) from the data's.
        train_data: tf.data.Dataset. Batches of `(inputs, labels)`, finite, the
            same inputs every epoch (augment in the model, not in tf.data).
            Inputs are what both models take; for text classifiers, raw
            strings, which each model's own `preprocessor` tokenizes.
        validation_data: tf.data.Dataset. The same kind of batches, or None.
        temperature: float. In (0, 100]; how much both distributions are softened.
        alpha: float. In [0, 1]; the weight of the hard labels against the
            teacher's softened probabilities.
        unlabelled_data: tf.data.Dataset. Batches of inputs only, without
            labels: the teacher's probabilities are their only target (the
            soft term). Drawn among the training batches in a random order.
        config: FineTuneConfig. Epochs, learning rates, etc. of the student's
            phases, as for `fine_tune`; defaults if None. Its
            `label_smoothing` is not used, and it must have no `class_weight`.
        callbacks: list. Extra Keras callbacks, used in both phases.
        cache_features: bool. As in `fine_tune`: phase 1 trains the student's
            head on features its frozen backbone computed once.
        verbose: "auto", 0, 1 or 2, as in `fine_tune`.

    Returns:
        A `DistillResult`, with the student's and the teacher's validation
        metrics when `validation_data` is given; the student is trained in
        place, and compiled with its head's plain loss for your own `evaluate`.

    Raises:
        ConfigError: before any training: teacher and student of other
            classes or head kinds, or sharing weights (the student built on
            the teacher's backbone model), a bad `temperature` or `alpha`, a
            `class_weight`, `unlabelled_data` with labels, or data that does
            not fit either model (as in `fine_tune`). During training: an
            example the teacher pass never saw (a pipeline whose inputs change
            between passes, such as random augmentation in tf.data).

    Example:

    ```python
    teacher = keras.models.load_model("flowers_efficientnet.keras")  # trained with tfxfer.fine_tune
    student = tfxfer.build_image_classifier("mobilenet_v2", teacher.num_classes, alpha=0.35)
    result = tfxfer.distill(teacher, student, data.train, data.validation, temperature=4.0, alpha=0.1,
                            config=tfxfer.FineTuneConfig(epochs=5, fine_tune_epochs=5))
    print(result.student_validation["accuracy"], result.teacher_validation["accuracy"])
    ```
    """
    kind = check_models_match(teacher, student)
    _check_no_shared_weights(teacher, student)
    loss = DistillationLoss(kind, temperature, alpha)
    config = planner.config_or_default(config)
    _check_config(config)
    verbose = console.resolve_verbose(verbose)
    input_checks.check_are_datasets(train_data=train_data, validation_data=validation_data,
                                    unlabelled_data=unlabelled_data)
    _check_unlabelled(unlabelled_data)
    label_width = heads.num_classes(student) if kind is HeadKind.MULTILABEL else 1
    _check_models_take(teacher, student, label_width, train_data, validation_data, unlabelled_data)
    # Planned on the plain labels, so that the student's data and the config are checked as fine_tune checks them.
    phases = planner.plan_phases(student, targets_lib.as_model_sees_it(student, train_data),
                                 targets_lib.as_model_sees_it(student, validation_data), config, callbacks=callbacks,
                                 class_counts=None, cache_features=cache_features)
    data = _student_data(teacher, student, label_width, train_data, validation_data, unlabelled_data,
                         labelled_steps=phases[0].steps)
    phases = [dataclasses.replace(phase, train=data.train, validation=data.validation, steps=data.steps, loss=loss)
              for phase in phases]
    results = _train_student(student, phases, config, verbose)
    _compile_for_labels(student, kind)
    comparison = {} if data.validation is None else _compare_on_validation(student, kind, data.validation)
    return DistillResult(FineTuneResult(results[0], results[1] if len(results) > 1 else None), data.teacher_seconds,
                         data.unlabelled_examples, **comparison)


def check_models_match(teacher: keras.Model, student: keras.Model) -> HeadKind:
    """The head kind both models share; raises a `ConfigError` if their classes or head kinds differ."""
    kinds = heads.head_kind(teacher), heads.head_kind(student)
    counts = heads.num_classes(teacher), heads.num_classes(student)
    if kinds[0] is not kinds[1] or counts[0] != counts[1]:
        raise ConfigError(
            f"The student must predict the teacher's classes with the same kind of head, but the teacher has "
            f"{counts[0]} classes ({kinds[0].value} head) and the student {counts[1]} ({kinds[1].value}). Build "
            f"the student with num_classes={counts[0]}, multi_label={kinds[0] is HeadKind.MULTILABEL}. "
            f"Received: teacher={teacher.name!r}, student={student.name!r}")
    return kinds[0]


def _check_no_shared_weights(teacher: keras.Model, student: keras.Model) -> None:
    """Raises a `ConfigError` if training the student would change the teacher (whose probabilities, computed
    once, and validation metrics would then describe a model that no longer exists)."""
    shared = {id(variable) for variable in teacher.weights} & {id(variable) for variable in student.weights}
    if shared:
        what = "is the teacher" if student is teacher else f"shares {len(shared)} weights with the teacher"
        raise ConfigError(
            f"The student {what}: training it would change the teacher too. Build the student on a backbone of "
            "its own: a backbone name, or your backbone loaded again (two classifiers built on one backbone model "
            "share its weights). "
            f"Received: teacher={teacher.name!r}, student={student.name!r}")


def _check_config(config: FineTuneConfig) -> None:
    if config.class_weight is not None:
        raise ConfigError(
            "distill does not weight classes: the teacher's probabilities already say how likely each class is. "
            f"Pass a config with class_weight=None. Received: class_weight={config.class_weight!r}")


def _check_unlabelled(unlabelled_data: tf.data.Dataset | None) -> None:
    if unlabelled_data is None:
        return
    spec = unlabelled_data.element_spec
    if isinstance(spec, tuple):
        raise ConfigError(
            "unlabelled_data holds batches of inputs only (the teacher labels them); drop the labels, e.g. "
            f"dataset.map(lambda inputs, labels: inputs). Received: unlabelled_data with element_spec={spec}")


@dataclasses.dataclass
class _StudentData:
    """The student's datasets, the teacher's probabilities packed beside the labels, and what that took."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    steps: int
    teacher_seconds: float
    unlabelled_examples: int


def _student_data(teacher: keras.Model, student: keras.Model, label_width: int, train_data: tf.data.Dataset,
                  validation_data: tf.data.Dataset | None, unlabelled_data: tf.data.Dataset | None, *,
                  labelled_steps: int) -> _StudentData:
    """Runs the teacher once over all the data, and packs its probabilities into the student's datasets.

    label_width: int. Label columns per example: 1 (a class index), or the classes (multi-hot).
    """
    unlabelled = None if unlabelled_data is None else targets_lib.mark_unlabelled(unlabelled_data, label_width)
    # Counted first: an infinite or empty dataset fails here, not after (or during) the teacher pass.
    unlabelled_steps = 0 if unlabelled is None else planner.steps_per_epoch(unlabelled)
    start = time.perf_counter()
    passes = targets_lib.run_teacher(teacher, {name: data for name, data in (
        ("train", train_data), ("unlabelled", unlabelled), ("validation", validation_data)) if data is not None})
    targets = targets_lib.TeacherTargets(*(np.concatenate(parts) for parts in zip(*passes.values())))
    seconds = time.perf_counter() - start
    unlabelled_examples = len(passes["unlabelled"][0]) if unlabelled is not None else 0
    logging.info("Teacher pass: probabilities of %d distinct examples (%d unlabelled) in %.1fs.",
                 len(targets.keys), unlabelled_examples, seconds)

    def for_student(dataset):
        return None if dataset is None else targets_lib.with_targets(student, dataset, targets, label_width)

    train = for_student(train_data)
    if unlabelled is not None:
        train = targets_lib.mix(train, for_student(unlabelled), labelled_steps, unlabelled_steps)
    return _StudentData(train, for_student(validation_data), labelled_steps + unlabelled_steps, seconds,
                        unlabelled_examples)


def _check_models_take(teacher: keras.Model, student: keras.Model, label_width: int, train_data: tf.data.Dataset,
                       validation_data: tf.data.Dataset | None, unlabelled_data: tf.data.Dataset | None) -> None:
    """Raises a `ConfigError` if the teacher cannot take the data, or either model the unlabelled data
    (the planner checks the student's labelled data)."""
    for name, data in (("train_data", train_data), ("validation_data", validation_data)):
        if data is not None:  # images as they are: only the student's are resized
            input_checks.check_dataset(teacher, targets_lib.as_model_sees_it(teacher, data, resize=False),
                                       name=f"{name} (for the teacher)")
    if unlabelled_data is None:
        return
    marked = targets_lib.mark_unlabelled(unlabelled_data, label_width)
    for role, model in (("teacher", teacher), ("student", student)):
        # The spec only: the marks (-1) are no class indices for the first batch's label check.
        input_checks.check_dataset(model, targets_lib.as_model_sees_it(model, marked, resize=model is student),
                                   name=f"unlabelled_data (for the {role})", peek=False)


def _train_student(student: keras.Model, phases: list, config: FineTuneConfig, verbose: int) -> list:
    """Runs the phases as `fine_tune` does; an example the teacher never saw becomes a `ConfigError`."""
    compute = precision.Compute.for_model(student, config.mixed_precision, config.jit_compile)
    backup = backup_lib.RunBackup(None)
    try:
        with precision.mixed_precision(student, compute.policy):
            return [engine.run_phase(student, phase, backup, verbose=verbose, compute=compute) for phase in phases]
    except tf.errors.InvalidArgumentError as error:
        if targets_lib.UNSEEN_EXAMPLE not in str(error):
            raise
        raise ConfigError(
            "The training data yielded an example the teacher pass never saw: distill needs the same inputs every "
            "epoch (in any order). Move random augmentation from tf.data into the model (tfxfer's image models "
            "have an augmentation layer), and do not take() a reshuffled subset. Received: train_data or "
            "unlabelled_data that changes between passes") from error


def _compile_for_labels(student: keras.Model, kind: HeadKind) -> None:
    """Compiles the trained student with its head's plain loss, so that its own `evaluate` takes labels."""
    with student.distribute_strategy.scope():
        student.compile(optimizer=student.optimizer, loss=losses.loss_for(kind), metrics=losses.metrics_for(kind))


def _compare_on_validation(student: keras.Model, kind: HeadKind, validation: tf.data.Dataset) -> dict:
    """`DistillResult`'s student and teacher validation metrics and their agreement."""
    student_probabilities, packed = targets_lib.predict(targets_lib.inference(student), validation)
    labels, teacher_probabilities = split_targets(packed, student_probabilities.shape[-1])
    agreement = losses.example_accuracy(kind, teacher_labels(kind, teacher_probabilities), student_probabilities)
    return {"student_validation": _label_metrics(kind, labels, student_probabilities),
            "teacher_validation": _label_metrics(kind, labels, teacher_probabilities),
            "agreement": float(keras.ops.mean(agreement))}


def _label_metrics(kind: HeadKind, labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Cross-entropy (no label smoothing) and accuracy against the labels."""
    return {"loss": float(keras.ops.mean(losses.loss_for(kind).call(labels, probabilities))),
            "accuracy": float(keras.ops.mean(losses.example_accuracy(kind, labels, probabilities)))}
