"""`TextClassifier` and `build_text_classifier`: a text encoder, its tokenizer and the shared Dense head."""

import difflib
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.models import classifier, layer_names
from tfxfer.models.backbones.hub_text import (
    PRETRAINED,
    _looks_like_path,
    load_hub_backbone,
)
from tfxfer.models.backbones.text_backbone import TextBackbone
from tfxfer.models.token_pooling import TokenPooling, canonical_pooling

# Batch size of `predict` on raw strings when none is given, as in `keras.Model.predict`.
_PREDICT_BATCH_SIZE = 32


@keras.saving.register_keras_serializable(package="tfxfer")
class TextClassifier(classifier.Classifier):
    """Token ids in, class probabilities out, with its tokenizer as `preprocessor`; saves and reloads whole.

    The model is `token inputs -> backbone -> pooler -> dropout -> predictions`.
    Its string-to-token-ids step, `preprocessor` (keras-hub's name), is part of
    the model and its saved file, but runs outside the graph: train on
    `data.map_inputs(model.preprocessor)` (tokenizing in tf.data, in parallel);
    `predict` also takes raw strings; `tfxfer.export_saved_model` puts the
    preprocessor in the serving graph, so the SavedModel takes raw strings.

    Args:
        backbone: keras.Model. The encoder, named `"backbone"`: token inputs to
            a sequence `(N, T, D)` or a vector `(N, D)`.
        preprocessor: keras.Layer. Strings `(N,)` to the encoder's inputs.
        num_classes: int. Number of classes (2 gives one sigmoid unit).
        pooling: str. `"avg"` (masked mean) or `"cls"` (first token) of a
            sequence; unused for encoders that output one vector per text.
        dropout: float. Dropout rate before the Dense head.
        multi_label: bool. Independent sigmoid per class.
        backbone_name: str. The preset or encoder name.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Use `build_text_classifier` to build one from a preset or a `TextBackbone`.

    Example:

    ```python
    backbone = tfxfer.load_hub_backbone("bert_tiny_en_uncased", sequence_length=64)
    model = tfxfer.TextClassifier(backbone.encoder, backbone.preprocessor, 2, backbone_name=backbone.name)
    probabilities = model.predict(["a fine film", "a dull film"])  # raw texts are fine
    ```
    """

    task = classifier.TEXT
    LAYER_ARGUMENTS = ("backbone", "preprocessor")

    def __init__(self, backbone, preprocessor, num_classes=None, *, pooling="avg", dropout=0.1, multi_label=False,
                 backbone_name="custom", tasks=None, **kwargs):
        if backbone.name != layer_names.BACKBONE:
            raise ConfigError(
                f"The encoder of a TextBackbone must be named {layer_names.BACKBONE!r} so "
                f"fine_tune can freeze it. Received: name={backbone.name!r}"
            )
        pooling = canonical_pooling(pooling)
        inputs = _inputs_like(backbone.input)
        features = backbone(inputs)
        if len(features.shape) == 3:
            mask = inputs.get("padding_mask") if isinstance(inputs, dict) else None
            if pooling == "avg" and mask is None:
                raise ConfigError(
                    f"pooling={pooling!r} needs the encoder's 'padding_mask' input to skip padding. "
                    f"Use pooling='cls'. Received: inputs={sorted(inputs) if isinstance(inputs, dict) else inputs}"
                )
            features = TokenPooling(pooling, name=layer_names.POOLER)(features, mask)
        if not isinstance(preprocessor, keras.Layer):
            raise ConfigError(
                "The preprocessor of a text classifier must be a keras.Layer (a keras-hub preprocessor or a "
                "TextVectorization) so that it saves with the model. "
                f"Received: preprocessor={type(preprocessor).__name__}")
        super().__init__(inputs=inputs, features=features, backbone=backbone, num_classes=num_classes,
                         multi_label=multi_label, pooling=pooling, dropout=dropout, backbone_name=backbone_name,
                         tasks=tasks, **kwargs)
        # Set after the graph is built: it is not a layer of the graph, and Functional's build
        # would warn about its unbuilt state (it builds on its first call, or when loaded with its vocabulary).
        self.preprocessor = preprocessor

    def predict(self, x, batch_size=None, **kwargs):
        """`keras.Model.predict`, which also takes raw texts: a list or array of
        strings, or a tf.data.Dataset of batches of strings.

        Raw texts run through `preprocessor` in tf.data, in batches of
        `batch_size` (32 by default) for a list; token inputs are predicted as they are.
        """
        if isinstance(x, tf.data.Dataset) and x.element_spec == tf.TensorSpec([None], tf.string):
            x = x.map(self.preprocessor)
        elif _is_raw_text(x):
            texts = tf.data.Dataset.from_tensor_slices(tf.constant(np.asarray(x, dtype=object), tf.string))
            x = texts.batch(batch_size or _PREDICT_BATCH_SIZE).map(self.preprocessor)
            batch_size = None  # a dataset brings its own batches
        return super().predict(x, batch_size=batch_size, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "preprocessor": keras.saving.serialize_keras_object(self.preprocessor)}


