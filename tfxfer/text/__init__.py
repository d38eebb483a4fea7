"""Text classifiers: keras-hub transformers or pretrained word vectors, on the shared engine."""

from tfxfer.text.hub_backbones import load_hub_backbone
from tfxfer.text.pooling import TokenPooling
from tfxfer.text.text_backbone import TextBackbone
from tfxfer.data.token_batches import preprocess_dataset
from tfxfer.text.text_classifier import TextClassifier, build_text_classifier
from tfxfer.text.word_vectors import build_vocabulary, load_word_vector_backbone, read_word_vectors

__all__ = [
    "TextBackbone",
    "TextClassifier",
    "TokenPooling",
    "build_text_classifier",
    "build_vocabulary",
    "load_hub_backbone",
    "load_word_vector_backbone",
    "preprocess_dataset",
    "read_word_vectors",
]
