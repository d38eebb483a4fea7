"""One fake of a prepared TFDS dataset, for the image and text TFDS loader tests.

`fake_tfds` registers a real builder's metadata (its features, class names and
supervised keys) with split sizes of the test's choosing, and serves rows the
test gives through `tfds.testing.mock_data`: no download, no network.
"""

import contextlib
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds


# Runs a recipe (argv[1]) inside `fake_tfds`: no download, no network.
_RECIPE_WRAPPER = """
import os, runpy, sys
sys.path.insert(0, {tests!r})
from _tfds_fake import fake_tfds, {to_row}

recipe = sys.argv.pop(1)
sys.argv[0] = recipe  # as `python <recipe>` runs it: its flags are the key flags of that script
sys.path.insert(0, os.path.dirname(recipe))
with fake_tfds({data_dir!r}, {name!r}, {splits!r}, {to_row}):
    runpy.run_path(recipe, run_name="__main__")
"""


def write_recipe_wrapper(path, data_dir, name, splits, to_row):
    """Writes to `path` a script that runs the recipe its first argument names inside `fake_tfds(data_dir, name,
    splits, to_row)`, where `to_row` is the name of one of this module's row functions; returns `path`."""
    path.write_text(_RECIPE_WRAPPER.format(tests=os.path.dirname(os.path.abspath(__file__)), data_dir=str(data_dir),
                                           name=name, splits=splits, to_row=to_row))
    return path


@contextlib.contextmanager
def fake_tfds(data_dir, name, splits, to_row):
    """Fakes TFDS dataset `name` as prepared in `data_dir`, holding `splits`.

    Split specs with slices (`train[:5]+train[8:]`) are honoured; an Image
    feature comes out as PNG bytes when the reader skips its decoding
    (`tfds.decode.SkipDecoding`, as the image loader does), as pixels otherwise.

    Args:
        data_dir: str | Path. The TFDS data folder the loader is given.
        name: str. A registered TFDS name, e.g. "tf_flowers" or "glue/sst2".
        splits: dict[str, Sequence]. The values of each split's examples.
        to_row: callable (info, position, value) -> dict of feature values:
            example `position` of a split, from its value (`indexed_image`,
            `labelled_text`).

    Yields:
        list[str]: the split specs read so far, in order.
    """
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=split, shard_lengths=[len(values)], num_bytes=0, filename_template=None)
        for split, values in splits.items()]))
    os.makedirs(builder.data_dir, exist_ok=True)
    builder.info.write_to_directory(builder.data_dir)  # The metadata mock_data reads.
    rows = {split: [to_row(builder.info, i, value) for i, value in enumerate(values)]
            for split, values in splits.items()}
    reads = []

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        del read_config, shuffle_files
        reads.append(split)
        instructions = tfds.core.ReadInstruction.from_spec(split).to_absolute(dict(self.info.splits.items()))
        selected = [row for i in instructions for row in rows[i.splitname][i.from_:i.to]]
        return _dataset(self.info.features, selected, encoded=set(decoders or ()))

    with tfds.testing.mock_data(as_dataset_fn=as_dataset, data_dir=str(data_dir)):
        yield reads


def _dataset(features, rows, encoded):
    """`rows` as a tf.data.Dataset of feature dicts; Image features in `encoded` as PNG bytes."""
    columns = {key: np.asarray([row[key] for row in rows], dtype=features[key].np_dtype) for key in rows[0]}
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    images = [key for key in columns if key in encoded and isinstance(features[key], tfds.features.Image)]
    if not images:
        return dataset
    return dataset.map(lambda example: {**example, **{key: tf.io.encode_png(example[key]) for key in images}})


def indexed_image(info, position, index):
    """Example `index` of an image dataset: a solid image of value `index`, labelled `index % classes`,
    so a test can tell which examples a loader's split really holds."""
    del position
    image_key, label_key = info.supervised_keys
    shape = [dim or 7 for dim in info.features[image_key].shape]
    return {image_key: np.full(shape, index, np.uint8), label_key: index % info.features[label_key].num_classes}


def labelled_text(info, position, pair):
    """A `(text bytes, label)` pair as a text dataset's example; an `idx` feature (GLUE) is its position."""
    features = info.features
    text_key = next(key for key in features.keys() if isinstance(features[key], tfds.features.Text))
    label_key = next(key for key in features.keys() if isinstance(features[key], tfds.features.ClassLabel))
    row = {text_key: pair[0], label_key: pair[1]}
    if "idx" in features.keys():
        row["idx"] = position
    return row
