r"""tfxfer's defaults vs the hand-written Keras-guide recipe, side by side, on real data.

Both start from the same ImageNet-pretrained MobileNetV2-0.35 weights file and the
same ants/bees images in ../shared, train in this one process one after the other,
and are scored on the same 153 validation images. Reports accuracy and wall time of
each and their ratios.

  python benchmarks/hymenoptera.py --shared_dir=../shared --seeds=42,43,44 --output=runs/bench_hymenoptera.json
"""

import os
import sys
import time

import keras
import results as results_lib
import tensorflow as tf
from absl import app, flags, logging

import tfxfer

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", ["42"], "Seeds; each runs both recipes, and means are reported.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
flags.DEFINE_bool("baseline", True, "Also run the Keras-guide baseline.")
FLAGS = flags.FLAGS

ALPHA = 0.35
IMAGE_SIZE = 224
WEIGHTS = "weights/mobilenet_v2_0.35_224_no_top.weights.h5"
DATA = "data/hymenoptera"


def run_tfxfer(data_dir: str, weights: str, seed: int) -> dict:
    """tfxfer with its defaults: what `recipes/image_classifier.py` does."""
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    data = tfxfer.load_image_folders(data_dir, image_size=(IMAGE_SIZE, IMAGE_SIZE), seed=seed)
    model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names), weights=weights,
                                          image_size=IMAGE_SIZE, alpha=ALPHA, seed=seed)
    result = tfxfer.fine_tune(model, data.train, data.validation, class_counts=data.train_class_counts)
    return {"val_accuracy": (result.phase2 or result.phase1).final_metrics["val_accuracy"],
            "seconds": time.perf_counter() - start, "phases": result.metrics()}


def run_keras_guide(data_dir: str, weights: str, seed: int) -> dict:
    """The Keras transfer-learning guide's recipe, written by hand: 10 frozen + 10 fine-tune epochs."""
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    load = dict(image_size=(IMAGE_SIZE, IMAGE_SIZE), batch_size=32, seed=seed)
    train = keras.utils.image_dataset_from_directory(os.path.join(data_dir, "train"), shuffle=True, **load)
    val = keras.utils.image_dataset_from_directory(os.path.join(data_dir, "val"), shuffle=False, **load)
    train, val = train.cache().prefetch(tf.data.AUTOTUNE), val.cache().prefetch(tf.data.AUTOTUNE)
    base = keras.applications.MobileNetV2(alpha=ALPHA, include_top=False, weights=weights,
                                          input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    base.trainable = False
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.RandomRotation(0.1)(x)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(2)(x)
    model = keras.Model(inputs, outputs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(), loss, metrics=["accuracy"])
    model.fit(train, epochs=10, validation_data=val, verbose=0)
    base.trainable = True
    model.compile(keras.optimizers.Adam(1e-5), loss, metrics=["accuracy"])
    model.fit(train, epochs=10, validation_data=val, verbose=0)
    accuracy = model.evaluate(val, verbose=0, return_dict=True)["accuracy"]
    return {"val_accuracy": float(accuracy), "seconds": time.perf_counter() - start}


def _mean(runs: list[dict], key: str) -> float:
    return sum(run[key] for run in runs) / len(runs)


def main(argv):
    del argv
    data_dir = os.path.join(FLAGS.shared_dir, DATA)
    weights = os.path.join(FLAGS.shared_dir, WEIGHTS)
    if not (os.path.isdir(data_dir) and os.path.isfile(weights)):
        sys.exit(f"Shared assets not found under {FLAGS.shared_dir!r}: pass --shared_dir or set TFXFER_SHARED.")
    runners = {"tfxfer": run_tfxfer, **({"keras_guide": run_keras_guide} if FLAGS.baseline else {})}
    runs = {name: [] for name in runners}
    for seed in map(int, FLAGS.seeds):
        for name, run in runners.items():
            runs[name].append({"seed": seed, **run(data_dir, weights, seed)})
    results = {name: {"mean_val_accuracy": _mean(r, "val_accuracy"), "mean_seconds": _mean(r, "seconds"), "runs": r}
               for name, r in runs.items()}
    if FLAGS.baseline:
        results["ratios"] = {
            metric: results["tfxfer"][metric] / results["keras_guide"][metric]
            for metric in ("mean_val_accuracy", "mean_seconds")
        }
    results_lib.report(results, FLAGS.output)
    logging.info("Benchmark done.")


if __name__ == "__main__":
    app.run(main)
