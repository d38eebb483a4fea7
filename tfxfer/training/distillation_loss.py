"""`DistillationLoss`: Hinton et al.'s distillation loss, for heads that output probabilities.

Hinton et al. (2015, "Distilling the Knowledge in a Neural Network") mix the
hard labels with the teacher's temperature-softened probabilities:
`alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)`.
tfxfer's heads output probabilities, not logits; their logarithms serve as
logits, since softmax does not change when every logit shifts by the same
amount. Every head kind is supported: a one-unit sigmoid head is the
two-class distribution `[1 - p, p]`, and a multi-label head is distilled
label by label, each sigmoid as such a pair.

The loss takes its targets packed in one tensor, the labels then the teacher's
probabilities, so that `TrainLoop` (which hands a loss the batch's labels)
trains with it unchanged, under every strategy.
"""

import keras

from tfxfer.errors import ConfigError, is_real_number
from tfxfer.models.heads import HeadKind
from tfxfer.training import losses

# Common choices in the literature (Hinton et al. weight the hard labels much
# lower than the soft targets), not measured on tfxfer's benchmarks.
DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.1
# Above it, float32 no longer tells the softened distributions apart: the soft term, scaled up by T^2, is rounding
# noise (a third of it at T = 1000, then inf times 0, NaN), and it had stopped changing with T long before.
MAX_TEMPERATURE = 100.0
# The label of an example without one: the teacher alone labels it.
UNLABELLED = -1.0


@keras.saving.register_keras_serializable(package="tfxfer")
class DistillationLoss(keras.losses.Loss):
    """Per-example distillation loss of a head that outputs probabilities.

    `alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)`,
    where `p_T = softmax(log(p) / T)`, probabilities clipped to
    `keras.config.epsilon()` first. The hard term is the head's plain
    cross-entropy (`losses.loss_for(kind)`); the `T^2` keeps the soft term's
    gradients on the scale of the hard one's whatever the temperature. A
    sigmoid unit is the two-class distribution `[1 - p, p]`; a multi-label
    head's soft term is the mean over its labels.

    `y_true` packs each example's labels, then the teacher's probabilities:
    `(B, L + U)`, L the label columns (1, a class index; or the classes,
    multi-hot) and U the head's units. Labels of `UNLABELLED` (-1) mark an
    example without any: it contributes the soft term only.

    Args:
        kind: HeadKind. The head of student and teacher.
        temperature: float. 0 < T <= 100 (`MAX_TEMPERATURE`): above 1 softens
            both distributions, so the teacher's small probabilities (which
            wrong classes it finds plausible) weigh in.
        alpha: float. In [0, 1]: the weight of the hard labels; 1 is plain
            cross-entropy, 0 learns from the teacher alone.

    Raises:
        ConfigError: a temperature outside (0, 100], or an alpha outside [0, 1].

    Example:

    ```python
    loss = DistillationLoss(tfxfer.HeadKind.MULTICLASS, temperature=4.0, alpha=0.1)
    labels = tf.constant([[2.0], [UNLABELLED]])  # the second example has no label
    teacher = tf.constant([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    student = tf.constant([[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])
    per_example = loss.call(tf.concat([labels, teacher], axis=1), student)  # shape (2,)
    ```
    """

    def __init__(self, kind: HeadKind, temperature: float = DEFAULT_TEMPERATURE, alpha: float = DEFAULT_ALPHA,
                 name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        check_temperature_and_alpha(temperature, alpha)
        self.kind = HeadKind(kind)
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self._hard_loss = losses.loss_for(self.kind)

    def call(self, y_true, y_pred):
        labels, teacher = split_targets(y_true, y_pred.shape[-1])
        # Unlabelled rows get a valid stand-in label: their hard term is computed, then dropped.
        hard = self._hard_loss.call(keras.ops.maximum(labels, 0.0), y_pred)
        hard = keras.ops.where(labels[:, 0] >= 0, hard, 0.0)
        soft = soft_target_loss(self.kind, teacher, y_pred, self.temperature)
        return self.alpha * hard + (1.0 - self.alpha) * self.temperature ** 2 * soft

    def example_accuracy(self, y_true, y_pred):
        """Each example's accuracy against its labels, or against the teacher's
        prediction when it has none: what the training loop reports as `accuracy`."""
        labels, teacher = split_targets(y_true, y_pred.shape[-1])
        targets = keras.ops.where(labels[:, :1] >= 0, labels, teacher_labels(self.kind, teacher))
        return losses.example_accuracy(self.kind, targets, y_pred)

    def invalid_labels(self, y_true, y_pred):
        """Per example, 1.0 where a label (an `UNLABELLED` example aside) does not fit the head."""
        labels, _ = split_targets(y_true, y_pred.shape[-1])
        labelled = keras.ops.cast(labels[:, 0] >= 0, "float32")
        return labelled * losses.invalid_labels(self.kind, labels, y_pred)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind.value, "temperature": self.temperature,
                "alpha": self.alpha}


