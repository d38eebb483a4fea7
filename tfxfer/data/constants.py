"""Names and defaults every data source shares, defined once.

Standard library only, so that code which must not load Keras or TensorFlow
Datasets (`tfxfer.prediction`, the exporters) can read them too.
"""

# The share of `train` held out when a TFDS dataset has no validation (or
# labelled test) split of its own, for images and texts alike.
DEFAULT_VALIDATION_SPLIT = 0.1

# File name endings (any case) that count as images in class folders and in
# folders given to `recipes/predict.py`: what `image_ops.decode_image` decodes.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")

# The class names, one per line in class-id order, beside an export.
LABELS_FILE = "labels.txt"

# Far more than any text classifier reads (512 tokens are about 2,500 characters
# of English; 8,192 about 40,000), yet it bounds what one text costs: a 50 MB
# line would otherwise be held, length-bucketed and tokenized whole every epoch.
MAX_TEXT_CHARS = 100_000
