r"""Hyperparameter search on real images: the tuned model against tfxfer's defaults, side by side.

For each seed, on ../shared/data/hymenoptera with the shared MobileNetV2-0.35 weights:
- **defaults**: `fine_tune` with its defaults on `train/`, scored on the 153 `val/` images;
- **tuned**: `tfxfer.tune` first (its trials scored on a seeded 20 % held out of
  `train/`, never on `val/`), then `fine_tune` with the best settings on all of
  `train/`, scored once on the same `val/` images. `seconds` counts the search
  and the final training; `search_seconds` the search alone.

  python benchmarks/tune_image.py --shared_dir=../shared --tuner=bayesian --max_trials=12 --seeds=0,1,2 \
      --output=runs/tune_image.json
"""

import os
import time

import image_pair
import results as results_lib
from absl import app, flags

import tfxfer

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", ["0"], "Seeds of the search, the held-out split and training.")
flags.DEFINE_list("variants", ["defaults", "tuned"], "Which of defaults, tuned to run.")
flags.DEFINE_enum("tuner", "bayesian", ["random", "bayesian", "hyperband"], "KerasTuner's search.")
flags.DEFINE_integer("max_trials", 12, "Trials of the search, besides scoring the defaults.")
flags.DEFINE_integer("tune_epochs", 3, "Phase-2 epochs of a trial.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS


def run_variant(data_dir: str, weights: str, seed: int, variant: str) -> dict:
    tfxfer.seed_everything(seed)
    start = time.perf_counter()
    data = tfxfer.load_image_folders(data_dir, image_size=(image_pair.IMAGE_SIZE,) * 2, seed=seed)
    model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names), weights=weights,
                                          image_size=image_pair.IMAGE_SIZE, alpha=image_pair.ALPHA, seed=seed)
    config, search = tfxfer.FineTuneConfig(), None
    if variant == "tuned":
        search = tfxfer.tune(model, data.train, config=config, tuner=FLAGS.tuner, max_trials=FLAGS.max_trials,
                             tune_epochs=FLAGS.tune_epochs, seed=seed, class_counts=data.train_class_counts)
        config = search.config
    result = tfxfer.fine_tune(model, data.train, data.validation, config=config,
                              class_counts=data.train_class_counts, verbose=0)
    run = {"seed": seed, "variant": variant, "seconds": time.perf_counter() - start,
           **results_lib.fine_tune_figures(result)}
    if search is not None:
        run.update(search_seconds=search.seconds, trials=len(search.trials), best_trial=search.best_trial["trial"],
                   holdout_val_accuracy=search.best_trial["val_accuracy"], best_settings=search.settings(),
                   search_trials=search.trials)
    return run


def main(argv):
    del argv
    image_pair.compare_variants(run_variant, FLAGS.shared_dir, FLAGS.seeds, FLAGS.variants, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
