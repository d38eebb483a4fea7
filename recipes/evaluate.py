r"""Evaluates an exported SavedModel on labelled data, through its serving signature (what TF Serving runs).

Prints per-class precision, recall, F1 and support, accuracy, top-k accuracy,
the most confused classes (binary models: ROC AUC and PR AUC; multi-label
models: per-class scores at --threshold) and the exact copies among the inputs
(with --training_data, also those of training examples: scored as unseen, they
overstate the model), and writes the whole report, confusion matrix included,
as JSON to --output; by default beside the model it scores, to evaluation/metrics.json
in the evaluated version folder (e.g. saved_models/flowers/3/evaluation/metrics.json).

  python recipes/evaluate.py --model_dir=saved_models/flowers --data_dir=flowers   # flowers/val/ if it has one
  python recipes/evaluate.py --model_dir=saved_models/reviews --data_dir=test.csv --text_column=review
  python recipes/evaluate.py --model_dir=saved_models/tickets --data_dir=tickets.csv --label_separator="|"
  python recipes/evaluate.py --model_dir=saved_models/flowers --tfds_name=tf_flowers --split="train[90%:]"
  python recipes/evaluate.py --model_dir=saved_models/flowers --data_dir=test_photos --training_data=flowers

The model's input kind (images or texts) and classes come from the export; the
data's classes are matched to them by name (the data may hold only some).
--model_dir is a version folder, or a model's base folder (its latest version).

A multi-task export is evaluated on a .csv/.tsv file with a label column per task
(the column `Skin Type` labels task `skin_type`; an empty cell: no label for that
task; a task without a column is not scored, and a warning names it), and gets a
report per task; the inputs are in --text_column, or for images in --image_column
(paths relative to the file's folder):

  python recipes/evaluate.py --model_dir=saved_models/pets --data_dir=pets_val.csv --image_column=file
"""

import json
import os

import cli
import tensorflow as tf
from absl import app, flags

from tfxfer import prediction
from tfxfer.evaluation import exported_model, labelled_data, report_text, tfds_examples
from tfxfer.export import versioning

flags.DEFINE_string("model_dir", None, "SavedModel version folder, or a base folder (uses its latest version).")
flags.DEFINE_string("data_dir", None, "Labelled data: image class folders (train/ + val/: val/ is used), a .csv/.tsv "
                    "file or a folder of texts; with --tfds_name, the TFDS data_dir.")
flags.DEFINE_string("tfds_name", None, "TFDS dataset to evaluate on instead of --data_dir's files.")
flags.DEFINE_string("split", None, "TFDS split, e.g. test or 'train[90%:]'; default: validation, else test.")
flags.DEFINE_string("text_column", "text", "CSV/TSV column holding the texts.")
flags.DEFINE_string("label_column", "label", "CSV/TSV column holding the class names.")
flags.DEFINE_string("image_column", "image", "Multi-task exports: CSV/TSV column of image paths (relative to its "
                    "folder); each task's labels are in the column named as the task.")
flags.DEFINE_string("label_separator", None, "Separator of several class names in a CSV/TSV label cell (multi-label).")
flags.DEFINE_float("threshold", 0.5, "Multi-label models: probability above which a class is predicted.")
flags.DEFINE_integer("top_k", 5, "k of the top-k accuracy (reported when 1 < k < the number of classes).")
flags.DEFINE_integer("batch_size", 32, "Inputs per call of the model.")
flags.DEFINE_string("training_data", None, "The data the model was trained on, in --data_dir's forms (of a train/ + "
                    "val/ folder, train/ is read): evaluated inputs that are exact copies of its inputs are counted.")
flags.DEFINE_string("output", None, "Where the JSON report goes (any filesystem TensorFlow writes). Default: "
                    "evaluation/metrics.json in the evaluated version folder, beside the model it scores.")
FLAGS = flags.FLAGS
# The default report, in the evaluated version folder: the same path whatever folder the command runs in, and
# beside the model that the scores are of.
EVALUATION_DIR = "evaluation"
REPORT_FILE = "metrics.json"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments {argv[1:]}; pass the data with --data_dir or --tfds_name.")
    if not FLAGS.model_dir:
        raise app.UsageError("Pass the export to evaluate: --model_dir=saved_models/NAME (or a version folder in it).")
    if not FLAGS.data_dir and not FLAGS.tfds_name:
        raise app.UsageError("Pass the labelled data to evaluate on: --data_dir=FOLDER_OR_CSV, or --tfds_name=NAME.")
    if FLAGS.split and not FLAGS.tfds_name:
        raise app.UsageError("--split is for TFDS data (--tfds_name); --data_dir folders use their val/ folder.")
    _check_numbers()
    if FLAGS.output is not None:
        _check_output(FLAGS.output)
    model = prediction.load_serving_model(FLAGS.model_dir)  # loaded once: a text export takes seconds to load
    output = FLAGS.output if FLAGS.output is not None else _default_output(model.version_dir)
    kind = model.kind
    if model.tasks:
        data = _task_data(model, FLAGS.data_dir, "--data_dir")
    elif FLAGS.tfds_name:
        data = tfds_examples.read_tfds_examples(FLAGS.tfds_name, split=FLAGS.split, data_dir=FLAGS.data_dir)
        if data.kind != kind:
            raise app.UsageError(f"TFDS {FLAGS.tfds_name!r} holds {data.kind}s, but the model takes {kind}s.")
    else:
        data = _files_data(kind, FLAGS.data_dir)
    training = None
    if FLAGS.training_data:
        training = (_task_data(model, FLAGS.training_data, "--training_data", part="training") if model.tasks
                    else _files_data(kind, FLAGS.training_data, part="training"))
    report = exported_model.evaluate_export(
        model, data.inputs, data.labels, threshold=FLAGS.threshold, top_k=FLAGS.top_k, batch_size=FLAGS.batch_size,
        training_examples=training.inputs if training else None)
    report["data"] = data.summary()
    if training:
        report["training_data"] = training.summary()
    print(report_text.format_report(report))
    print(f"\nWrote {_write_json(output, report)}")


