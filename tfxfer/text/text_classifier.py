"""`build_text_classifier`: a text encoder plus the shared Dense head, as a plain `keras.Model`."""

import difflib
import os

import keras
import tensorflow as tf
from absl import logging

from tfxfer import heads, layer_names
from tfxfer.errors import ConfigError
from tfxfer.text.hub_backbones import _looks_like_path, load_hub_backbone
from tfxfer.text.pooling import TokenPooling
from tfxfer.text.text_backbone import TextBackbone

PREPROCESSOR_ATTRIBUTE = "preprocessor"


def build_text_classifier(
    backbone: str | os.PathLike | TextBackbone,
    num_classes: int,
    *,
    sequence_length: int = 128,
    pooling: str = "mean",
    dropout: float = 0.1,
    multi_label: bool = False,
    weights: str | os.PathLike | None = "pretrained",
) -> keras.Model:
    """Builds a text classifier: token ids in, class probabilities out.

    The model is `token inputs -> backbone -> pooler -> dropout -> predictions`
    and carries its string-to-token-ids step as `model.preprocessor` (keras-hub's
    name for it). Train on `data.map_inputs(model.preprocessor)` (tokenizing in
    tf.data); `tfxfer.export_saved_model(model, ...)` puts the preprocessor in
    the serving graph, so the SavedModel takes raw strings.

    Args:
        backbone: str, path or TextBackbone. A keras-hub preset name (downloads),
            a local keras-hub preset folder, a local Hugging Face-format folder,
            or a `TextBackbone` (e.g. from `load_word_vector_backbone`).
        num_classes: int. Number of classes (2 gives one sigmoid unit).
        sequence_length: int. Tokens per text for preset backbones (a
            `TextBackbone` brings its own).
        pooling: str. `"mean"` (masked mean, the default: see
            `tfxfer.defaults.TextDefaults`) or `"cls"` (first token) of a
            transformer's token features; ignored for encoders that output
            one vector per text.
        dropout: float. Dropout rate before the Dense head.
        multi_label: bool. Independent sigmoid per class.
        weights: str, path or None. For keras-hub backbones: `"pretrained"`
            (the preset's), None (random initialisation) or a `.weights.h5`
            file of the backbone; see `load_hub_backbone`.

    Example:
    ```python
    model = tfxfer.build_text_classifier("path/to/bert_preset", num_classes=2, sequence_length=64)
    probabilities = model.predict(model.preprocessor(tf.constant(["a fine film"])))
    ```
    """
    if isinstance(backbone, TextBackbone) and weights != "pretrained":
        raise ConfigError(
            "weights applies to keras-hub backbones; a TextBackbone (e.g. word vectors) brings its own. "
            f"Received: weights={weights!r}")
    if not isinstance(backbone, TextBackbone):
        _check_preset_name(backbone)
        backbone = load_hub_backbone(backbone, sequence_length=sequence_length, weights=weights)
    encoder = backbone.encoder
    if encoder.name != layer_names.BACKBONE:
        raise ConfigError(
            f"The encoder of a TextBackbone must be named {layer_names.BACKBONE!r} so "
            f"fine_tune can freeze it. Received: name={encoder.name!r}"
        )
    inputs = _inputs_like(encoder.input)
    features = encoder(inputs)
    if len(features.shape) == 3:
        mask = inputs.get("padding_mask") if isinstance(inputs, dict) else None
        if pooling == "mean" and mask is None:
            raise ConfigError(
                "pooling='mean' needs the encoder's 'padding_mask' input to skip "
                f"padding. Use pooling='cls'. Received: inputs={sorted(inputs) if isinstance(inputs, dict) else inputs}"
            )
        features = TokenPooling(pooling, name=layer_names.POOLER)(features, mask)
    outputs = heads.classification_head(features, num_classes, multi_label=multi_label, dropout=dropout)
    model = keras.Model(inputs, outputs, name=f"{_clean(backbone.name)}_text_classifier")
    # A plain attribute, not a layer of the graph: the model itself takes token ids.
    setattr(model, PREPROCESSOR_ATTRIBUTE, backbone.preprocessor)
    # One call builds the preprocessor: the export can only track built layers.
    backbone.preprocessor(tf.constant(["build"]))
    logging.info("Built %s: %d classes (%s head), pooling %s, %d parameters.",
                 model.name, num_classes, heads.head_kind(model).value, pooling, model.count_params())
    return model


def text_preprocessor(model: keras.Model):
    """The string-to-token-ids step of a text classifier, or None for other models."""
    return getattr(model, PREPROCESSOR_ATTRIBUTE, None)


def _check_preset_name(backbone) -> None:
    # A name keras-hub does not know would otherwise fail as a download error
    # (or, offline, look like a network problem); the known names are local.
    if not isinstance(backbone, str) or "://" in backbone or _looks_like_path(backbone):
        return
    import keras_hub  # Deferred, as in hub_backbones: only text models pay for importing keras-hub.

    presets = sorted(keras_hub.models.TextClassifierPreprocessor.presets)
    if backbone in presets:
        return
    close = difflib.get_close_matches(backbone.lower(), presets, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(name) for name in close)}?" if close else ""
    raise ConfigError(
        f"Unknown keras-hub text preset.{hint} Pass a local keras-hub preset folder (save_to_preset "
        "output), a Hugging Face-format folder, a kaggle:// or hf:// handle, or one of: "
        f"{', '.join(presets)}. Received: backbone={backbone!r}"
    )


def _inputs_like(spec):
    if isinstance(spec, dict):
        return {name: keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=name) for name, tensor in spec.items()}
    return keras.Input(spec.shape[1:], dtype=spec.dtype, name=spec.name)


def _clean(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)
