r"""Fine-tunes a pretrained image backbone on your images and exports a SavedModel.

Image folders (`train/` + `val/` sub-folders, or one class-folder tree):
  python recipes/image_classifier.py --data_dir=photos --weights=imagenet \
      --run_dir=runs/photos --export_dir=saved_models --model_name=photos
A TFDS dataset (downloads once, then works offline from --data_dir):
  python recipes/image_classifier.py --tfds_name=tf_flowers --weights=imagenet
All flags can also come from a file: --flagfile=photos.flags
"""

import os

import keras
from absl import app, flags, logging

import tfxfer

_TRAIN = tfxfer.FineTuneConfig()
_IMAGE = tfxfer.defaults.ImageDefaults()

flags.DEFINE_string("data_dir", None, "Image folders (train/ + val/, or class folders), or TFDS data_dir with --tfds_name.")
flags.DEFINE_float("validation_split", None, "Share of one class-folder tree held out for validation (seeded).")
flags.DEFINE_string("tfds_name", None, "TFDS dataset name, e.g. tf_flowers; used instead of image folders.")
flags.DEFINE_string("backbone", _IMAGE.backbone, "Backbone name (see tfxfer.list_backbones()) or your own .keras model.")
flags.DEFINE_string("backbone_output_layer", None, "With your own .keras backbone: the layer to cut it at.")
flags.DEFINE_float("alpha", None, "Width multiplier of the MobileNet families.")
flags.DEFINE_string("weights", "imagenet", "'imagenet', 'none' (random init) or a path to a weights file.")
flags.DEFINE_integer("image_size", None, "Input size in pixels; defaults to the backbone's.")
flags.DEFINE_integer("batch_size", _IMAGE.batch_size, "Batch size.")
flags.DEFINE_integer("epochs", _TRAIN.epochs, "Phase-1 epochs (frozen backbone).")
flags.DEFINE_integer("fine_tune_epochs", _TRAIN.fine_tune_epochs, "Phase-2 epochs (top of backbone unfrozen); 0 skips.")
flags.DEFINE_string("fine_tune_at", str(_TRAIN.fine_tune_at),
                    "First backbone layer to unfreeze: index (100), fraction from the top (0.3) or layer name.")
flags.DEFINE_float("learning_rate", _TRAIN.learning_rate, "Phase-1 peak learning rate.")
flags.DEFINE_float("fine_tune_learning_rate", _TRAIN.fine_tune_learning_rate, "Phase-2 peak learning rate.")
flags.DEFINE_integer("seed", _IMAGE.seed, "Seed for splits, shuffling, augmentation and weights.")
flags.DEFINE_string("run_dir", "runs/image_classifier", "Where metrics.json goes.")
flags.DEFINE_string("export_dir", "saved_models", "Base folder of exported models.")
flags.DEFINE_string("model_name", "image_classifier", "Exports go to <export_dir>/<model_name>/<version>/.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    backbone = FLAGS.backbone
    if backbone.endswith(".keras"):
        backbone = tfxfer.backbone_from_model(backbone, FLAGS.backbone_output_layer)
    image_size = FLAGS.image_size or tfxfer.default_image_size(backbone)
    data = load_data((image_size, image_size))
    model = tfxfer.build_image_classifier(
        backbone, len(data.class_names), weights=tfxfer.parse_weights(FLAGS.weights),
        image_size=image_size, alpha=FLAGS.alpha, seed=FLAGS.seed)
    config = _TRAIN.replace(
        epochs=FLAGS.epochs, fine_tune_epochs=FLAGS.fine_tune_epochs,
        fine_tune_at=tfxfer.parse_fine_tune_at(FLAGS.fine_tune_at),
        learning_rate=FLAGS.learning_rate, fine_tune_learning_rate=FLAGS.fine_tune_learning_rate)
    result = tfxfer.fine_tune(model, data.train, data.validation, config=config,
                              class_counts=data.train_class_counts)
    metrics = {**result.metrics(), "data": data.summary(), "backbone": FLAGS.backbone,
               "image_size": image_size, "batch_size": FLAGS.batch_size}
    tfxfer.write_metrics(FLAGS.run_dir, metrics)
    path = tfxfer.export_saved_model(model, os.path.join(FLAGS.export_dir, FLAGS.model_name),
                                     class_names=data.class_names, metadata={"metrics": metrics})
    logging.info("Exported to %s", path)


def load_data(image_size):
    common = dict(image_size=image_size, batch_size=FLAGS.batch_size, validation_split=FLAGS.validation_split,
                  seed=FLAGS.seed)
    if FLAGS.tfds_name:
        return tfxfer.load_tfds_images(FLAGS.tfds_name, data_dir=FLAGS.data_dir, **common)
    if not FLAGS.data_dir:
        raise app.UsageError("Pass --data_dir (image folders) or --tfds_name.")
    return tfxfer.load_image_folders(FLAGS.data_dir, **common)


if __name__ == "__main__":
    app.run(main)