def _check_numbers():
    """Usage errors of the numeric flags, checked now: the scores that use --top_k and --threshold are computed
    after the whole evaluation."""
    if FLAGS.top_k < 1:
        raise app.UsageError(f"--top_k is the k of the top-k accuracy and must be at least 1. "
                             f"Received: --top_k={FLAGS.top_k}")
    if FLAGS.batch_size < 1:
        raise app.UsageError(f"--batch_size must be at least 1. Received: --batch_size={FLAGS.batch_size}")
    if not 0.0 <= FLAGS.threshold <= 1.0:
        raise app.UsageError(f"--threshold is a probability: pass a value in [0, 1]. "
                             f"Received: --threshold={FLAGS.threshold:g}")


def _check_output(path):
    """Usage errors of `--output`, checked now: the report is written after the whole evaluation. Only what
    needs no network: a remote path (gs://...) is left to the writing."""
    if not path:  # an unset shell variable; the report would go to a stray ".tmp" file
        raise app.UsageError("--output is the report's file, but it is empty; pass a file path such as "
                             f"{REPORT_FILE}, or leave --output out for {EVALUATION_DIR}/{REPORT_FILE} in the "
                             "evaluated version folder. Received: --output=")
    if tf.io.gfile.isdir(path):
        raise app.UsageError(f"--output is the report's file, but this path is a folder; pass a file path such as "
                             f"{os.path.join(path, 'metrics.json')}. Received: --output={path}")
    blocking = versioning.file_in_the_way(os.path.dirname(path)) if os.path.dirname(path) else None
    if blocking is not None:  # its folders could not be made
        raise app.UsageError(f"--output is the report's file, but {blocking} on its path is a file, not a folder; "
                             f"pass a path in a folder (missing folders are created). Received: --output={path}")
    locked = _read_only_folder(os.path.dirname(path))
    if locked is not None:
        raise app.UsageError(f"--output is the report's file, but its folder cannot be written ({locked} is not "
                             f"writable); pass a path in a folder you can write. Received: --output={path}")


def _read_only_folder(folder):
    """`folder`, or its nearest parent that exists when it does not, if this process cannot write there (the
    report's folder is made, then written, only after the evaluation); else None. Remote paths: None."""
    if not versioning.is_local(folder):
        return None
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return None if os.access(existing, os.W_OK) else existing


def _default_output(version_dir):
    """`evaluation/metrics.json` in `version_dir`, the version evaluated, checked before the evaluation as
    `_check_output` checks --output: an export may be read-only, e.g. where TF Serving reads it. A remote
    version folder (gs://...) is left to the writing."""
    path = os.path.join(version_dir, EVALUATION_DIR, REPORT_FILE)
    folder = os.path.dirname(path)
    if not versioning.is_local(path):
        return path
    existing = folder if os.path.exists(folder) else version_dir  # the report's folder, or where it is made
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK) or os.path.isdir(path):
        raise app.UsageError(f"The report goes beside the evaluated model by default, to {path}, and it cannot be "
                             f"written there; pass --output=FILE (e.g. {REPORT_FILE}). "
                             f"Received: --model_dir={FLAGS.model_dir}")
    return path


def _files_data(kind, path, part="evaluation"):
    """The labelled examples of image folders, or of a .csv/.tsv file or folder of texts."""
    return labelled_data.read_labelled_data(path, kind, text_column=FLAGS.text_column, label_column=FLAGS.label_column,
                                            label_separator=FLAGS.label_separator, part=part)


def _task_data(model, path, flag, part="evaluation"):
    """The labelled examples of a multi-task export: a .csv/.tsv file (`flag`'s) with a label column per task."""
    if FLAGS.tfds_name or not path.lower().endswith((".csv", ".tsv")):
        raise app.UsageError(f"The model has several tasks ({', '.join(model.tasks)}): evaluate it on a "
                             f"{flag}=.csv/.tsv file with a label column per task.")
    column = FLAGS.text_column if model.kind == prediction.TEXT else FLAGS.image_column
    multi_label = {task: served.multi_label for task, served in model.tasks.items()}
    return labelled_data.read_task_csv(path, model.kind, multi_label, input_column=column,
                                       label_separator=FLAGS.label_separator, part=part)


def _write_json(path, report):
    """Writes `report` to `path` atomically: readers see the old file or the new one, never half of one.

    What the checks before the evaluation cannot foresee (a filesystem that refuses the write) ends as a usage
    error naming the path, not a traceback: the table above is all the user keeps of the evaluation.
    """
    folder = os.path.dirname(path)
    staging = path + ".tmp"
    try:
        if folder:
            versioning.make_folders(folder)
        with tf.io.gfile.GFile(staging, "w") as f:
            f.write(json.dumps(report, indent=2, ensure_ascii=False))
        tf.io.gfile.rename(staging, path, overwrite=True)
    except (OSError, tf.errors.OpError) as error:
        reason = error.message if isinstance(error, tf.errors.OpError) else error
        given = f"--output={FLAGS.output}" if FLAGS.output is not None else f"--model_dir={FLAGS.model_dir}"
        raise app.UsageError(f"The report cannot be written to {path} ({reason}); the table above is its summary. "
                             f"Pass --output=FILE in a folder you can write, and run again. Received: {given}") \
            from error
    return path


if __name__ == "__main__":
    cli.run(main)
