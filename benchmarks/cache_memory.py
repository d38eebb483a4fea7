r"""Peak memory of training as the data set grows past the decoded-image cache's budget.

Generates two folders of small random-ish JPEGs: one whose decoded uint8 cache
is just under `--budget_mb` (so it is cached in memory) and one 4x larger (so
it spills to a file cache). Each is then loaded with `cache_memory_mb=budget`
and trained on, with a tiny model, for `--epochs` epochs, in its own
subprocess so that each run has its own peak resident memory (`VmHWM`; `ru_maxrss` would
start from the resident size of this process, which forks it).
The design target: the larger run's peak is at most 1.1x the smaller one's.

  python benchmarks/cache_memory.py --budget_mb=128 --output=runs/cache_memory.json

Each run also reports the input pipeline alone (`measure.pipeline_images_per_second`:
one pass over the training data from the cache, with no model).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import results as results_lib
from absl import app, flags
from measure import peak_rss_mb, pipeline_images_per_second

flags.DEFINE_integer("budget_mb", 128, "cache_memory_mb of both runs.")
flags.DEFINE_integer("image_side", 64, "Side of the generated square images, and of the model input.")
flags.DEFINE_integer("epochs", 2, "Training epochs of each run.")
flags.DEFINE_integer("batch_size", 64, "Examples per batch.")
flags.DEFINE_float("fill", 0.95, "The small set's decoded cache as a share of the budget.")
flags.DEFINE_string("work_dir", None, "Where the images are written; default: a temporary folder, removed after.")
flags.DEFINE_string("output", None, "JSON file for the results.")
flags.DEFINE_string("child", None, "Internal: the image folder this process trains on.")
FLAGS = flags.FLAGS


CLASSES = ("a", "b")


def write_images(folder: str, count: int, side: int, seed: int = 0) -> None:
    """Writes `count` JPEGs of `side` x `side` pixels, half in each class folder.

    Each is a random 8x8 colour grid upsampled (so JPEG compresses it like a
    photo, not like noise), tinted by its class so there is something to learn.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in CLASSES:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
    for i in range(count):
        label = i % len(CLASSES)
        grid = rng.integers(0, 200, (8, 8, 3), dtype=np.uint8)
        grid[..., label] += 55
        image = Image.fromarray(grid).resize((side, side), Image.BILINEAR)
        image.save(os.path.join(folder, CLASSES[label], f"{i:06d}.jpg"), quality=90)


def train_once(data_dir: str) -> dict:
    """Loads `data_dir` with the budget, trains a tiny model and reports memory and speed (in the child)."""
    import keras

    import tfxfer

    keras.utils.set_random_seed(0)
    side = FLAGS.image_side
    start = time.perf_counter()
    data = tfxfer.load_image_folders(data_dir, image_size=(side, side), batch_size=FLAGS.batch_size,
                                     validation_split=0.2, cache_memory_mb=FLAGS.budget_mb)
    load_seconds = time.perf_counter() - start
    inputs = keras.Input((side, side, 3))
    features = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inputs)
    backbone = keras.Model(inputs, features, name="tiny")
    model = tfxfer.build_image_classifier(backbone, num_classes=len(CLASSES), preprocessing="tf",
                                          augmentation=False, seed=0)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
    start = time.perf_counter()
    history = model.fit(data.train, validation_data=data.validation, epochs=FLAGS.epochs, verbose=0)
    train_seconds = time.perf_counter() - start
    images_per_second = pipeline_images_per_second(data.train)
    return {
        "examples": data.train_size + data.validation_size,
        "cache": data.decoded_cache,
        "decoded_cache_mb": round((data.train_size + data.validation_size) * side * side * 3 / 2**20, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_seconds": round(load_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "pipeline_images_per_second": round(images_per_second, 1),
        "val_accuracy": round(float(history.history["val_accuracy"][-1]), 4),
    }


def run_child(data_dir: str) -> dict:
    """Runs `train_once` on `data_dir` in a fresh Python process; returns its report."""
    argv = [sys.executable, os.path.abspath(__file__), f"--child={data_dir}", f"--budget_mb={FLAGS.budget_mb}",
            f"--image_side={FLAGS.image_side}", f"--epochs={FLAGS.epochs}", f"--batch_size={FLAGS.batch_size}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    child = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"The run on {data_dir} failed:\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.child:
        print(json.dumps(train_once(FLAGS.child)))
        return
    side = FLAGS.image_side
    small = int(FLAGS.fill * FLAGS.budget_mb * 2**20 // (side * side * 3))
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="cache_memory_")
    try:
        runs = {}
        for name, count in (("small", small), ("large", 4 * small)):
            folder = os.path.join(work_dir, f"{name}_{count}")
            if not os.path.isdir(folder):
                write_images(folder, count, side, seed=len(runs))
            runs[name] = run_child(folder)
            print(name, runs[name], flush=True)
    finally:
        if FLAGS.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    results = {
        "budget_mb": FLAGS.budget_mb, "image_side": side, "epochs": FLAGS.epochs, **runs,
        "peak_rss_ratio_large_to_small": round(runs["large"]["peak_rss_mb"] / runs["small"]["peak_rss_mb"], 3),
    }
    results_lib.report(results, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
