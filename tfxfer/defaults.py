"""Every training default in one place; the recipes' flags read theirs from here."""

import dataclasses

from tfxfer.freezing import FineTuneAt


@dataclasses.dataclass
class FineTuneConfig:
    """How `tfxfer.fine_tune` trains: phase 1 (frozen backbone), then phase 2.

    Attributes:
        epochs: int. Phase-1 epochs (head only, backbone frozen).
        fine_tune_epochs: int. Phase-2 epochs (top of the backbone unfrozen); 0 skips phase 2.
        learning_rate: float. Phase-1 peak learning rate (cosine decay).
        fine_tune_learning_rate: float. Phase-2 peak learning rate, reached after
            warmup, then cosine decay. Low, so pretrained features move gently.
        fine_tune_at: int, float or str. Where phase 2 starts unfreezing the
            backbone: layer index, fraction of layers from the top, or layer name.
        warmup_fraction: float. Share of phase-2 steps spent warming up from 0.
        weight_decay: float. Decoupled weight decay (AdamW) in both phases.
        label_smoothing: float. Label smoothing of the cross-entropy loss.
        clipnorm: float. Gradient-norm clipping; None disables it.
        early_stopping_patience: int. Epochs without `val_loss` improvement
            before a phase stops; the best epoch's weights are restored.
            None disables early stopping.
        class_weight: None, "balanced" or {class_index: weight}.
    """

    epochs: int = 10
    fine_tune_epochs: int = 10
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-4
    fine_tune_at: FineTuneAt = 0.3
    warmup_fraction: float = 0.1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    clipnorm: float | None = None
    early_stopping_patience: int | None = 3
    class_weight: None | str | dict[int, float] = None

    def replace(self, **changes) -> "FineTuneConfig":
        """A copy with `changes` applied; None values keep the default."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclasses.dataclass
class ImageDefaults:
    """Defaults of the image recipe that are not about training."""

    backbone: str = "mobilenet_v2"
    batch_size: int = 32
    seed: int = 42
