"""The training loop behind `fine_tune`, the same under every `tf.distribute` strategy.

Keras 3's `Model.fit` fails under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585), so tfxfer trains with its own loop everywhere instead
of keeping two: each step is `strategy.run` of a `GradientTape` step on a Keras
model and optimizer, inside one `tf.function`. Whatever the strategy, a step
computes the mean loss over the *global* batch (each replica's sum divided by
the global count, the optimizer sums gradients across replicas), so one device,
several GPUs and several machines train alike on the same global batch.

Keras callbacks run as under `fit` (`CallbackList`: `on_train_begin`,
`on_test_begin`/`on_test_end` around validation, `on_epoch_end` with
`loss`/`accuracy`/`val_loss`/`val_accuracy` logs, `model.stop_training`,
`BackupAndRestore`'s `model._initial_epoch`, the compiled metrics built, from
which callbacks in "auto" mode read whether `accuracy` should rise), so early
stopping, backups, `SwapEMAWeights` (which validates the weight average) and
user callbacks keep working.

With `jit_compile`, XLA compiles the per-replica step (as Keras' own trainer
does), not the `strategy.run` around it. Mixed precision is the layers' own
dtype policies (`tfxfer.training.precision`); the loop casts the predictions to
float32 for the loss and scales the loss with the optimizer's `scale_loss`,
which only a `LossScaleOptimizer` (float16) changes.
"""

import collections
import math

import keras
import numpy as np
import tensorflow as tf

from tfxfer.errors import InvalidLabelsError, NonFiniteLossError
from tfxfer.models import heads
from tfxfer.training import losses, precision


