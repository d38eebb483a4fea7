"""Every training default in one place; the recipes' flags read theirs from here."""

import dataclasses

from tfxfer.freezing import FineTuneAt


@dataclasses.dataclass
class FineTuneConfig:
    """How `tfxfer.fine_tune` trains: phase 1 (frozen backbone), then phase 2.

    Attributes:
        epochs: int. Phase-1 epochs (head only, backbone frozen).
        fine_tune_epochs: int. Phase-2 epochs (top of the backbone unfrozen); 0 skips phase 2.
        learning_rate: float. Phase-1 peak learning rate (cosine decay). High
            enough that a linear head converges in 10 epochs even when a small
            dataset makes only a handful of batches per epoch.
        fine_tune_learning_rate: float. Phase-2 peak learning rate, reached after
            warmup, then cosine decay. Low, so pretrained features move gently.
        fine_tune_at: int, float or str. Where phase 2 starts unfreezing the
            backbone: layer index, fraction of layers from the top, or layer name.
        warmup_fraction: float. Share of phase-2 steps spent warming up from 0.
        weight_decay: float. Decoupled weight decay (AdamW) in both phases.
        label_smoothing: float. Label smoothing of the cross-entropy loss.
        clipnorm: float. Gradient-norm clipping; None disables it.
        layer_decay: float. Phase 2 only: layer-wise learning-rate decay for
            transformer backbones (`tfxfer.training.layerwise_lr`): the top
            block trains at the full rate, each block below at `layer_decay`
            times the one above. 1.0 (default) trains every layer alike.
        early_stopping_patience: int. Epochs without `val_loss` improvement
            before a phase stops; the best epoch's weights are restored.
            None disables early stopping.
        class_weight: None, "balanced" or {class_index: weight}.
    """

    epochs: int = 10
    fine_tune_epochs: int = 10
    learning_rate: float = 3e-3
    fine_tune_learning_rate: float = 1e-4
    fine_tune_at: FineTuneAt = 0.3
    warmup_fraction: float = 0.1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    clipnorm: float | None = None
    layer_decay: float = 1.0
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


@dataclasses.dataclass
class TextDefaults:
    """Defaults of the text recipe and builders that are not in `FineTuneConfig`.

    `fine_tune_at=0.5` unfreezes the top half of the encoder's layers: most
    transformer blocks of a keras-hub BERT (its ~9 embedding/input layers come
    first), and both the word vectors and the encoder of a word-vector backbone.
    `fine_tune_learning_rate` is lower than for images, as usual for transformers.
    """

    backbone: str = "bert_small_en_uncased"
    sequence_length: int = 128
    pooling: str = "cls"
    dropout: float = 0.1
    validation_split: float = 0.1
    batch_size: int = 32
    seed: int = 42
    fine_tune_at: float = 0.5
    fine_tune_learning_rate: float = 5e-5
    encoder: str = "bilstm"
    max_tokens: int = 20000
