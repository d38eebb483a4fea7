r"""The offline main job: real transfer learning on scikit-learn's digits, then export.

Pretrains a MobileNetV2 on digits 0-4, transfers it to digits 5-9 with a few
labels per class, prints the comparison with training from scratch, writes
metrics.json and exports a SavedModel for TF Serving.

  python recipes/digits_transfer.py --export_dir=saved_models  # into a new runs/digits/<date-time>/
  python recipes/digits_transfer.py --seed=3 --deterministic   # identical metrics when rerun here
"""

import cli
import digits_data
import digits_task
import metrics_file
import run_folder
import run_report
import training_flags
from absl import app, flags

import tfxfer
from tfxfer.export import versioning, warmup

flags.DEFINE_integer("labels_per_class", 10, "Labelled target examples per class (digits 5-9).")
flags.DEFINE_integer("seed", 0, "Seed of splits and weights.")
flags.DEFINE_bool("deterministic", False, "Deterministic TensorFlow ops: rerunning the same command on the same "
                  "machine gives identical metrics (slower).")
flags.DEFINE_string("run_dir", None, "Where metrics.json and the pretrained source model go. Default: a new "
                    "runs/<model_name>/<date-time> folder; an earlier run is never overwritten.")
flags.DEFINE_string("export_dir", "saved_models", "Base folder of exported models.")
flags.DEFINE_string("model_name", "digits", "Exports go to <export_dir>/<model_name>/<version>/.")
flags.DEFINE_integer("top_k", 3, "Signatures also return the top_k best scores and class names; 0 leaves them out.")
flags.DEFINE_string("tflite_dir", None, "If set, also write TFLite models and their validation report there.")
FLAGS = flags.FLAGS


def check_flags() -> None:
    """Usage errors of the flags, before any work: the pretraining alone takes a minute."""
    allowed = digits_data.labels_per_class_range()
    if FLAGS.labels_per_class not in allowed:
        raise app.UsageError(f"--labels_per_class must be an integer from {allowed.start} to {allowed.stop - 1}: "
                             f"the labelled examples of each digit 5-9, whose smallest class has {allowed.stop} "
                             f"images and keeps one for validation; e.g. 10. "
                             f"Received: --labels_per_class={FLAGS.labels_per_class}")
    training_flags.check_seed()
    training_flags.check_folders("run_dir", "export_dir", "tflite_dir")
    run_folder.check_unused(FLAGS.run_dir)


def main(argv):
    del argv
    check_flags()
    export_dir = versioning.model_dir(FLAGS.export_dir, FLAGS.model_name)
    versioning.check_base_dir(export_dir)  # a bad --export_dir fails now, not after training
    run_dir = run_folder.choose(FLAGS.run_dir, FLAGS.model_name)
    tfxfer.seed_everything(FLAGS.seed, deterministic=FLAGS.deterministic)
    model, report = digits_task.run_digits_transfer(
        run_dir, labels_per_class=FLAGS.labels_per_class, seed=FLAGS.seed)
    metrics = {**report.transfer_metrics, "comparison": report.comparison(), "deterministic": FLAGS.deterministic}
    metrics_path = metrics_file.write_metrics(run_dir, metrics)
    task = digits_data.load_digits_transfer(FLAGS.labels_per_class, FLAGS.seed)  # the same seeded split
    path = tfxfer.export_saved_model(model, export_dir, class_names=report.class_names,
                                     metadata={"metrics": metrics}, top_k=FLAGS.top_k or None,
                                     warmup_examples=warmup.encode_images(task.target_validation.dataset(8)))
    print(report.table())
    if FLAGS.tflite_dir:
        tflite_report = tfxfer.export_tflite(model, FLAGS.tflite_dir, train=task.target_train.dataset(32),
                                             validation=task.target_validation.dataset(32),
                                             class_names=report.class_names)
        print(f"Keras model: accuracy {tflite_report['keras']['accuracy']:.3f}")
        for variant, entry in tflite_report["tflite"].items():
            print(f"TFLite {variant:<13} {entry['size_bytes']:>9} bytes  accuracy {entry['accuracy']:.3f}")
    # Last, as the other recipes end: where the files went.
    print("\n".join([*run_report.run_folder_lines(run_dir, [metrics_path, report.source_model_path]),
                     *run_report.export_lines(path, tflite_dir=FLAGS.tflite_dir)]))


if __name__ == "__main__":
    cli.run(main)