def build_text_classifier(
    backbone: str | os.PathLike | TextBackbone,
    num_classes: int | None = None,
    *,
    tasks: dict | None = None,
    sequence_length: int = 128,
    pooling: str = "avg",
    dropout: float = 0.1,
    multi_label: bool = False,
    weights: str | os.PathLike | None = PRETRAINED,
) -> TextClassifier:
    """Builds a `TextClassifier` from a keras-hub preset or a `TextBackbone`.

    Args:
        backbone: str, path or TextBackbone. A keras-hub preset name (downloads),
            a local keras-hub preset folder, a local Hugging Face-format folder,
            or a `TextBackbone` (e.g. from `load_word_vector_backbone`).
        num_classes: int. Number of classes (2 gives one sigmoid unit).
        tasks: dict. Instead of `num_classes`, a head per task on the shared
            encoder: `{name: class count or tfxfer.Task}`, e.g.
            `{"product": 12, "priority": 3}` (see `tfxfer.tasks`); the
            model then outputs `{name: probabilities}` and trains on a dict of labels.
        sequence_length: int. Tokens per text for preset backbones (a
            `TextBackbone` brings its own).
        pooling: str. `"avg"` (masked mean, the default: see
            `tfxfer.defaults.TextDefaults`; `"mean"` also works) or `"cls"`
            (first token) of a transformer's token features; ignored for
            encoders that output one vector per text.
        dropout: float. Dropout rate before the Dense head.
        multi_label: bool. Independent sigmoid per class.
        weights: str, path or None. For keras-hub backbones: `"pretrained"`
            (the preset's), None (random initialisation) or a `.weights.h5`
            file of the backbone; see `load_hub_backbone`.

    Example:

    ```python
    model = tfxfer.build_text_classifier("path/to/bert_preset", num_classes=2, sequence_length=64)
    probabilities = model.predict(["a fine film"])
    ```
    """
    if isinstance(backbone, TextBackbone) and weights != PRETRAINED:
        raise ConfigError(
            "weights applies to keras-hub backbones; a TextBackbone (e.g. word vectors) brings its own. "
            f"Received: weights={weights!r}")
    if not isinstance(backbone, TextBackbone):
        _check_preset_name(backbone)
        backbone = load_hub_backbone(backbone, sequence_length=sequence_length, weights=weights)
    model = TextClassifier(backbone.encoder, backbone.preprocessor, num_classes, pooling=pooling, dropout=dropout,
                           multi_label=multi_label, backbone_name=backbone.name, tasks=tasks,
                           name=f"{_clean(backbone.name)}_text_classifier")
    logging.info("Built %s: %s, pooling %s, %d parameters.",
                 model.name, classifier.describe_head(model), model.pooling, model.count_params())
    return model


def _is_raw_text(x) -> bool:
    if isinstance(x, str):
        raise ConfigError(f"predict takes a batch of texts: wrap one text in a list. Received: x={x!r}")
    if isinstance(x, (list, tuple)):
        return bool(x) and all(isinstance(item, (str, bytes)) for item in x)
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "OUS"
    return isinstance(x, tf.Tensor) and x.dtype == tf.string


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
