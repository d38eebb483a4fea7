"""The image side of `run.py`: tfxfer's defaults, the Keras-guide recipe and a linear probe, on one data set.

All three start from the same ImageNet-pretrained MobileNetV2-0.35 weights file
and the same ants/bees folders in ../shared, and are scored on the same 153
validation images. The recipe and the probe read the images at the weights'
pretraining size (224x224); tfxfer at its default size (`tfxfer.default_image_size`, 320x320).
"""

import gc
import os
import sys
import time

import keras
import linear_probe
import measure
import numpy as np
import results as results_lib
import tensorflow as tf

import tfxfer
from tfxfer.data import image_ops

ALPHA = 0.35
IMAGE_SIZE = 224  # the weights' pretraining size: the Keras guide's and the probe's input size
WEIGHTS = "weights/mobilenet_v2_0.35_224_no_top.weights.h5"
DATA = "data/hymenoptera"


def assets(shared_dir: str) -> tuple[str, str]:
    """(data folder, weights file) under `shared_dir`; exits with a message when they are missing."""
    data_dir, weights = os.path.join(shared_dir, DATA), os.path.join(shared_dir, WEIGHTS)
    if not (os.path.isdir(data_dir) and os.path.isfile(weights)):
        sys.exit(f"Image assets not found under {shared_dir!r} ({DATA}, {WEIGHTS}): "
                 "pass --shared_dir or set TFXFER_SHARED.")
    return data_dir, weights


def compare_variants(run_variant, shared_dir: str, seeds: list[str], variants: list[str], output: str | None):
    """`results.compare_variants` of `run_variant(data_dir, weights, seed, variant)` on the assets in
    `shared_dir`; exits with a message when they are missing."""
    found = assets(shared_dir)
    results_lib.compare_variants(lambda seed, variant: run_variant(*found, seed, variant),
                                 list(map(int, seeds)), variants, output)


def run_tfxfer(data_dir: str, weights: str, seed: int) -> dict:
    """tfxfer with its defaults, through the Python API: what `recipes/image_classifier.py` trains."""
    _fresh_start(seed)
    size = tfxfer.default_image_size("mobilenet_v2")  # what the recipe reads the images at without --image_size
    with measure.PeakRss() as memory:
        start = time.perf_counter()
        data = tfxfer.load_image_folders(data_dir, image_size=(size, size), seed=seed)
        model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names), weights=weights,
                                              alpha=ALPHA, seed=seed)
        throughput = measure.TrainingThroughput(data.train_size)
        result = tfxfer.fine_tune(model, data.train, data.validation, class_counts=data.train_class_counts,
                                  callbacks=[throughput], verbose=0)
        seconds = time.perf_counter() - start
    final = result.phase2 or result.phase1
    return {"image_size": size, "val_accuracy": final.final_metrics["val_accuracy"],
            "phase1_seconds": result.phase1.seconds,
            "phase2_seconds": result.phase2.seconds if result.phase2 else 0.0,
            "seconds": seconds,
            "phase2_images_per_second": throughput.images_per_second() if result.phase2 else None,
            "peak_rss_mb": memory.megabytes,
            "pipeline_images_per_second": measure.pipeline_images_per_second(data.train),
            "epochs_run": [result.phase1.epochs_run, result.phase2.epochs_run if result.phase2 else 0]}


def run_keras_guide(data_dir: str, weights: str, seed: int) -> dict:
    """The Keras transfer-learning guide's recipe, written by hand: 10 frozen epochs, then 10 with the
    whole base unfrozen at Adam 1e-5."""
    _fresh_start(seed)
    with measure.PeakRss() as memory:
        start = time.perf_counter()
        load = dict(image_size=(IMAGE_SIZE, IMAGE_SIZE), batch_size=32, seed=seed)
        train = keras.utils.image_dataset_from_directory(os.path.join(data_dir, "train"), shuffle=True, **load)
        val = keras.utils.image_dataset_from_directory(os.path.join(data_dir, "val"), shuffle=False, **load)
        train_size = len(train.file_paths)  # counted from the listing: iterating would decode every image
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
        throughput = measure.TrainingThroughput(train_size)
        phase_seconds = []
        for learning_rate in (1e-3, 1e-5):  # Adam's default, then the guide's fine-tuning rate
            if learning_rate == 1e-5:
                base.trainable = True
            model.compile(keras.optimizers.Adam(learning_rate), loss, metrics=["accuracy"])
            phase_start = time.perf_counter()
            model.fit(train, epochs=10, validation_data=val, callbacks=[throughput], verbose=0)
            phase_seconds.append(time.perf_counter() - phase_start)
        accuracy = model.evaluate(val, verbose=0, return_dict=True)["accuracy"]
        seconds = time.perf_counter() - start
    return {"image_size": IMAGE_SIZE, "val_accuracy": float(accuracy), "phase1_seconds": phase_seconds[0],
            "phase2_seconds": phase_seconds[1], "seconds": seconds,
            "phase2_images_per_second": throughput.images_per_second(), "peak_rss_mb": memory.megabytes,
            "pipeline_images_per_second": measure.pipeline_images_per_second(train)}


def run_probe(data_dir: str, weights: str, image_size: int = IMAGE_SIZE) -> dict:
    """`linear_probe.linear_probe` on the frozen backbone's average-pooled features of the un-augmented images,
    read at `image_size`."""
    start = time.perf_counter()
    data = tfxfer.load_image_folders(data_dir, image_size=(image_size, image_size))
    base = keras.applications.MobileNetV2(alpha=ALPHA, include_top=False, weights=weights, pooling="avg",
                                          input_shape=(image_size, image_size, 3))

    def features(dataset):
        pooled, labels = [], []
        for images, batch_labels in dataset:
            pooled.append(base(images / 127.5 - 1.0, training=False).numpy())
            labels.append(batch_labels.numpy())
        return np.concatenate(pooled), np.concatenate(labels)

    probe = linear_probe.linear_probe().fit(*features(data.train))
    accuracy = float(probe.score(*features(data.validation)))
    return {"image_size": image_size, "val_accuracy": accuracy, "seconds": time.perf_counter() - start}


def photos(paths: list[str], size: int) -> np.ndarray:
    """The photos at `paths`, decoded and resized as tfxfer's loaders do (uint8, `size` x `size`)."""
    return np.stack([image_ops.decode_and_resize_uint8(tf.io.read_file(path), (size, size)).numpy()
                     for path in paths])


def average_pooled_features(images: np.ndarray, weights: str) -> np.ndarray:
    """The frozen backbone's last feature map, average-pooled, of `images` (uint8, read at their size)."""
    base = keras.applications.MobileNetV2(alpha=ALPHA, include_top=False, weights=weights, pooling="avg",
                                          input_shape=images.shape[1:])
    return base.predict(images.astype("float32") / 127.5 - 1.0, batch_size=32, verbose=0)


def _fresh_start(seed: int) -> None:
    """Frees the previous run's graphs and memory, then seeds this one."""
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(seed)
