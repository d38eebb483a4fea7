"""`Phase`: everything one phase of `fine_tune` trains with, planned once, then run by the engine.

`tfxfer.training.planner` checks `fine_tune`'s arguments and builds the phases
(phase 1: frozen backbone, maybe on cached features; phase 2: the top unfrozen);
`tfxfer.training.engine` runs each, so nothing else travels between them.
"""

import dataclasses

import keras
import tensorflow as tf

from tfxfer.defaults import FineTuneAt
from tfxfer.models.heads import HeadKind
from tfxfer.training import schedules


@dataclasses.dataclass(frozen=True)
class Phase:
    """One training phase.

    Attributes:
        name: str. How the logs name it ("phase 1").
        backup_slot: str. Its sub-folder of the run's backup ("phase1"),
            see `tfxfer.training.backup`.
        skip_when_done: bool. The backup records the finished phase (its
            result and final weights), and a restarted run restores it
            instead of training it again. Phase 1 only.
        train: tf.data.Dataset. Batches of (inputs, labels).
        validation: tf.data.Dataset | None. Same, or None.
        steps: int. Batches per epoch of `train`.
        epochs: int. Epochs to train.
        learning_rate: float. Peak of the warmup-then-cosine schedule.
        warmup_fraction: float. Share of the phase's steps spent warming up.
        weight_decay: float. AdamW's decoupled weight decay.
        global_clipnorm: float | None. Gradient clipping, or None.
        lr_multipliers: dict | None. Per-variable learning-rate factors
            (`layerwise_lr.LayerwiseAdamW`), or None for plain AdamW.
        fine_tune_at: int, float, str or None. Which backbone layers train
            (`freezing.set_trainable`): None freezes the whole backbone.
        lora_rank: int | None. Train rank-`lora_rank` LoRA adapters on the
            layers `fine_tune_at` unfreezes instead of their own weights
            (`tfxfer.training.lora`); None: no LoRA.
        cache_features: bool. Train the head on features the frozen backbone
            computed once (`feature_cache`) instead of running it every epoch.
        augmented_feature_passes: int. When caching: how many randomly
            augmented passes of the training images to cache (0: the clean ones).
        kind: HeadKind. Decides the loss and accuracy.
        loss: keras.losses.Loss. The training loss; its `call` gives the
            per-example losses (the head's default, with the config's label
            smoothing, or the user's own).
        class_weight: dict | None. `{class_index: weight}` of the training loss.
        early_stopping_patience: int | None. Epochs without `val_loss`
            improvement before the phase stops; None never stops early.
        ema_momentum: float | None. Keep a moving average of the trainable
            weights at this momentum, and validate and end with it; None: off.
        interpolation: float. End with the trained weights this far from where
            the phase started toward where training left them
            (`tfxfer.training.interpolation`); 1.0 keeps them as trained.
        callbacks: tuple. The user's Keras callbacks.
    """

    name: str
    backup_slot: str
    skip_when_done: bool
    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    steps: int
    epochs: int
    learning_rate: float
    warmup_fraction: float
    weight_decay: float
    global_clipnorm: float | None
    lr_multipliers: dict[str, float] | None
    fine_tune_at: FineTuneAt | None
    lora_rank: int | None
    cache_features: bool
    augmented_feature_passes: int
    kind: HeadKind
    loss: keras.losses.Loss
    class_weight: dict[int, float] | None
    early_stopping_patience: int | None
    ema_momentum: float | None
    interpolation: float
    callbacks: tuple[keras.callbacks.Callback, ...]

    def schedule(self) -> keras.optimizers.schedules.LearningRateSchedule:
        """The learning rate over the phase's steps: warmup to `learning_rate`, then cosine decay."""
        return schedules.warmup_cosine(self.learning_rate, self.epochs * self.steps, self.warmup_fraction)
