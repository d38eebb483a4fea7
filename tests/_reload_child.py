"""Child process of test_model_saving: a fresh Python loads a saved classifier and uses all of it.

argv: folders, each holding `model.keras` and `data.npz` (`inputs`, raw images
or raw texts, and `labels`). Writes `result.npz` into each: the reloaded model's
predictions on the raw inputs, its predictions after fine-tuning, and the
exported SavedModel's probabilities for the same inputs.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxfer  # noqa: E402  (registers the classifier types with Keras)


def main(out_dir):
    data = np.load(os.path.join(out_dir, "data.npz"))
    inputs, labels = data["inputs"], data["labels"]
    model = keras.models.load_model(os.path.join(out_dir, "model.keras"))
    before = model.predict(inputs, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(4)
    if model.task == "text":
        dataset = dataset.map(lambda texts, y: (model.preprocessor(texts), y))
    config = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=1, early_stopping_patience=None)
    tfxfer.fine_tune(model, dataset, dataset, config=config)
    after = model.predict(inputs, verbose=0)
    class_names = [f"class_{i}" for i in range(model.num_classes)]
    export = tfxfer.export_saved_model(model, os.path.join(out_dir, "export"), class_names=class_names)
    serving = tf.saved_model.load(export)
    if model.task == "text":
        served = serving.signatures["serving_default"](texts=tf.constant(inputs))
    else:
        served = next(fn for fn in serving.signatures.values()
                      if next(iter(fn.structured_input_signature[1].values())).dtype == tf.float32)(
            tf.constant(inputs))
    np.savez(os.path.join(out_dir, "result.npz"), before=before, after=after,
             served=served["probabilities"].numpy(), task=model.task, head=model.head_kind.value,
             backbone=model.backbone_name, type=type(model).__name__)


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        main(folder)
