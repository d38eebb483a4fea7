"""Every training default in one place; the recipes' flags read theirs from here."""

import dataclasses

# Where phase 2 starts unfreezing the backbone: a layer index, a fraction of the
# layers counted from the top, or a layer name (see `tfxfer.training.freezing`).
FineTuneAt = int | float | str


@dataclasses.dataclass
class FineTuneConfig:
    """How `tfxfer.fine_tune` trains: phase 1 (frozen backbone), then phase 2.

    Attributes:
        epochs: int. Phase-1 epochs (head only, backbone frozen). On cached
            features (`fine_tune`'s default) they cost little, since the
            backbone ran once; 20 let the linear head get closer to convergence
            than 10 and made a better start for phase 2 on splits of the photos,
            and no worse on the digits task (benchmarks/README.md, "How the defaults were chosen").
        fine_tune_epochs: int. Phase-2 epochs (top of the backbone unfrozen); 0 skips phase 2.
        learning_rate: float. Phase-1 peak learning rate (cosine decay). High
            enough that a linear head converges in its epochs even when a small
            dataset makes only a handful of batches per epoch.
        fine_tune_learning_rate: float. Phase-2 peak learning rate, reached after
            warmup, then cosine decay. Low, so pretrained features move gently.
        fine_tune_at: int, float or str. Where phase 2 starts unfreezing the
            backbone: layer index, fraction of layers from the top, or layer name.
        warmup_fraction: float. Share of phase-2 steps spent warming up from 0, in [0, 1).
        weight_decay: float. Decoupled weight decay (AdamW) in both phases.
        label_smoothing: float. Label smoothing of the cross-entropy loss.
        global_clipnorm: float. Clips the gradients so that their global norm
            is at most this, > 0 (as BERT fine-tuning does with 1.0); None
            disables it. Under several replicas Keras clips each replica's
            share of the gradient before summing them.
        layer_decay: float. Phase 2 only: layer-wise learning-rate decay for
            transformer backbones (`tfxfer.training.layerwise_lr`): the top
            block trains at the full rate, each block below at `layer_decay`
            times the one above. 1.0 (default) trains every layer alike.
            Combines with `lora_rank`: an adapter trains at the rate of the
            kernel it adapts.
        lora_rank: int | None. Phase 2 only: LoRA (`tfxfer.training.lora`).
            The backbone's own weights stay frozen (LayerNorm and BatchNorm
            too) and phase 2 trains the head plus rank-`lora_rank` adapters on
            the Dense/EinsumDense layers it would otherwise unfreeze (from
            `fine_tune_at` up; in a keras-hub encoder, the attention's query
            and value projections). The trained model keeps its adapters;
            `tfxfer.export_saved_model` serves the merged kernels. Refused
            before training for backbones without such layers (keras.applications
            conv nets, word-vector encoders). None (default): phase 2 trains
            the backbone's own weights.
        early_stopping_patience: int. Epochs without `val_loss` improvement
            before a phase stops (0 stops at the first such epoch, as 1 does,
            as in `keras.callbacks.EarlyStopping`); the best epoch's weights
            are restored. None disables early stopping.
        fine_tune_ema_momentum: float | None. Phase 2 keeps an exponential
            moving average of the trainable weights (Keras' `use_ema`), with
            this momentum per step; validation, early stopping and the trained
            model use the average. None (default) keeps the last weights:
            measured on splits of the training data, the average (0.9) did
            not help (benchmarks/README.md).
        fine_tune_interpolation: float. Phase 2 ends with the weights it
            trained this far from phase 1's toward its own (after early
            stopping restored its best epoch): WiSE-FT's weight-space ensemble
            of the linear probe and the fine-tuned model
            (`tfxfer.training.interpolation`), at its usual 0.5. Over 120 runs on
            splits of the photos' training set, halfway ended 26 photos of
            5,880 ahead of phase 2's own weights (ahead on 43 runs, behind on
            25), and level on the digits task (benchmarks/README.md, "How the
            defaults were chosen"). 1.0 keeps phase 2's weights.
        class_weight: None, "balanced" or {class_index: weight}: int class
            ids of the head, finite weights >= 0; a class left out weighs 1.0,
            as in Keras' `fit`. Not for multi-label heads.
        mixed_precision: None/"off" (default, float32), "auto",
            "mixed_bfloat16" or "mixed_float16". Both phases compute in that
            policy (the predictions layer and the loss in float32), set on the
            built model's layers for the run only: the trained model is float32
            again afterwards. "auto" picks bfloat16 on TPUs and on CPUs with
            bf16 instructions, float16 (with loss scaling) on GPUs, else
            float32. See `tfxfer.training.precision`.
        augmented_feature_passes: int. Phase 1 of a model with an augmentation
            layer trains on cached features: of the clean images (0, default),
            or of this many randomly augmented passes over them, at that many
            times the extraction cost. Measured on splits of the training data,
            2 passes did no better than the clean images (benchmarks/README.md).
        jit_compile: bool. Compile the training and evaluation steps with XLA
            (a TPU strategy compiles them anyway). XLA compiles once per batch
            shape, so text batches trimmed to their longest sequence compile
            once per length seen.

    Example:

    >>> config = tfxfer.FineTuneConfig(epochs=5, fine_tune_epochs=3, fine_tune_at=0.5)
    >>> config.learning_rate, config.fine_tune_learning_rate
    (0.003, 0.0001)
    >>> config.replace(early_stopping_patience=None).early_stopping_patience is None
    True

    Then `tfxfer.fine_tune(model, data.train, data.validation, config=config)`.
    """

    epochs: int = 20
    fine_tune_epochs: int = 10
    learning_rate: float = 3e-3
    fine_tune_learning_rate: float = 1e-4
    fine_tune_at: FineTuneAt = 0.3
    warmup_fraction: float = 0.1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    global_clipnorm: float | None = None
    layer_decay: float = 1.0
    lora_rank: int | None = None
    early_stopping_patience: int | None = 3
    class_weight: None | str | dict[int, float] = None
    augmented_feature_passes: int = 0
    fine_tune_ema_momentum: float | None = None
    fine_tune_interpolation: float = 0.5
    mixed_precision: str | None = None
    jit_compile: bool = False

    def replace(self, **changes) -> "FineTuneConfig":
        """A copy with `changes` applied, as `dataclasses.replace`: every value is taken as given.

        None is a value too: `replace(early_stopping_patience=None)` turns early
        stopping off and `replace(global_clipnorm=None)` turns clipping off. To
        keep a field as it is, leave it out.

        Raises:
            TypeError: a name that is not a field of `FineTuneConfig`.

        Example:

        >>> config = tfxfer.FineTuneConfig()
        >>> shorter = config.replace(epochs=2, fine_tune_epochs=0)  # 0 skips phase 2
        >>> shorter.epochs, shorter.fine_tune_epochs, config.epochs
        (2, 0, 20)
        """
        fields = [field.name for field in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            received = ", ".join(f"{name}={changes[name]!r}" for name in unknown)
            raise TypeError(f"FineTuneConfig has no field {', '.join(map(repr, unknown))}; its fields are: "
                            f"{', '.join(fields)}. Received: {received}")
        return dataclasses.replace(self, **changes)


# Phase 2's peak rate with LoRA (`lora_rank`): adapters start at zero and hold a few
# parameters each, and need about ten times the rate of whole-weight fine-tuning. Hu et
# al. (2021) trained RoBERTa-base's rank-8 adapters at 4e-4 to 5e-4 (5e-4 on SST-2).
LORA_FINE_TUNE_LEARNING_RATE = 5e-4


@dataclasses.dataclass
class ImageDefaults:
    """Defaults of the image recipe that are not about training."""

    backbone: str = "mobilenet_v2"
    batch_size: int = 32
    seed: int = 42
    # No dropout before the head: phase 1 trains it as a linear probe on cached features,
    # already regularised by label smoothing. On 40 splits of the photos' training set, the
    # probe without dropout ended 27 photos of 1,960 ahead of dropout 0.2, and the trained
    # model 8 ahead; 0.5 did worse than 0.2 (benchmarks/README.md, "How the defaults were chosen").
    dropout: float = 0.0
    # Share of each class held out for validation when the data has no validation part of its own (one
    # class-folder tree, a CSV/TSV of image paths): both training phases stop early on val_loss and keep their
    # best epoch, and the run reports accuracy on images it did not train on. A fifth, as `load_image_csv`'s.
    validation_split: float = 0.2


@dataclasses.dataclass
class TextDefaults:
    """Defaults of the text recipe and builders.

    Training (`fine_tune_config`) differs from images where transformers need it:
    - `fine_tune_at=0.5` unfreezes the top half of the encoder's layers: every
      transformer block of a keras-hub BERT (its embedding and input layers come
      first, and stay frozen), and both the word vectors and the encoder of a
      word-vector backbone.
    - `fine_tune_learning_rate=5e-5`, 2 epochs, gradients clipped to a global
      norm of 1.0: the usual BERT fine-tuning recipe (2e-5 to 5e-5, 2 to 4
      epochs). Phase 2 is where the time goes: every epoch runs the whole
      encoder forward and most of it backward. On held-out splits of
      rt-polarity's training texts (benchmarks/README.md), 2 epochs ended
      ahead of 3 on each of three seeds (0.832 against 0.824 on the mean) in
      two thirds of the time; one epoch over the top 3 of MiniLM's 6 blocks at
      2e-4 took a third of 3 epochs' time and ended 1 point behind them.
    - `layer_decay=0.9`: lower blocks move less than upper ones, which keeps more
      of the pretrained features when every block is unfrozen (transformer
      backbones only; word-vector encoders have no blocks).
    - `epochs=10` head epochs, not `FineTuneConfig`'s 20, which were chosen
      on image data (the photos and the digits task) and not measured on text.
    - `mixed_precision="auto"` (transformers only): bfloat16 compute on CPUs
      with bf16 instructions and on TPUs, float16 on GPUs, float32 elsewhere,
      so CPUs without bf16 train exactly as before. On 2 cores with AVX-512
      bf16, the text recipe on rt-polarity (MiniLM) ran in bfloat16 and reached
      0.845 and 0.851 in 291 and 345 s (seeds 0, 1); on 2 AVX2-only cores, in
      float32, the recipe with 3 phase-2 epochs took 1,231-1,294 s and reached
      0.842 and 0.856 (README, "Benchmarks").
      Word-vector encoders (an LSTM, small matrices) stay float32.
    - `fine_tune_interpolation=1.0`: phase 2 keeps its own weights. The halfway
      blend with phase 1's, the image default, lost 1.8 points on held-out
      splits of rt-polarity's training texts (behind on each of three seeds).

    `pooling="avg"`: phase 1 trains on frozen features, and the masked mean of
    the token features is the better frozen sentence feature for most encoders
    (the first token's is only trained as one by some pretraining objectives).
    """

    backbone: str = "bert_small_en_uncased"
    sequence_length: int = 128
    pooling: str = "avg"
    dropout: float = 0.1
    validation_split: float = 0.1
    batch_size: int = 32
    seed: int = 42
    encoder: str = "bilstm"
    max_tokens: int = 20000

    @staticmethod
    def fine_tune_config(*, word_vectors: bool = False, lora_rank: int | None = None) -> FineTuneConfig:
        """How the text recipe trains by default.

        Args:
            word_vectors: bool. For a word-vector backbone, which has no
                transformer blocks for layer-wise decay: `layer_decay=1.0`,
                and float32 (`mixed_precision=None`).
            lora_rank: int | None. Phase 2 trains LoRA adapters of this rank,
                at `LORA_FINE_TUNE_LEARNING_RATE` instead of 5e-5.
        """
        return FineTuneConfig(epochs=10, fine_tune_epochs=2, fine_tune_at=0.5,
                              fine_tune_learning_rate=5e-5 if lora_rank is None else LORA_FINE_TUNE_LEARNING_RATE,
                              layer_decay=1.0 if word_vectors else 0.9, global_clipnorm=1.0,
                              mixed_precision=None if word_vectors else "auto", lora_rank=lora_rank,
                              fine_tune_interpolation=1.0)
