"""Models: the classifier types, their heads and backbones (image and text)."""
