"""Transformer encoders from keras-hub: a preset name, a local preset folder or a
local Hugging Face-format checkpoint folder (which keras-hub converts)."""

import os

import keras
from absl import logging

from tfxfer import layer_names
from tfxfer.text.text_backbone import TextBackbone


PRETRAINED = "pretrained"


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
    """
    import keras_hub  # Deferred: only text models pay for importing keras-hub.

    preset = os.fspath(preset)
    _check_sequence_length(sequence_length)
    if _looks_like_path(preset) and not os.path.isdir(preset):
        raise FileNotFoundError(
            "The text backbone looks like a local folder, but there is no folder at "
            f"that path. Pass a keras-hub preset folder (save_to_preset output), a "
            f"Hugging Face-format folder, or a preset name. Received: backbone={preset!r}"
        )
    weights_file = None if weights in (PRETRAINED, None) else os.fspath(weights)
    if weights_file is not None and not os.path.isfile(weights_file):
        raise FileNotFoundError(
            f"No weights file at this path. Pass {PRETRAINED!r}, None (random initialisation) or a "
            f".weights.h5 file of the same backbone. Received: weights={weights!r}")
    try:
        hub_backbone = keras_hub.models.Backbone.from_preset(preset, load_weights=weights == PRETRAINED)
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            preset, sequence_length=sequence_length)
    except Exception as error:  # keras-hub raises many kinds, from HTTP to KeyError.
        where = "the local folder" if os.path.isdir(preset) else "the preset (needs a download)"
        raise RuntimeError(
            f"Could not load the text backbone from {where}: {error}. Offline, pass a local "
            "folder instead: a keras-hub preset saved with save_to_preset, or a Hugging "
            f"Face-format checkpoint (config.json + *.safetensors + vocabulary). Received: backbone={preset!r}"
        ) from error
    if weights_file is not None:
        hub_backbone.load_weights(weights_file)
    max_length = getattr(hub_backbone, "max_sequence_length", None)
    if max_length is not None and sequence_length > max_length:
        raise ValueError(
            f"The backbone takes at most {max_length} tokens per text. Pass "
            f"sequence_length <= {max_length}. Received: sequence_length={sequence_length}"
        )
    output = hub_backbone.output
    sequence = output["sequence_output"] if isinstance(output, dict) else output
    encoder = keras.Model(hub_backbone.input, sequence, name=layer_names.BACKBONE)
    name = os.path.basename(preset.rstrip("/\\")) or type(hub_backbone).__name__
    logging.info("Loaded text backbone %s (%s, weights %s): %d layers, %d parameters, sequence length %d.",
                 name, type(hub_backbone).__name__, weights, len(encoder.layers), encoder.count_params(),
                 sequence_length)
    return TextBackbone(encoder=encoder, preprocessor=preprocessor, name=name)


def _looks_like_path(preset: str) -> bool:
    # Preset names are bare ("bert_base_en") or URIs ("kaggle://...", "hf://...").
    if "://" in preset:
        return False
    return os.sep in preset or "/" in preset or preset.startswith(".") or os.path.exists(preset)


def _check_sequence_length(sequence_length) -> None:
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 2:
        raise ValueError(
            "sequence_length must be an integer >= 2 (room for the start and end "
            f"tokens). Received: sequence_length={sequence_length!r}"
        )