def check_temperature_and_alpha(temperature, alpha, names: tuple[str, str] = ("temperature", "alpha")) -> None:
    """Raises a `ConfigError` unless 0 < `temperature` <= `MAX_TEMPERATURE` and 0 <= `alpha` <= 1.

    names: (str, str). What the message calls the two: the recipes pass their
        flags (`--distill_temperature`, `--distill_alpha`), which they check
        before the teacher trains.
    """
    temperature_name, alpha_name = names
    if not is_real_number(temperature) or not temperature > 0 or temperature == float("inf"):
        raise ConfigError(f"{temperature_name} must be a number > 0 (1 leaves the probabilities as they are; 2 to "
                          f"10 soften them, as is usual for distillation), e.g. {DEFAULT_TEMPERATURE}. "
                          f"Received: {temperature_name}={temperature!r}")
    if temperature > MAX_TEMPERATURE:
        raise ConfigError(f"{temperature_name} must be at most {MAX_TEMPERATURE:g}: above it float32 cannot tell the "
                          f"softened probabilities apart, and the loss is rounding noise, or NaN (2 to 10 is usual "
                          f"for distillation), e.g. {DEFAULT_TEMPERATURE}. "
                          f"Received: {temperature_name}={temperature!r}")
    if not is_real_number(alpha) or not 0 <= alpha <= 1:
        raise ConfigError(f"{alpha_name} must be a number in [0, 1]: the weight of the hard labels (1 ignores the "
                          f"teacher, 0 learns from the teacher alone), e.g. {DEFAULT_ALPHA}. "
                          f"Received: {alpha_name}={alpha!r}")


def split_targets(y_true, units: int):
    """`(labels, teacher probabilities)` of packed targets: the last `units` columns are the teacher's."""
    return y_true[:, :-units], y_true[:, -units:]


def teacher_labels(kind: HeadKind, teacher_probabilities):
    """The teacher's predictions as label columns: its top class `(B, 1)`, or each sigmoid above 0.5."""
    if kind is HeadKind.MULTICLASS:
        return keras.ops.cast(keras.ops.argmax(teacher_probabilities, axis=-1)[:, None], "float32")
    return keras.ops.cast(teacher_probabilities > 0.5, "float32")


def soft_target_loss(kind: HeadKind, teacher_probabilities, student_probabilities, temperature: float):
    """Per example `KL(teacher_T || student_T)`, the mean over labels for a multi-label head; shape `(B,)`."""
    teacher_log = keras.ops.log_softmax(_logits(kind, teacher_probabilities) / temperature, axis=-1)
    student_log = keras.ops.log_softmax(_logits(kind, student_probabilities) / temperature, axis=-1)
    divergence = keras.ops.sum(keras.ops.exp(teacher_log) * (teacher_log - student_log), axis=-1)
    return divergence if kind is HeadKind.MULTICLASS else keras.ops.mean(divergence, axis=-1)


def _logits(kind: HeadKind, probabilities):
    """Logits whose softmax over the last axis gives back `probabilities`: their logarithms,
    zeros clipped; each sigmoid unit as the pair `[log(1 - p), log(p)]`, `(B, U, 2)`."""
    epsilon = keras.config.epsilon()
    if kind is HeadKind.MULTICLASS:
        return keras.ops.log(keras.ops.clip(probabilities, epsilon, 1.0))
    p = keras.ops.clip(probabilities, epsilon, 1.0 - epsilon)
    return keras.ops.stack([keras.ops.log(1.0 - p), keras.ops.log(p)], axis=-1)
