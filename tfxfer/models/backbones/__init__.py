"""Pretrained backbones, image and text: the `keras.applications` registry, your own
image model, keras-hub text encoders and word vectors, and image preprocessing."""

from tfxfer.models.backbones.custom import backbone_from_model
from tfxfer.models.backbones.hub_text import (
    TextBackboneUnavailableError,
    load_hub_backbone,
)
from tfxfer.models.backbones.image_preprocessing import BackbonePreprocessing
from tfxfer.models.backbones.registry import (
    PRETRAINED,
    BackboneSpec,
    ImageNetWeightsUnavailableError,
    create_backbone,
    get_backbone_spec,
    list_backbones,
)
from tfxfer.models.backbones.text_backbone import TextBackbone
from tfxfer.models.backbones.word_vectors import (
    build_vocabulary,
    load_word_vector_backbone,
    read_word_vectors,
)

__all__ = [
    "PRETRAINED",
    "BackbonePreprocessing",
    "BackboneSpec",
    "ImageNetWeightsUnavailableError",
    "TextBackbone",
    "TextBackboneUnavailableError",
    "backbone_from_model",
    "build_vocabulary",
    "create_backbone",
    "get_backbone_spec",
    "list_backbones",
    "load_hub_backbone",
    "load_word_vector_backbone",
    "read_word_vectors",
]