class TrainLoop:
    """Trains and evaluates `model` under the strategy its variables were created in.

    Args:
        model: keras.Model. Compiled with the optimizer to train with
            (`model.optimizer`): callbacks such as `BackupAndRestore` save it.
        kind: HeadKind. Decides the per-example loss and accuracy.
        loss: keras.losses.Loss. The per-example loss is its `call`. If it
            has an `example_accuracy(labels, probabilities)` method, that
            gives each example's accuracy instead of the head's default; if
            it has `task_accuracies` (`losses.MultiTaskLoss`), the labels and
            outputs are dicts per task, and each task's accuracy is logged
            as `<task>_accuracy`, their mean as `accuracy`.
        class_weight: dict. `{class_index: weight}` for the training loss, or None.
        head: keras.Model. When training on cached features: the head of
            `model` (features in), which then computes the predictions. Its
            trainable variables must be all of `model`'s (the backbone frozen);
            callbacks still see `model`, so checkpoints hold the whole model.
        optimizer: keras.optimizers.Optimizer. What to train with instead of
            `model.optimizer`, which is then left untouched (the learning-rate
            finder's sweep).
        jit_compile: bool. Compile each replica's training and evaluation step
            with XLA. Ignored under a TPU strategy, which compiles them anyway.
            XLA compiles again for every new batch shape (text batches trimmed
            to their longest sequence), which can cost more than it saves.
    """

    def __init__(self, model: keras.Model, kind: heads.HeadKind, loss: keras.losses.Loss,
                 class_weight: dict[int, float] | None = None, head: keras.Model | None = None,
                 optimizer: keras.optimizers.Optimizer | None = None, jit_compile: bool = False):
        if head is not None and len(head.trainable_variables) != len(model.trainable_variables):
            raise ValueError(
                "Training on cached features needs a frozen backbone: the head must hold all of the "
                f"model's trainable variables. Received: {len(head.trainable_variables)} in the head, "
                f"{len(model.trainable_variables)} in the model")
        self.model = model
        self.strategy = model.distribute_strategy
        self.optimizer = optimizer or model.optimizer
        with self.strategy.scope():
            self.optimizer.build(model.trainable_variables)
        self._network = head or model
        self._kind = kind
        self._loss = loss
        self._class_weights = None
        if class_weight:
            size = max(class_weight) + 1
            self._class_weights = tf.constant([class_weight.get(index, 1.0) for index in range(size)], tf.float32)
        self.jit_compile = jit_compile and not precision.is_tpu_strategy(self.strategy)
        self._train_replica_step = _compiled(self._train_replica, self.jit_compile)
        self._eval_replica_step = _compiled(self._eval_replica, self.jit_compile)
        # reduce_retracing: for data other than the datasets `distribute` traced the steps for.
        self._train_step = tf.function(self._distributed_train_step, reduce_retracing=True)
        self._eval_step = tf.function(self._distributed_eval_step, reduce_retracing=True)

    def fit(self, train_data: tf.data.Dataset, *, epochs: int, steps: int,
            validation_data: tf.data.Dataset | None = None,
            callbacks: list[keras.callbacks.Callback] = (), verbose: int = 0) -> keras.callbacks.History:
        """Trains for `epochs` whole passes over `train_data`; returns the History, as `fit` does.

        Batch logs hold the epoch's running mean `loss` and `accuracy`, epoch
        logs also the validation metrics, as under `fit`.

        verbose: int. 0, 1 or 2 as in `fit`: Keras' `ProgbarLogger` shows the progress.
        """
        model = self.model
        history = keras.callbacks.History()
        callback_list = keras.callbacks.CallbackList(
            [*callbacks, history], add_progbar=verbose != 0, model=model, epochs=epochs, steps=steps,
            verbose=verbose)
        train = self.distribute(train_data)
        validation = None if validation_data is None else self.distribute(validation_data, evaluation=True)
        _build_compiled_metrics(model, train_data.element_spec[1])
        model.stop_training = False
        model._initial_epoch = None  # BackupAndRestore sets it in on_train_begin when it restores.
        callback_list.on_train_begin()
        first_epoch = model._initial_epoch or 0
        for epoch in range(first_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            totals = _Totals()
            for step, batch in enumerate(train):
                callback_list.on_train_batch_begin(step)
                sums = self.train_step(batch)
                _refuse_non_finite_loss(sums, f"batch {step + 1} of epoch {epoch + 1} of the training data")
                totals.add(sums)
                callback_list.on_train_batch_end(step, totals.logs())
                if model.stop_training:
                    break
            logs = totals.logs()
            if validation is not None:
                callback_list.on_test_begin()  # as in fit: SwapEMAWeights validates the average
                logs.update(self._evaluate_distributed(validation, prefix="val_"))
                callback_list.on_test_end(logs)
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end()
        return history

    def distribute(self, dataset: tf.data.Dataset, *, evaluation: bool = False) -> tf.distribute.DistributedDataset:
        """`dataset` split over the strategy's replicas: its elements are what `train_step` takes
        (with `evaluation`, what the evaluation step takes).

        The step is traced here for the dataset's `element_spec`, whose unknown
        sizes (the batch size, for a last, partial batch; the length of text
        batches trimmed to their longest) fit every batch: traced at the first
        batch instead, it would trace again at the first batch of another shape.
        """
        distributed = self.strategy.experimental_distribute_dataset(dataset)
        (self._eval_step if evaluation else self._train_step).get_concrete_function(distributed.element_spec)
        return distributed

    def train_step(self, batch) -> dict[str, float]:
        """One optimizer step on a global batch (from `distribute`): its sums over all replicas,
        `{"loss": ..., "correct": ..., "examples": ..., "invalid_labels": 0.0}` with class weights (and per
        task of a multi-task model, `<task>_correct` and `<task>_labelled`).

        Raises:
            InvalidLabelsError: labels of the batch fit no class of the head (`losses.invalid_labels`); the step
                has been taken (`fine_tune` then undoes its phase's steps).
        """
        # One host transfer per step; the step already waited for its all-reduce.
        sums = {name: float(value) for name, value in self._train_step(batch).items()}
        _refuse_invalid_labels(sums, "the training data")
        return sums

    def evaluate(self, data: tf.data.Dataset) -> dict[str, float]:
        """`{"loss": ..., "accuracy": ...}` of the model on `data`, without class weights."""
        return self._evaluate_distributed(self.distribute(data, evaluation=True))

    def _evaluate_distributed(self, data, prefix=""):
        totals = _Totals()
        for batch in data:
            sums = {name: float(value) for name, value in self._eval_step(batch).items()}
            _refuse_invalid_labels(sums, "the validation data")
            totals.add(sums)
        logs = totals.logs(prefix)
        _refuse_non_finite_loss({"loss": logs[f"{prefix}loss"]}, "a pass over the validation data")
        return logs

    def _distributed_train_step(self, batch):
        return self._reduce(self.strategy.run(self._train_replica_step, args=(batch,)))

    def _distributed_eval_step(self, batch):
        return self._reduce(self.strategy.run(self._eval_replica_step, args=(batch,)))

    def _reduce(self, per_replica):
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()}

    def _train_replica(self, batch):
        inputs, labels = batch
        weights = self._example_weights(labels)
        count = _count(labels)
        context = tf.distribute.get_replica_context()
        # The global count (not the replica's) keeps the mean right for a last,
        # partial batch and for replicas that got no examples from it.
        global_count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        model = self.model
        with tf.GradientTape() as tape:
            probabilities = self._network(inputs, training=True)
            example_losses = self._example_losses(labels, probabilities)
            loss = tf.reduce_sum(example_losses * weights) / tf.maximum(global_count, 1.0)
            if model.losses:  # regularisers: once per global step, split over replicas
                loss += tf.add_n([tf.cast(value, tf.float32) for value in model.losses]) / (
                    self.strategy.num_replicas_in_sync)
            # Unchanged but under a LossScaleOptimizer (float16), whose `apply` unscales the gradients.
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, model.trainable_variables)
        self.optimizer.apply(gradients, model.trainable_variables)
        return {"loss": tf.reduce_sum(example_losses * weights), **self._correct(labels, probabilities),
                "examples": count, "invalid_labels": self._invalid_labels(labels, probabilities)}

    def _eval_replica(self, batch):
        inputs, labels = batch
        probabilities = self._network(inputs, training=False)
        example_losses = self._example_losses(labels, probabilities)
        return {"loss": tf.reduce_sum(example_losses), **self._correct(labels, probabilities),
                "examples": _count(labels), "invalid_labels": self._invalid_labels(labels, probabilities)}

    def _example_losses(self, labels, probabilities):
        return losses.example_losses(self._loss, labels, probabilities)

    def _invalid_labels(self, labels, probabilities):
        """How many examples of the batch have labels that do not fit the head (a loss that packs more than
        labels into them, as distillation's, says which are its labels)."""
        invalid = getattr(self._loss, "invalid_labels", None)
        if invalid is None:
            return tf.reduce_sum(losses.invalid_labels(self._kind, labels, tf.cast(probabilities, tf.float32)))
        return tf.reduce_sum(invalid(labels, probabilities))

    def _example_weights(self, labels):
        if self._class_weights is None or self._kind is heads.HeadKind.MULTILABEL:
            return tf.ones([_count(labels)], tf.float32)
        return tf.gather(self._class_weights, tf.reshape(tf.cast(labels, tf.int32), [-1]))

    def _correct(self, labels, probabilities):
        """`{"correct": ...}` summed over the batch, or per task `<task>_correct` and `<task>_labelled`."""
        if hasattr(self._loss, "task_accuracies"):
            return {f"{task}_{what}": tf.reduce_sum(value)
                    for task, sums in self._loss.task_accuracies(labels, probabilities).items()
                    for what, value in zip(("correct", "labelled"), sums)}
        probabilities = tf.cast(probabilities, tf.float32)
        # A loss whose labels carry more than the labels (distillation's teacher
        # probabilities, `tfxfer.training.distillation`) scores the examples itself.
        score = getattr(self._loss, "example_accuracy", None)
        if score is not None:
            return {"correct": tf.reduce_sum(score(labels, probabilities))}
        return {"correct": tf.reduce_sum(losses.example_accuracy(self._kind, labels, probabilities))}


