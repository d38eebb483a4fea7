r"""Candidate defaults of `choose_defaults.py`, checked on the offline digits task.

A second data set and backbone for choices made on the photos (benchmarks/README.md, "How the
defaults were chosen"): each seed pretrains the digits job's small MobileNetV2 on digits 0-4
(`recipes/digits_task.py`), then fine-tunes it on `--labels_per_class` labelled digits of
each of 5-9 with `tfxfer.FineTuneConfig()` and one change per variant (to the config or
to the head), and scores the other digits 5-9 (846 with 10 labels a class). Only that
change differs between variants; the source model, the split and the seed are shared.
The digits job's own settings (`digits_task.transfer_config()`) play no part.

  python benchmarks/digits_defaults.py --seeds=0,1,2,3,4 --variants=clean,head_rate --epochs=10 --output=runs/digits_defaults.json
"""

import os
import sys
import tempfile

import candidates
import results as results_lib
from absl import app, flags

import tfxfer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes"))
import digits_data  # noqa: E402  (the recipes' folder is not a package)
import digits_task  # noqa: E402

flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds of the splits, the source models and training.")
flags.DEFINE_list("variants", ["clean", "head_rate"], f"Which variants to run: {', '.join(candidates.NAMES)}.")
flags.DEFINE_integer("labels_per_class", 10, "Labelled target digits per class.")
flags.DEFINE_integer("epochs", None, "Phase-1 epochs of every variant; default: FineTuneConfig's.")
flags.DEFINE_float("dropout", None, candidates.DROPOUT_FLAG_HELP)
flags.DEFINE_float("fine_tune_interpolation", None, candidates.INTERPOLATION_FLAG_HELP)
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS


class DigitsRuns:
    """Runs variants of one seed after another on that seed's task and source model, built once."""

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.seed = self.task = self.source_path = None

    def run(self, seed: int, variant: str) -> dict:
        if seed != self.seed:
            self.seed, self.task = seed, digits_data.load_digits_transfer(FLAGS.labels_per_class, seed)
            # The digits job's pretraining (its epochs and batch size), in a folder of this seed's.
            self.source_path, _ = digits_task.pretrain_source(self.task, os.path.join(self.work_dir, str(seed)),
                                                              seed=seed)
        model = digits_task.build_target_classifier(self.source_path, seed=seed,
                                                    **candidates.build_changes(variant, FLAGS.dropout))
        # Batches of 8, as the digits job transfers.
        result = tfxfer.fine_tune(model, self.task.target_train.dataset(8, shuffle_seed=seed),
                                  self.task.target_validation.dataset(8),
                                  config=candidates.config(candidates.CONFIG_CHANGES.get(variant, {}), FLAGS.epochs,
                                                           FLAGS.fine_tune_interpolation),
                                  verbose=0, **candidates.fit_changes(variant))
        return {"seed": seed, "variant": variant, "validation_size": len(self.task.target_validation.labels),
                **results_lib.fine_tune_figures(result)}


def main(argv):
    del argv
    candidates.exit_on_unknown(FLAGS.variants, candidates.NAMES)
    with tempfile.TemporaryDirectory() as work_dir:
        runs = DigitsRuns(work_dir)
        results_lib.compare_variants(runs.run, list(map(int, FLAGS.seeds)), FLAGS.variants, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
