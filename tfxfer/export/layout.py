"""The names a tfxfer export is read by: its files, and its signatures and their inputs.

The exporters write them and the readers (`tfxfer.prediction`, TF Serving
clients, the tests) look for them. Plain constants, no TensorFlow or Keras, so
that a reader imports them without loading the model code that writes them.
The class names file's own name is `tfxfer.data.constants.LABELS_FILE`.
"""

# A SavedModel folder: TensorFlow's own names.
SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_DIR = "assets"  # files the graph reads (the class names)
# TF Serving's folder for files beside the model (warmup requests), where tfxfer's metadata also goes.
EXTRA_ASSETS_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "tfxfer_metadata.json"

# Signatures, and the inputs each takes.
SERVING_DEFAULT = "serving_default"  # images: IMAGE_BYTES_INPUT; texts: TEXTS_INPUT
SERVING_IMAGES = "serving_images"  # IMAGES_INPUT
IMAGE_BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
TEXTS_INPUT = "texts"