def _build_compiled_metrics(model: keras.Model, label_spec) -> None:
    """Builds the metrics `model` was compiled with, as `fit` does at its first step, without computing any.

    Keras' callbacks in "auto" mode (`EarlyStopping`, `ModelCheckpoint`, ...)
    decide whether a monitored metric should rise or fall from the model's
    compiled metrics of that name (their `_direction`),
    which exist only once built: without this, monitoring `val_accuracy` fails
    at the first epoch's end. The loop's logs are named as those metrics (every
    head is compiled with its accuracy as `accuracy`, a multi-task model with
    it per task, whose metrics are named `accuracy` too), and `loss` is known
    to Keras by name. Building them here, rather than telling each callback its
    mode, keeps any callback that reads `model.metrics` working as under `fit`.
    A multi-task model's per-task `<task>_accuracy` stays unknown to them, as it
    is under `fit` (Keras matches the metric's own name, `accuracy`): such a
    callback needs `mode="max"`.

    Args:
        model: keras.Model. Compiled; nothing is done for one compiled without metrics.
        label_spec: tf.TypeSpec. The training data's labels (a dict per task for a multi-task model).
    """
    # Keras builds them in `fit`'s first step (`_symbolic_build`); no public method builds them alone.
    compiled = getattr(model, "_compile_metrics", None)
    if compiled is None or compiled.built:
        return
    as_symbolic = lambda spec: keras.KerasTensor(tuple(spec.shape), spec.dtype.name)  # noqa: E731
    # Shapes and structure only: Keras picks a metric given by name ("accuracy") from them.
    compiled.build(tf.nest.map_structure(as_symbolic, label_spec), model.output)


