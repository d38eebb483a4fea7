"""Pretrained backbones: the `keras.applications` registry, your own models, and their preprocessing."""

from tfxfer.backbones.custom import backbone_from_model
from tfxfer.backbones.image_preprocessing import BackbonePreprocessing
from tfxfer.backbones.registry import (
    BackboneSpec,
    ImageNetWeightsUnavailableError,
    create_backbone,
    get_backbone_spec,
    list_backbones,
)

__all__ = [
    "BackbonePreprocessing",
    "BackboneSpec",
    "ImageNetWeightsUnavailableError",
    "backbone_from_model",
    "create_backbone",
    "get_backbone_spec",
    "list_backbones",
]
