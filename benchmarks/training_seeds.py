r"""Other training seeds on the same splits, and what averaging their models gives.

`choose_defaults.py` seeds each run's training (the head's initial weights, phase 2's
augmentation) with the split's own seed, and chose the image defaults on those runs. This
script trains tfxfer's defaults on the same three-way splits (`three_way_split.py`: 20 % of
hymenoptera/train scored, 20 % of the rest for early stopping, the model trains on the other
157 photos) once per training seed: the split's seed plus each `--training_seed_offsets`
(0 is `choose_defaults.py --variants=clean --early_stopping_split=0.2`'s run, photo for photo).
The data and its order stay the split's. Each split reports:
- `member_<offset>`: the scored photos that run gets right;
- `ensemble_<n>`: the photos an ensemble of the first n runs gets right (their
  probabilities averaged), for every n from 2 to the number of runs;
- `mean_member`: the runs' mean, which is what an ensemble must beat, since any one seed's
  run is as likely as another's.

The 153 validation images are never used.

  python benchmarks/training_seeds.py --shared_dir=../shared --seeds=0,1,2,3,4 --output=runs/training_seeds.json
"""

import os
import tempfile

import image_pair
import keras
import model_scores
import numpy as np
import results as results_lib
import three_way_split
from absl import app, flags, logging

import tfxfer

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", [str(seed) for seed in range(20)], "Seeds of the three-way splits.")
flags.DEFINE_list("training_seed_offsets", ["0", "1000", "2000"],
                  "Each run's training seed is the split's seed plus one of these.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS

EARLY_STOPPING_SPLIT = 0.2  # the choose_defaults.py runs that chose the defaults


def score_split(data_dir: str, weights: str, seed: int, offsets: list[int]) -> dict:
    """One split's runs, one per training seed, and their ensembles, in photos right of the scored ones."""
    image_size = tfxfer.default_image_size("mobilenet_v2")
    load = dict(image_size=(image_size, image_size), seed=seed)
    with tempfile.TemporaryDirectory() as links:
        fit_dir, scoring_dir = three_way_split.make(f"{data_dir}/train", links, seed,
                                                    early_stopping_split=EARLY_STOPPING_SPLIT)
        # Held in memory once: the loader reshuffles on every pass, and the runs' probabilities are averaged by row.
        images, labels = (np.concatenate(part) for part in zip(*tfxfer.load_image_folders(
            scoring_dir, **load).train.as_numpy_iterator()))
        probabilities = [_trained_probabilities(fit_dir, weights, seed + offset, image_size, images, load)
                         for offset in offsets]
    return {"seed": seed, **model_scores.photos_right(probabilities, labels, offsets)}


def _trained_probabilities(fit_dir: str, weights: str, training_seed: int, image_size: int, images: np.ndarray,
                           load: dict) -> np.ndarray:
    """The scored `images`' probabilities from the defaults trained on `fit_dir` (its photos shuffled by `load`'s
    seed, the split's; the head's initial weights and the augmentation by `training_seed`)."""
    keras.utils.set_random_seed(training_seed)
    data = tfxfer.load_image_folders(fit_dir, validation_split=None, **load)  # fit_dir/val: early stopping
    model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names), weights=weights,
                                          image_size=image_size, alpha=image_pair.ALPHA, seed=training_seed,
                                          augmentation=True)
    tfxfer.fine_tune(model, data.train, data.validation, class_counts=data.train_class_counts, verbose=0)
    return model.predict(images, batch_size=32, verbose=0)


def main(argv):
    del argv
    data_dir, weights = image_pair.assets(FLAGS.shared_dir)
    offsets = [int(offset) for offset in FLAGS.training_seed_offsets]
    runs = []
    for seed in FLAGS.seeds:
        runs.append(score_split(data_dir, weights, int(seed), offsets))
        logging.info("%s", runs[-1])
    results_lib.report({**results_lib.summarise(runs), "runs": runs}, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
