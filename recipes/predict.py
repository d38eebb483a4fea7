r"""Classifies images or texts with an exported SavedModel (TensorFlow only) and prints the top-k classes.

It loads neither Keras, keras-hub, TFDS nor tfxfer's model and training code
(tensorflow_text too for text models), so it runs wherever the model is served.
Paths may be on any filesystem TensorFlow supports (gs://...).

  python recipes/predict.py --model_dir=saved_models/digits photo.png more_photos/
  python recipes/predict.py --model_dir=saved_models/digits/3 --top_k=3 photo.png
Text models (detected from the export's signature) take texts instead:
  python recipes/predict.py --model_dir=saved_models/reviews --text="a fine film" --text="dull"
  python recipes/predict.py --model_dir=saved_models/reviews "a fine film" "dull"
  python recipes/predict.py --model_dir=saved_models/reviews --text_file=reviews.txt   # one text per line
A ready request for TF Serving's REST API instead of the predictions (it holds the images
prediction answers, so the model still runs on them: it alone decides which decode):
  python recipes/predict.py --model_dir=saved_models/digits --print_request photo.png

--model_dir is a version folder, or a model's base folder (its latest version).
A folder's images are listed as training lists them (hidden files left out; files of other
extensions named in a warning); those the model cannot decode are skipped and named on the
last line (of a request too: they are left out of it). An image file named itself must decode.
A multi-task export (its metadata lists tasks) gets every task's answer under the
task's name: a one-label task's top-k classes, a multi-label task's classes above
--threshold (at most --top_k).
"""

import json
import os

import cli
import rest_requests
from absl import app, flags

from tfxfer import prediction

flags.DEFINE_string("model_dir", None, "SavedModel version folder, or a base folder (uses its latest version).")
flags.DEFINE_integer("top_k", 5, "Classes to print per input, best first.")
flags.DEFINE_integer("batch_size", 32, "Inputs per call of the model.")
flags.DEFINE_float("threshold", 0.5, "Multi-task models: probability above which a multi-label class is printed.")
flags.DEFINE_multi_string("text", [], "A text to classify (text models; repeat for several).")
flags.DEFINE_string("text_file", None, "A UTF-8 file with one text to classify per line (text models).")
flags.DEFINE_bool("print_request", False, "Print a curl command and JSON body for TF Serving instead of predicting.")
flags.DEFINE_string("host", "localhost:8501", "TF Serving REST host:port, for --print_request.")
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def main(argv):
    _check_numbers()
    model = prediction.load_serving_model(FLAGS.model_dir)  # loaded once: a text export takes seconds to load
    if model.kind == prediction.TEXT:
        _refuse_file_arguments(argv[1:])
        _refuse_blank_texts(FLAGS.text + argv[1:])
        texts = FLAGS.text + argv[1:] + (prediction.read_text_lines(FLAGS.text_file) if FLAGS.text_file else [])
        if not texts:
            raise app.UsageError("This model takes texts: pass --text=TEXT (repeatable), texts as arguments, "
                                 "or --text_file=FILE with one text per line.")
        if FLAGS.print_request:
            _print_request(rest_requests.text_request(texts))
            return
        results = prediction.predict_texts(model, texts, top_k=FLAGS.top_k, batch_size=FLAGS.batch_size,
                                           threshold=FLAGS.threshold)
    else:
        if FLAGS.text or FLAGS.text_file:
            raise app.UsageError("--text and --text_file are for text models; this model takes image files.")
        if not argv[1:]:
            raise app.UsageError("This model takes images: pass image files or folders of images as arguments.")
        # The library lists the folders' images (and checks the paths) once: it skips a folder's undecodable
        # images but refuses a named file that does not decode, so it must see which paths were named. Which
        # images decode is the model's own verdict (as TF Serving's), so a request, too, holds the images the
        # predictions answer, and leaves out the same ones.
        results = prediction.predict_image_files(model, argv[1:], top_k=FLAGS.top_k, batch_size=FLAGS.batch_size,
                                                 threshold=FLAGS.threshold)
        if FLAGS.print_request:
            _print_request(rest_requests.image_request(prediction.read_files([result.source for result in results])))
            _print_skipped(results.skipped_files, " (left out of the request)")
            return
    _print_results(results)
    _print_skipped(results.skipped_files)


def _check_numbers():
    """Usage errors of the numeric flags, checked before the model loads (which takes seconds)."""
    for flag in ("top_k", "batch_size"):
        if FLAGS[flag].value < 1:
            raise app.UsageError(f"--{flag} must be at least 1. Received: --{flag}={FLAGS[flag].value}")
    if not 0.0 <= FLAGS.threshold <= 1.0:
        raise app.UsageError(f"--threshold is a probability: pass a value in [0, 1]. "
                             f"Received: --threshold={FLAGS.threshold:g}")


def _print_request(body):
    """The REST body, then the curl command that sends it to --host."""
    print(json.dumps(body))
    print(rest_requests.curl_command(body, prediction.serving_model_name(FLAGS.model_dir), host=FLAGS.host))


def _print_results(results):
    for result in results:
        print(result.source)
        if result.tasks is None:
            _print_classes(result.top_k, "  ")
            continue
        for task, classes in result.tasks.items():
            print(f"  {task}")
            _print_classes(classes, "    ")
            if not classes:  # only a multi-label task's answer can be empty
                print(f"    (no class above {FLAGS.threshold:g})")


def _refuse_file_arguments(arguments):
    """A text model classifies its arguments as they are: a file's or folder's name would be answered as if it
    were a text."""
    files = [argument for argument in arguments if os.path.isfile(argument)]
    if files:
        raise app.UsageError(
            f"This model takes texts, and {files[0]!r} is a file: pass --text_file={files[0]} to classify its lines "
            f"(one text per line), or --text={files[0]!r} to classify the name itself. Received: {len(files)} "
            "file argument(s)")
    folders = [argument for argument in arguments if os.path.isdir(argument)]
    if folders:  # e.g. a folder of images given to the wrong model: its path would get a confident class
        raise app.UsageError(
            f"This model takes texts, and {folders[0]!r} is a folder: pass texts, --text_file=FILE with one text per "
            f"line, or --text={folders[0]!r} to classify the name itself. Received: {len(folders)} folder "
            "argument(s)")


def _refuse_blank_texts(texts):
    """A blank text is most likely an unset shell variable: its answer, under a blank line, would pass unnoticed
    (--text_file skips blank lines, and says so)."""
    blank = [index for index, text in enumerate(texts) if not text.strip()]
    if blank:
        raise app.UsageError(f"A text to classify is blank (an unset shell variable?); pass texts with words in them. "
                             f"Received: {len(blank)} blank of {len(texts)} texts from --text and the arguments "
                             f"(the first at position {blank[0] + 1})")


def _print_skipped(skipped, where=""):
    """Names the folders' images that got no answer (`where` says what else they are not in), last: the library's
    warning has scrolled past by then."""
    if skipped:
        files = "file that is not a decodable image" if len(skipped) == 1 else "files that are not decodable images"
        print(f"Skipped {len(skipped)} {files}{where}: {', '.join(skipped)}")


def _print_classes(classes, indent):
    for name, probability in classes:
        print(f"{indent}{probability:.4f}  {name}")


if __name__ == "__main__":
    cli.run(main)