def _refuse_invalid_labels(sums: dict[str, float], data: str) -> None:
    """Raises an `InvalidLabelsError` if a step's `sums` counted labels that do not fit the head
    (`losses.invalid_labels`)."""
    if sums["invalid_labels"]:
        raise InvalidLabelsError(
            f"A batch of {data} has labels that fit no class of the model's head: a class index must be a whole "
            "number from 0 to the head's classes less one, a binary or multi-hot label 0 or 1 (the checks before "
            "training read only the first batch). Build the model with num_classes equal to the number of classes "
            "in the data (len(data.class_names)), or fix the labels. "
            f"Received: {int(sums['invalid_labels'])} of the batch's {int(sums['examples'])} examples")


def _refuse_non_finite_loss(sums: dict[str, float], where: str) -> None:
    """Raises a `NonFiniteLossError` naming `where` if the loss in `sums` is NaN or infinite.

    One NaN in the inputs makes the loss NaN, and one step on it makes every
    weight NaN: the run would go on to its end and return a model that
    predicts NaN. Stopping at that batch says where to look.
    """
    if not math.isfinite(sums["loss"]):
        raise NonFiniteLossError(
            f"The loss of {where} is {sums['loss']}: its inputs may hold NaN or infinite values (check them with "
            "np.isfinite, or tf.debugging.check_numerics in the pipeline), or the learning rate is too high for "
            f"the model (try a tenth of it). Received: loss={sums['loss']}")


def _count(labels) -> tf.Tensor:
    """Examples in a batch of labels (one tensor, or a dict per task), as float32."""
    return tf.cast(tf.shape(tf.nest.flatten(labels)[0])[0], tf.float32)


def _compiled(replica_step, jit_compile):
    """`replica_step` XLA-compiled (its own `tf.function`, run inside `strategy.run`), or as it is."""
    if not jit_compile:
        return replica_step
    return tf.function(replica_step, jit_compile=True, reduce_retracing=True)


class _Totals:
    """Sums of a step's outputs (`loss`, `examples`, and `correct` or per task `<task>_correct`/`_labelled`)
    over the steps of an epoch."""

    def __init__(self):
        self._sums = collections.Counter()

    def add(self, sums):
        """Adds one step's sums (tensors or floats)."""
        self._sums.update({name: float(value) for name, value in sums.items()})

    def logs(self, prefix=""):
        sums = self._sums
        logs = {f"{prefix}loss": sums["loss"] / max(sums["examples"], 1.0)}
        if "correct" in sums:
            logs[f"{prefix}accuracy"] = sums["correct"] / max(sums["examples"], 1.0)
            return logs
        # A task none of whose examples here is labelled has no accuracy: left out, of the mean too (as
        # `multi_task_report` does), rather than counted as 0. The data of a pass is the same every epoch, so a
        # task's key is there in every epoch's logs or in none.
        tasks = [name[:-len("_labelled")] for name in sums if name.endswith("_labelled") and sums[name] > 0]
        accuracies = {task: sums[f"{task}_correct"] / sums[f"{task}_labelled"] for task in tasks}
        # The tasks' mean, under the name every report reads; each task's own beside it, as Keras names them.
        if accuracies:
            logs[f"{prefix}accuracy"] = float(np.mean(list(accuracies.values())))
        logs.update({f"{prefix}{task}_accuracy": value for task, value in accuracies.items()})
        return logs
