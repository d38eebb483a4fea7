r"""Which probe the benchmarks measure against: logistic regression on standardised features, or on them as they are.

`linear_probe.linear_probe` fits scikit-learn's logistic regression at its default L2 penalty, which on
unstandardised features weighs each one by its scale. Both ways are scored here only on 80/20 splits of
training data (seeded, stratified), never on a benchmark's validation set:
- **photos**: hymenoptera/train's MobileNetV2-0.35 features, average-pooled, at 224x224 and at 320x320 (the
  image probe's two sizes in `run.py`), on the same 49 scored photos per seed as `probe_inputs.py`;
- **texts**: the text recipe's training texts (its 90/10 split at each of `--text_seeds`), mean-pooled by
  MiniLM as `text_pair.run_probe` does, three splits of them per seed (`--text_splits`).
Each data set's summary holds the examples the two probes got right over its splits, and the splits the
standardised one was ahead and behind on.

  python benchmarks/probe_scaling.py --shared_dir=../shared --output=runs/probe_scaling.json
"""

import os

import image_pair
import linear_probe
import results as results_lib
import shared_assets
import text_pair
import three_way_split
from absl import app, flags

import tfxfer
from tfxfer.data.splits import split_per_class

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", [str(seed) for seed in range(80)], "Seeds of the photos' 80/20 splits.")
flags.DEFINE_list("text_seeds", ["0", "1"], "Seeds of the text recipe's 90/10 split.")
flags.DEFINE_integer("text_splits", 3, "80/20 splits of each text seed's training texts.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS

SCORED_SHARE = 0.2
IMAGE_SIZES = (image_pair.IMAGE_SIZE, tfxfer.default_image_size("mobilenet_v2"))


def main(argv):
    del argv
    data_dir, weights = image_pair.assets(FLAGS.shared_dir)
    _, paths, labels = three_way_split.list_photos(f"{data_dir}/train")
    photo_splits = [split_per_class(labels, SCORED_SHARE, int(seed)) for seed in FLAGS.seeds]
    results = {}
    for size in IMAGE_SIZES:
        features = image_pair.average_pooled_features(image_pair.photos(paths, size), weights)
        results[f"photos_{size}"] = linear_probe.compare_scalings(features, labels, photo_splits)
    text_features = text_pair.mean_pooled_features(shared_assets.minilm_folder())
    text_dir = os.path.join(FLAGS.shared_dir, text_pair.DATA)
    for seed in map(int, FLAGS.text_seeds):
        (texts, text_labels), _ = text_pair.split_texts(text_dir, seed)
        splits = [split_per_class(text_labels, SCORED_SHARE, seed * FLAGS.text_splits + index)
                  for index in range(FLAGS.text_splits)]
        results[f"texts_seed_{seed}"] = linear_probe.compare_scalings(text_features(texts), text_labels, splits)
    results_lib.report(results, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
