r"""Fine-tunes a pretrained image backbone on your images and exports a SavedModel.

Image folders (`train/` + `val/` sub-folders, or one class-folder tree):
  python recipes/image_classifier.py --data_dir=photos --weights=imagenet \
      --run_dir=runs/photos --export_dir=saved_models --model_name=photos
A TFDS dataset (downloads once, then works offline from --data_dir):
  python recipes/image_classifier.py --tfds_name=tf_flowers --weights=imagenet
All GPUs of the machine, or a Cloud TPU (--batch_size is per replica):
  python recipes/image_classifier.py --data_dir=photos --strategy=mirrored --scale_learning_rate
  python recipes/image_classifier.py --tfds_name=tf_flowers --strategy=tpu --tpu=my-tpu
All flags can also come from a file: --flagfile=photos.flags
"""

import os

import keras
from absl import app, flags, logging

import tfxfer
from tfxfer.export import warmup

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
flags.DEFINE_integer("batch_size", _IMAGE.batch_size,
                     "Batch size per replica; each step takes batch_size * replicas (the global batch).")
flags.DEFINE_enum("strategy", "auto", tfxfer.list_strategies(),
                  "tf.distribute strategy: auto (TPU if --tpu, all GPUs if > 1, else one device), default, "
                  "one_device, mirrored, multi_worker (reads TF_CONFIG) or tpu.")
flags.DEFINE_string("tpu", None, "Cloud TPU name, grpc://host:port address, or 'local' on a TPU VM.")
flags.DEFINE_integer("num_gpus", None, "GPUs to use with mirrored / one_device / auto; all visible if unset.")
flags.DEFINE_bool("scale_learning_rate", False,
                  "Multiply both learning rates by the number of replicas (linear scaling with the global batch).")
flags.DEFINE_string("backup_dir", None,
                    "Back up the training state here each epoch; the same command resumes a killed run.")
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
flags.DEFINE_integer("top_k", 5, "Signatures also return the top_k best scores and class names; 0 leaves them out.")
flags.DEFINE_integer("warmup_examples", 3, "Validation images in the TF Serving warmup file; 0 writes none.")
flags.DEFINE_string("tflite_dir", None, "If set, also write float32/dynamic-range/float16/int8 TFLite models "
                    "and their validation report (tflite_report.json) there.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    strategy = tfxfer.create_strategy(FLAGS.strategy, tpu=FLAGS.tpu, num_gpus=FLAGS.num_gpus)
    global_batch = tfxfer.global_batch_size(FLAGS.batch_size, strategy)
    logging.info("Batch size %d per replica x %d replicas = global batch %d.",
                 FLAGS.batch_size, strategy.num_replicas_in_sync, global_batch)
    with strategy.scope():  # the model's variables are created once per replica
        backbone = FLAGS.backbone
        if backbone.endswith(".keras"):
            backbone = tfxfer.backbone_from_model(backbone, FLAGS.backbone_output_layer)
        image_size = FLAGS.image_size or tfxfer.default_image_size(backbone)
        data = load_data((image_size, image_size), global_batch)
        model = tfxfer.build_image_classifier(
            backbone, len(data.class_names), weights=tfxfer.parse_weights(FLAGS.weights),
            image_size=image_size, alpha=FLAGS.alpha, seed=FLAGS.seed)
    learning_rates = [FLAGS.learning_rate, FLAGS.fine_tune_learning_rate]
    if FLAGS.scale_learning_rate:
        learning_rates = [tfxfer.scale_learning_rate(rate, global_batch, FLAGS.batch_size) for rate in learning_rates]
    config = _TRAIN.replace(
        epochs=FLAGS.epochs, fine_tune_epochs=FLAGS.fine_tune_epochs,
        fine_tune_at=tfxfer.parse_fine_tune_at(FLAGS.fine_tune_at),
        learning_rate=learning_rates[0], fine_tune_learning_rate=learning_rates[1])
    result = tfxfer.fine_tune(model, data.train, data.validation, config=config,
                              class_counts=data.train_class_counts, backup_dir=FLAGS.backup_dir)
    metrics = {**result.metrics(), "data": data.summary(), "backbone": FLAGS.backbone,
               "image_size": image_size, "batch_size": FLAGS.batch_size, "global_batch_size": global_batch,
               "strategy": FLAGS.strategy, "num_replicas": strategy.num_replicas_in_sync,
               "learning_rate": learning_rates[0], "fine_tune_learning_rate": learning_rates[1]}
    # Every worker runs what follows; only the chief's files are kept.
    tfxfer.write_metrics(tfxfer.chief_or_temp_dir(FLAGS.run_dir), metrics)
    warmup_examples = None
    if FLAGS.warmup_examples and data.validation is not None:
        warmup_examples = warmup.encode_images(data.validation, FLAGS.warmup_examples)
    export_dir = os.path.join(tfxfer.chief_or_temp_dir(FLAGS.export_dir), FLAGS.model_name)
    path = tfxfer.export_saved_model(model, export_dir,
                                     class_names=data.class_names, metadata={"metrics": metrics},
                                     top_k=FLAGS.top_k or None, warmup_examples=warmup_examples)
    logging.info("Exported to %s", path)
    if FLAGS.tflite_dir:
        tfxfer.export_tflite(model, tfxfer.chief_or_temp_dir(FLAGS.tflite_dir), train=data.train,
                             validation=data.validation, class_names=data.class_names)


def load_data(image_size, batch_size):
    common = dict(image_size=image_size, batch_size=batch_size, validation_split=FLAGS.validation_split,
                  seed=FLAGS.seed)
    if FLAGS.tfds_name:
        return tfxfer.load_tfds_images(FLAGS.tfds_name, data_dir=FLAGS.data_dir, **common)
    if not FLAGS.data_dir:
        raise app.UsageError("Pass --data_dir (image folders) or --tfds_name.")
    return tfxfer.load_image_folders(FLAGS.data_dir, **common)


if __name__ == "__main__":
    app.run(main)
