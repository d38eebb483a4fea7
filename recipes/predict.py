r"""Classifies image files with an exported SavedModel (TensorFlow only) and prints the top-k classes.

  python recipes/predict.py --model_dir=saved_models/digits photo.png more_photos/
  python recipes/predict.py --model_dir=saved_models/digits/3 --top_k=3 photo.png
A ready request for TF Serving's REST API instead of predicting locally:
  python recipes/predict.py --model_dir=saved_models/digits --print_request photo.png

--model_dir is a version folder, or a model's base folder (its latest version).
"""

import json

from absl import app, flags

from tfxfer import prediction
from tfxfer.export import rest

flags.DEFINE_string("model_dir", None, "SavedModel version folder, or a base folder (uses its latest version).")
flags.DEFINE_integer("top_k", 5, "Classes to print per image, best first.")
flags.DEFINE_integer("batch_size", 32, "Images per call of the model.")
flags.DEFINE_bool("print_request", False, "Print a curl command and JSON body for TF Serving instead of predicting.")
flags.DEFINE_string("host", "localhost:8501", "TF Serving REST host:port, for --print_request.")
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def main(argv):
    paths = prediction.image_files(argv[1:])
    if FLAGS.print_request:
        body = rest.image_request([open(path, "rb").read() for path in paths])
        print(json.dumps(body))
        print(rest.curl_command(body, prediction.serving_model_name(FLAGS.model_dir), host=FLAGS.host))
        return
    for result in prediction.predict_image_files(FLAGS.model_dir, paths, top_k=FLAGS.top_k,
                                                 batch_size=FLAGS.batch_size):
        print(result.source)
        for name, probability in result.top_k:
            print(f"  {probability:.4f}  {name}")


if __name__ == "__main__":
    app.run(main)
