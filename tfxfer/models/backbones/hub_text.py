"""Transformer encoders from keras-hub: a preset name, a local preset folder or a
local Hugging Face-format checkpoint folder (which keras-hub converts)."""

import os

import keras
from absl import logging

from tfxfer.errors import (
    ConfigError,
    MissingFileError,
    NotAFolderError,
    UnavailableOfflineError,
)
from tfxfer.models import layer_names
from tfxfer.models.backbones.registry import PRETRAINED, load_weights_file
from tfxfer.models.backbones.text_backbone import TextBackbone


class TextBackboneUnavailableError(UnavailableOfflineError):
    """keras-hub could not load the text backbone: a preset that needs a download
    (typically: no internet), or a local folder that is not a keras-hub or
    Hugging Face checkpoint."""


def load_hub_backbone(preset: str | os.PathLike, *, sequence_length: int = 128,
                      weights: str | os.PathLike | None = PRETRAINED) -> TextBackbone:
    """Loads a keras-hub encoder and its classifier preprocessor.

    The returned encoder is a Functional model named `backbone` that reuses the
    keras-hub backbone's layers up to its token sequence output, so its
    `.layers` list the embeddings and then `transformer_layer_0` ...
    `transformer_layer_{L-1}` in order: `fine_tune_at="transformer_layer_8"` or
    a fraction unfreezes the top transformer layers. (keras-hub's pooled output
    is left out: an unused layer would only get no gradients.)

    Args:
        preset: str or path. A keras-hub preset name (e.g. `"bert_tiny_en_uncased"`,
            downloaded), a folder written by `save_to_preset`, or a Hugging
            Face-format folder (`config.json`, `*.safetensors`, vocabulary).
        sequence_length: int. Tokens per text after packing (longer texts are
            truncated); at most the backbone's `max_sequence_length`.
        weights: str, path or None. `"pretrained"`: the preset's weights; None:
            random initialisation (the preset's architecture only); a path: a
            `.weights.h5` file saved from the same keras-hub backbone
            (`backbone.save_weights`), e.g. after domain-adaptive pretraining.

    Returns:
        A `TextBackbone`: `encoder` and `preprocessor`, for `build_text_classifier`.

    Example:

    ```python
    backbone = tfxfer.load_hub_backbone("bert_tiny_en_uncased", sequence_length=64)
    inputs = backbone.preprocessor(tf.constant(["a fine film"]))  # token_ids, segment_ids, padding_mask
    features = backbone.encoder(inputs)  # (1, 64, hidden size)
    model = tfxfer.build_text_classifier(backbone, num_classes=2)
    ```
    """
    import keras_hub  # Deferred: only text models pay for importing keras-hub.

    preset = os.fspath(preset)
    _check_sequence_length(sequence_length)
    if _looks_like_path(preset) and not os.path.isdir(preset):
        expected = ("Pass a keras-hub preset folder (save_to_preset output), a Hugging Face-format folder, "
                    f"or a preset name. Received: backbone={preset!r}")
        if os.path.exists(preset):
            raise NotAFolderError(f"The text backbone must be a folder, but this path is a file. {expected}")
        raise MissingFileError(
            f"The text backbone looks like a local folder, but there is no folder at that path. {expected}")
    weights_file = None if weights in (PRETRAINED, None) else os.fspath(weights)
    if weights_file is not None and not os.path.isfile(weights_file):
        raise MissingFileError(
            f"No weights file at this path. Pass {PRETRAINED!r}, None (random initialisation) or a "
            f".weights.h5 file of the same backbone (recipes: --weights=pretrained, none or "
            f"FILE.weights.h5; --student_weights for a student). Received: weights={weights!r}")
    try:
        hub_backbone = keras_hub.models.Backbone.from_preset(preset, load_weights=weights == PRETRAINED)
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            preset, sequence_length=sequence_length)
    except Exception as error:  # keras-hub raises many kinds, from HTTP to KeyError.
        where = "the local folder" if os.path.isdir(preset) else "the preset (needs a download)"
        raise TextBackboneUnavailableError(
            f"Could not load the text backbone from {where}: {error}. Offline, pass a local "
            "folder instead: a keras-hub preset saved with save_to_preset, or a Hugging "
            f"Face-format checkpoint (config.json + *.safetensors + vocabulary). Received: backbone={preset!r}"
        ) from error
    if weights_file is not None:
        load_weights_file(hub_backbone, weights_file, lambda error: _weights_mismatch(weights_file, preset, error))
    max_length = getattr(hub_backbone, "max_sequence_length", None)
    if max_length is not None and sequence_length > max_length:
        raise ConfigError(
            f"The backbone takes at most {max_length} tokens per text. Pass "
            f"sequence_length <= {max_length} (recipes: --sequence_length). "
            f"Received: sequence_length={sequence_length}"
        )
    output = hub_backbone.output
    sequence = output["sequence_output"] if isinstance(output, dict) else output
    encoder = keras.Model(hub_backbone.input, sequence, name=layer_names.BACKBONE)
    name = os.path.basename(preset.rstrip("/\\")) or type(hub_backbone).__name__
    logging.info("Loaded text backbone %s (%s, weights %s): %d layers, %d parameters, sequence length %d.",
                 name, type(hub_backbone).__name__, weights, len(encoder.layers), encoder.count_params(),
                 sequence_length)
    return TextBackbone(encoder=encoder, preprocessor=preprocessor, name=name)


def _weights_mismatch(weights_file: str, preset: str, error: Exception) -> ConfigError:
    # Keras' own message runs to pages, so only its first line is kept.
    reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return ConfigError(
        f"The weights file does not fit the text backbone {preset!r}: it was saved from another "
        "architecture or size, or is not a Keras weights file. Pass a .weights.h5 file saved with "
        "save_weights() from this same backbone, or weights='pretrained' or None (recipes: "
        "--weights=pretrained or none; --student_weights for a student). "
        f"Keras reported: {reason[:300]} Received: weights={weights_file!r}"
    )


def _looks_like_path(preset: str) -> bool:
    # Preset names are bare ("bert_base_en") or URIs ("kaggle://...", "hf://...").
    if "://" in preset:
        return False
    return os.sep in preset or "/" in preset or preset.startswith(".") or os.path.exists(preset)


def _check_sequence_length(sequence_length) -> None:
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 2:
        raise ConfigError(
            "sequence_length must be an integer >= 2 (room for the start and end "
            f"tokens). Received: sequence_length={sequence_length!r}"
        )
