"""`load_tfds_text`: labelled texts from a TensorFlow Datasets (TFDS) builder, e.g.
`imdb_reviews` or `glue/sst2`.

The texts are read into memory once, through the same skipping (not UTF-8,
empty), cutting (`max_text_chars`) and counting, and the same split, length
bucketing and batching as `load_text_data`, so a TFDS dataset and a CSV file
give interchangeable `TextDatasets`.
"""

import functools

import tensorflow as tf
import tensorflow_datasets as tfds

from tfxfer.data import text_data, text_files, tfds_builders
from tfxfer.data.constants import MAX_TEXT_CHARS
from tfxfer.data.loader_args import check_loader_args
from tfxfer.data.text_data import TextDatasets
from tfxfer.errors import ConfigError

# Examples read per step while loading a split into memory.
_READ_BATCH = 1024
# TFDS marks unlabelled examples (GLUE test splits) with this label.
_NO_LABEL = -1


def load_tfds_text(
    name: str,
    *,
    batch_size: int = 32,
    data_dir: str | None = None,
    validation_split: float | None = None,
    seed: int = 0,
    text_key: str | None = None,
    label_key: str | None = None,
    bucket_by_length: bool = True,
    download: bool = True,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> TextDatasets:
    """Loads a TFDS text classification dataset as batched `(texts, labels)`.

    Training data is the builder's `train` split. Validation data is, in order
    of preference: a seeded per-class share of `train` when `validation_split`
    is one (rounded as `tfxfer.data.splits` says); else the builder's
    `validation` split (`glue/sst2`); else its `test` split, with a warning
    since that leaves no untouched test data (`imdb_reviews`); else
    `DEFAULT_VALIDATION_SPLIT` of `train`, or none with `validation_split=0`
    (all of `train` is trained on, as `load_text_data` does without
    `validation_split`). A split
    whose labels are all -1 (GLUE's `test`) is unlabelled and never used.
    Other splits (`imdb_reviews`' `unsupervised`) are ignored. Examples
    labelled -1 are skipped and counted as `"no_label"`, labels outside the
    label feature's names as `"unknown_label"`; texts are skipped, cut and
    counted like `load_text_data`'s (see `TextDatasets.skipped`, `.changed`).

    Args:
        name: str. TFDS name, optionally with config and version, e.g.
            `"imdb_reviews"` or `"glue/sst2"`.
        batch_size: int. Texts per batch.
        data_dir: str | None. TFDS data folder; None uses the TFDS default
            (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`).
        validation_split: float | None. Share of `train` to hold out for
            validation instead of using the builder's validation/test split;
            0 holds out none (no validation data when the builder has no
            labelled validation/test split); None holds out
            `DEFAULT_VALIDATION_SPLIT` only then.
        seed: int. Seed of the held-out share and the per-epoch shuffle.
        text_key: str | None. The text feature; None takes it from the
            builder's supervised keys, or its only text feature.
        label_key: str | None. The label feature (a `ClassLabel`, whose
            `names` become `class_names`); None as for `text_key`.
        bucket_by_length: bool. Batch training texts of similar length together.
        download: bool. Whether to download and prepare the dataset when it is
            not already prepared in `data_dir`.
        max_text_chars: int. Longer texts are cut to this many characters.

    Example:

    ```python
    data = tfxfer.load_tfds_text("glue/sst2", batch_size=32)
    model = tfxfer.build_text_classifier("bert_tiny_en_uncased", len(data.class_names))
    tokenized = data.map_inputs(model.preprocessor)
    ```
    """
    check_loader_args(batch_size=batch_size, max_text_chars=max_text_chars,
                      validation_split=None if tfds_builders.holds_out_none(validation_split) else validation_split)
    builder = tfds_builders.prepared_builder(
        name, data_dir, download, alternative="use load_text_data with a .csv/.tsv file or a folder of texts")
    text_key, label_key = _text_and_label_keys(name, builder.info, text_key, label_key)
    class_names = [str(class_name) for class_name in builder.info.features[label_key].names]
    # Cached: a split read to see whether it is labelled is the one validated on.
    read = functools.cache(functools.partial(_read_split, builder, text_key=text_key, label_key=label_key,
                                             class_names=class_names, max_chars=max_text_chars))
    validation_name = tfds_builders.validation_split_name(
        builder, name, validation_split, is_labelled=lambda split: bool(read(split).texts))
    train = read("train")
    validation = None if validation_name is None else read(validation_name)
    validation_split = tfds_builders.held_out_share(validation_split, validation_name)
    validation_source = tfds_builders.validation_source(validation_name, validation_split)
    source = f"TFDS {name!r} (train='train', validation={validation_source})"
    return text_data.make_text_datasets(
        train, validation=validation, class_names=class_names, batch_size=batch_size,
        validation_split=validation_split, seed=seed, bucket_by_length=bucket_by_length,
        source_format="tfds", source=source, missing_validation=tfds_builders.NO_VALIDATION_SPLIT,
        skip_reasons=("undecodable", "empty", "no_label"))


def is_text_feature(feature) -> bool:
    """A TFDS feature holding one text per example (Text, or a scalar string Tensor)."""
    return isinstance(feature, tfds.features.Text) or (
        isinstance(feature, tfds.features.Tensor) and feature.tf_dtype == tf.string and not feature.shape)


def _text_and_label_keys(
    name: str, info: tfds.core.DatasetInfo, text_key: str | None, label_key: str | None
) -> tuple[str, str]:
    """The (text, label) feature names: given, else supervised keys, else the only candidates."""
    features = dict(info.features.items())
    default_text, default_label = tfds_builders.default_feature_keys(info, is_text_feature)
    text_key = text_key or default_text
    label_key = label_key or default_label
    if not (text_key in features and is_text_feature(features[text_key])
            and label_key in features and isinstance(features[label_key], tfds.features.ClassLabel)):
        raise ConfigError(
            f"TFDS dataset {name!r} needs a text feature and a ClassLabel feature to classify texts. "
            "Pass text_key= and label_key= naming them. "
            f"Received: text_key={text_key!r}, label_key={label_key!r}, features={features}"
        )
    return text_key, label_key


def _read_split(
    builder: tfds.core.DatasetBuilder, split: str, text_key: str, label_key: str, class_names: list[str],
    max_chars: int = MAX_TEXT_CHARS,
) -> text_files.LabelledTexts:
    """Reads a split into memory, skipping, cutting and counting texts like the file readers."""
    examples = builder.as_dataset(split=split, shuffle_files=False)
    pairs = examples.map(lambda example: (example[text_key], example[label_key])).batch(_READ_BATCH)
    result = text_files.LabelledTexts(max_chars=max_chars)
    examples = ((raw, label) for texts, labels in pairs.as_numpy_iterator() for raw, label in zip(texts, labels))
    for index, (raw, label) in enumerate(examples):
        if label == _NO_LABEL:
            result.skip("no_label", f"example {index}")
        elif not 0 <= label < len(class_names):
            result.skip("unknown_label", f"example {index} (label {label})")
        else:
            result.add(raw, class_names[label], f"example {index}")
    text_files.log_losses(f"TFDS {builder.name!r} split {split!r}", result)
    return result
