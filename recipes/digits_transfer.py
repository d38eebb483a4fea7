r"""The offline main job: real transfer learning on scikit-learn's digits, then export.

Pretrains a MobileNetV2 on digits 0-4, transfers it to digits 5-9 with a few
labels per class, prints the comparison with training from scratch, writes
metrics.json and exports a SavedModel for TF Serving.

  python recipes/digits_transfer.py --run_dir=runs/digits --export_dir=saved_models
"""

import os

import keras
from absl import app, flags

import tfxfer
from tfxfer import digits_transfer

flags.DEFINE_integer("labels_per_class", 10, "Labelled target examples per class (digits 5-9).")
flags.DEFINE_integer("seed", 0, "Seed of splits and weights.")
flags.DEFINE_string("run_dir", "runs/digits", "Where metrics.json and the pretrained source model go.")
flags.DEFINE_string("export_dir", "saved_models", "Base folder of exported models.")
flags.DEFINE_string("model_name", "digits", "Exports go to <export_dir>/<model_name>/<version>/.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    model, report = digits_transfer.run_digits_transfer(
        FLAGS.run_dir, labels_per_class=FLAGS.labels_per_class, seed=FLAGS.seed)
    metrics = {**report.transfer_metrics, "comparison": report.comparison()}
    tfxfer.write_metrics(FLAGS.run_dir, metrics)
    path = tfxfer.export_saved_model(model, os.path.join(FLAGS.export_dir, FLAGS.model_name),
                                     class_names=report.class_names, metadata={"metrics": metrics})
    print(report.table())
    print(f"Exported SavedModel: {path}")


if __name__ == "__main__":
    app.run(main)
