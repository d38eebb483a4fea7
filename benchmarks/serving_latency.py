r"""The SavedModel's request latency with BatchNorm folded into the convolutions, against without.

`tfxfer.export_saved_model` exports an image model with every BatchNormalization that
follows a convolution folded into it (`tfxfer.models.batchnorm_folding`). This exports
tfxfer's default image model (the shared MobileNetV2-0.35 weights at tfxfer's 320x320)
both ways, loads both SavedModels with TensorFlow as a server would, and sends each the
same requests through `serving_default`: batches of the ants/bees validation photos as
encoded JPEG bytes, so a request's time includes decoding and resizing, as in production.
Both answer the same requests in one process, alternating which goes first; each batch
size is sent once untimed (the first call builds the graph), then `--calls` timed times.
Reports the median milliseconds of a request, their ratio, and the largest difference
between the two exports' probabilities over all the validation photos.

  python benchmarks/serving_latency.py --shared_dir=../shared --output=runs/serving_latency.json
"""

import glob
import os
import statistics
import tempfile
import time

import image_pair
import measure
import numpy as np
import results as results_lib
import tensorflow as tf
from absl import app, flags

import tfxfer

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("batch_sizes", ["1", "8", "32"], "Photos per request.")
flags.DEFINE_integer("calls", 20, "Timed requests of each export per batch size.")
flags.DEFINE_string("output", None, "JSON file for the results.")
FLAGS = flags.FLAGS

EXPORTS = ("unfolded", "folded")


def main(argv):
    del argv
    data_dir, weights = image_pair.assets(FLAGS.shared_dir)
    photos = []
    for path in sorted(glob.glob(os.path.join(data_dir, "val", "*", "*.jpg"))):
        with open(path, "rb") as f:
            photos.append(f.read())
    model = tfxfer.build_image_classifier("mobilenet_v2", 2, weights=weights, alpha=image_pair.ALPHA, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        serve = {name: tf.saved_model.load(tfxfer.export_saved_model(
                     model, os.path.join(folder, name), class_names=["ants", "bees"],
                     fold_batch_norms=name == "folded")).signatures["serving_default"]
                 for name in EXPORTS}

        def probabilities(name):
            return np.concatenate([serve[name](image_bytes=tf.constant(photos[start:start + 32]))["probabilities"]
                                   for start in range(0, len(photos), 32)])

        difference = float(np.abs(probabilities("folded") - probabilities("unfolded")).max())
        milliseconds = {}
        for batch_size in map(int, FLAGS.batch_sizes):
            request = tf.constant(photos[:batch_size])
            for name in EXPORTS:
                serve[name](image_bytes=request)  # untimed: builds the graph for this batch size
            times = {name: [] for name in EXPORTS}
            for index in range(FLAGS.calls):
                for name in (EXPORTS if index % 2 == 0 else EXPORTS[::-1]):
                    start = time.perf_counter()
                    serve[name](image_bytes=request)["probabilities"].numpy()
                    times[name].append(1000 * (time.perf_counter() - start))
            medians = {name: statistics.median(values) for name, values in times.items()}
            milliseconds[batch_size] = {**{name: {"median": medians[name], "all": times[name]} for name in EXPORTS},
                                        "speedup": medians["unfolded"] / medians["folded"]}
            print(f"{batch_size} photos a request: {medians['folded']:.1f} ms folded against "
                  f"{medians['unfolded']:.1f} ms ({milliseconds[batch_size]['speedup']:.2f}x).")
    results = {"image_size": model.input_shape[1], "photos": len(photos), "milliseconds_per_request": milliseconds,
               "max_probability_difference": difference, "machine": measure.machine()}
    results_lib.report(results, FLAGS.output)
    print(f"The two exports' probabilities differ by at most {difference:.1e} over {len(photos)} photos.")


if __name__ == "__main__":
    app.run(main)
