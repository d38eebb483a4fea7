r"""Phase 1's feature extraction with BatchNorm folded into the convolutions, against without.

Phase 1 runs the frozen backbone once over the training and validation images
(`tfxfer.training.feature_cache`), with every BatchNormalization that follows
a convolution folded into it (`tfxfer.models.batchnorm_folding`). This runs
both extractors of tfxfer's default image model (the shared MobileNetV2-0.35
weights, the ants/bees images at tfxfer's 320x320) over the same 398 images in
one process, alternating which goes first, and reports the median seconds of a
pass (each traced and run once before timing), their ratio, the time the
folding itself takes, and how far the two extractors' features and the head's
predictions on them are apart.

  python benchmarks/batchnorm_folding.py --shared_dir=../shared --passes=5 --output=runs/batchnorm_folding.json
"""

import os
import statistics
import time

import image_pair
import measure
import numpy as np
import results as results_lib
import tensorflow as tf
from absl import app, flags

import tfxfer
from tfxfer.models import batchnorm_folding
from tfxfer.training import feature_cache

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_integer("passes", 5, "Timed passes of each extractor over the images.")
flags.DEFINE_string("output", None, "JSON file for the results.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    data_dir, weights = image_pair.assets(FLAGS.shared_dir)
    size = tfxfer.default_image_size("mobilenet_v2")
    data = tfxfer.load_image_folders(data_dir, image_size=(size, size), seed=0)
    batches = [images for images, _ in data.train] + [images for images, _ in data.validation]
    model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names), weights=weights,
                                          alpha=image_pair.ALPHA, seed=0)
    extractor, head = feature_cache.split_at_head(model)
    start = time.perf_counter()
    folded, count = batchnorm_folding.fold_batch_norms(extractor)
    fold_seconds = time.perf_counter() - start

    signature = [tf.TensorSpec((None, size, size, 3), tf.float32)]
    extract = {name: tf.function(lambda images, network=network: network(images, training=False),
                                 input_signature=signature)
               for name, network in (("unfolded", extractor), ("folded", folded))}
    features = {name: np.concatenate([function(images).numpy() for images in batches])  # traces, warms up
                for name, function in extract.items()}
    seconds = {name: [] for name in extract}
    for index in range(FLAGS.passes):
        for name in (["unfolded", "folded"] if index % 2 == 0 else ["folded", "unfolded"]):
            start = time.perf_counter()
            for images in batches:
                extract[name](images).numpy()
            seconds[name].append(time.perf_counter() - start)

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    predictions = {name: head(values).numpy() for name, values in features.items()}
    results = {
        "images": sum(int(images.shape[0]) for images in batches), "image_size": size,
        "batch_norms_folded": count, "fold_seconds": fold_seconds,
        "seconds_per_pass": {name: {"median": medians[name], "all": values} for name, values in seconds.items()},
        "speedup": medians["unfolded"] / medians["folded"],
        "max_feature_difference": float(np.abs(features["folded"] - features["unfolded"]).max()),
        "largest_feature": float(np.abs(features["unfolded"]).max()),
        "max_prediction_difference": float(np.abs(predictions["folded"] - predictions["unfolded"]).max()),
        "machine": measure.machine(),
    }
    results_lib.report(results, FLAGS.output)
    print(f"Folded {count} BatchNorms in {fold_seconds:.2f} s; a pass over {results['images']} images took "
          f"{medians['folded']:.2f} s folded against {medians['unfolded']:.2f} s ({results['speedup']:.2f}x).")


if __name__ == "__main__":
    app.run(main)
