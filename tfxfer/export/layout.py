"""The names a tfxfer export is read by: its files, and its signatures and their inputs.

The exporters write them and the readers (`tfxfer.prediction`, TF Serving
clients, the tests) look for them. Plain constants, no TensorFlow or Keras, so
that a reader imports them without loading the model code that writes them.
The class names file's own name is `tfxfer.data.constants.LABELS_FILE`; a
multi-task model has one per task instead (`task_labels_file`).
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

# Signature outputs of a one-head model; a multi-task model's are these per task, see `task_output`.
PROBABILITIES = "probabilities"
CLASS_IDS = "class_ids"
CLASS_NAMES = "class_names"
TOP_K_SCORES = "top_k_scores"
TOP_K_CLASS_NAMES = "top_k_class_names"


def task_output(output: str, task: str) -> str:
    """A multi-task model's output `output` for one task, e.g. `probabilities_species`."""
    return f"{output}_{task}"


def task_labels_file(task: str) -> str:
    """The class names file of one task of a multi-task model, in `assets/`: `labels_<task>.txt`."""
    return f"labels_{task}.txt"
