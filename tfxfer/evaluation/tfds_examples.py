"""Labelled raw examples from a TensorFlow Datasets (TFDS) split, to evaluate an export on.

Images are read as the bytes TFDS stored (`tfds.decode.SkipDecoding`, as the
training loader reads them): the encoded file, which is what a TF Serving
client sends, so they go through the export's own decoding. Texts go through
the training readers' skipping and counting (`tfxfer.data.text_files.LabelledTexts`).
The whole split is held in memory, encoded.
"""

import tensorflow_datasets as tfds
from absl import logging

from tfxfer.data import text_files, text_tfds, tfds_builders
from tfxfer.errors import ConfigError
from tfxfer.evaluation.labelled_data import IMAGE, TEXT, LabelledExamples

# The splits evaluated on when none is named, in order of preference: never train.
DEFAULT_SPLITS = ("validation", "test")
_READ_BATCH = 256
_NO_LABEL = -1  # TFDS's label of unlabelled examples (GLUE's test splits).


def read_tfds_examples(name: str, *, split: str | None = None, data_dir: str | None = None,
                       download: bool = True) -> LabelledExamples:
    """Reads a TFDS split of labelled images or texts, with class names as labels.

    Args:
        name: str. TFDS name, e.g. `"tf_flowers"` or `"glue/sst2"`.
        split: str | None. The split (any TFDS split spec, e.g. `"test[:500]"`);
            None takes `validation`, else `test`.
        data_dir: str | None. TFDS data folder; None for TFDS's default.
        download: bool. Whether to download and prepare the dataset if it is not prepared.

    Returns:
        LabelledExamples: encoded image bytes or texts. Examples labelled -1 are
        skipped and counted as `"no_label"`.

    Raises:
        ConfigError: not an image or text classification dataset, no split to evaluate
            on, or no labelled example in the split.
        UnavailableOfflineError: the dataset is not prepared and cannot be downloaded.

    Example:

    ```python
    data = read_tfds_examples("tf_flowers", split="train[90%:]")
    ```
    """
    builder = tfds_builders.prepared_builder(
        name, data_dir, download, alternative="evaluate on a folder of class folders or a .csv/.tsv file")
    input_key, label_key, kind = _keys(name, builder.info)
    split = split or _default_split(name, builder.info.splits)
    class_names = [str(class_name) for class_name in builder.info.features[label_key].names]
    decoders = {input_key: tfds.decode.SkipDecoding()} if kind == IMAGE else None
    examples = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    pairs = examples.map(lambda example: (example[input_key], example[label_key])).batch(_READ_BATCH)
    texts = text_files.LabelledTexts()  # Texts: the training readers' skipping; images: only the counts.
    images, image_labels = [], []
    for index, (value, label) in enumerate(
            (value, label) for values, labels in pairs.as_numpy_iterator() for value, label in zip(values, labels)):
        if label == _NO_LABEL or not 0 <= label < len(class_names):
            texts.skip("no_label" if label == _NO_LABEL else "unknown_label", f"example {index}")
        elif kind == IMAGE:
            images.append(bytes(value))
            image_labels.append(class_names[label])
        else:
            texts.add(value, class_names[label], f"example {index}")
    text_files.log_losses(f"TFDS {name!r} split {split!r}", texts)
    inputs, labels = (images, image_labels) if kind == IMAGE else (texts.texts, texts.labels)
    if not inputs:
        raise ConfigError(f"TFDS {name!r} split {split!r} has no labelled {kind}s to evaluate on; pass another "
                          f"--split. Received: skipped {dict(texts.skipped)}")
    logging.info("Evaluation data: %d %ss from TFDS %r split %r.", len(inputs), kind, name, split)
    return LabelledExamples(kind, list(inputs), list(labels), source=f"TFDS {name} split {split}",
                            skipped={reason: int(count) for reason, count in texts.skipped.items()})


def _default_split(name, splits):
    for split in DEFAULT_SPLITS:
        if split in splits:
            return split
    raise ConfigError(f"TFDS dataset {name!r} has no {' or '.join(DEFAULT_SPLITS)} split; name the split to "
                      f"evaluate on (--split), e.g. a part of train held out from training such as "
                      f"'train[90%:]'. Received splits: {sorted(splits)}")


def _keys(name, info):
    """(input feature, label feature, "image" or "text"): the supervised keys, else the only candidates."""
    features = dict(info.features.items())
    input_key, label_key = tfds_builders.default_feature_keys(info, lambda feature: _kind(feature) is not None)
    kind = _kind(features.get(input_key))
    if kind is None or not isinstance(features.get(label_key), tfds.features.ClassLabel):
        raise ConfigError(
            f"TFDS dataset {name!r} is not an image or text classification dataset: expected an Image or text "
            f"feature and a ClassLabel feature. Received: supervised_keys={info.supervised_keys!r}, "
            f"features={sorted(features)}")
    return input_key, label_key, kind


def _kind(feature):
    if isinstance(feature, tfds.features.Image):
        return IMAGE
    if feature is not None and text_tfds.is_text_feature(feature):
        return TEXT
    return None
