r"""Fine-tunes a pretrained image backbone on your images and exports a SavedModel.

Image folders (`train/` + `val/` sub-folders, or one class-folder tree, of which 20 % of each class is held
out for validation unless --validation_split says otherwise; --validation_split=0 trains on all of it):
  python recipes/image_classifier.py --data_dir=photos --weights=imagenet \
      --run_dir=runs/photos --export_dir=saved_models --model_name=photos
A CSV/TSV of image paths with a label column per task (a head per task on one backbone):
  python recipes/image_classifier.py --data_dir=plants.csv --image_column=path --label_columns=species,grade
A TFDS dataset (downloads once, then works offline from --data_dir):
  python recipes/image_classifier.py --tfds_name=tf_flowers --weights=imagenet
All GPUs of the machine, or a Cloud TPU (--batch_size is per replica):
  python recipes/image_classifier.py --data_dir=photos --strategy=mirrored --scale_learning_rate
  python recipes/image_classifier.py --tfds_name=tf_flowers --strategy=tpu --tpu=my-tpu
All flags can also come from a file: --flagfile=photos.flags
"""

import os

import cli
import distillation_run
import run_folder
import run_report
import task_flags
import tensorflow as tf
import training_flags
import tuning_run
from absl import app, flags

import tfxfer
from tfxfer.data import image_cache
from tfxfer.errors import ConfigError, UnavailableOfflineError
from tfxfer.export import warmup
from tfxfer.models.backbones import ImageNetWeightsUnavailableError, registry
from tfxfer.training import precision

_IMAGE = tfxfer.defaults.ImageDefaults()

training_flags.define_flags(
    data_help="Image folders (train/ + val/, or class folders); a .csv/.tsv of image paths with --label_columns; "
              "or TFDS data_dir with --tfds_name.",
    backbone=_IMAGE.backbone,
    backbone_help="Backbone name (see tfxfer.list_backbones()) or your own .keras model.",
    batch_size=_IMAGE.batch_size, seed=_IMAGE.seed, held_out_share=_IMAGE.validation_split,
    training=tfxfer.FineTuneConfig(), dropout=_IMAGE.dropout, model_name="image_classifier")
flags.DEFINE_string("backbone_output_layer", None, "With your own .keras backbone: the layer to cut it at.")
flags.DEFINE_float("alpha", None, "Width multiplier of a registry --backbone of the MobileNet families.")
flags.DEFINE_string("weights", "pretrained", "Starting weights of a registry --backbone: 'pretrained' (ImageNet; "
                    "'imagenet' also works), 'none' (random init) or a path to a weights file.")
flags.DEFINE_bool("safe_mode", True, "Load a .keras --backbone in Keras safe mode (no arbitrary code from Lambda "
                  "layers); --nosafe_mode only for files you trust.")
flags.DEFINE_string("image_size", None, "Input size in pixels: one number for a square, or HEIGHT,WIDTH (e.g. "
                    "256,320 for wide photos); default: tfxfer.default_image_size(backbone), about 1.4x a registry "
                    "backbone's pretraining size (320 for 224; 224 is about half the compute).")
flags.DEFINE_bool("augmentation", True, "Random flips, rotations, zooms and shifts of the training images in phase 2 "
                  "(tfxfer.default_image_augmentation); --noaugmentation leaves them out, e.g. for --jit_compile.")
flags.DEFINE_bool("test_time_flip", False, "Predictions (validation in phase 2, evaluation, the exports) average "
                  "each image with its mirror image, at twice the cost of a prediction; for classes that mirroring "
                  "keeps, as --augmentation's flips assume.")
flags.DEFINE_integer("top_k", 5, "Signatures also return the top_k best scores and class names; 0 leaves them out.")
flags.DEFINE_integer("cache_memory_mb", image_cache.DEFAULT_CACHE_MEMORY_MB,
                     "Most MB of decoded images (uint8, H x W x 3 bytes each) kept in memory; beyond it they are "
                     "cached in files in the run folder, removed when the run ends. --unlabelled_data's images "
                     "have a budget of this size of their own.")
flags.DEFINE_string("tflite_dir", None, "If set, also write float32/dynamic-range/float16/int8 TFLite models "
                    "and their validation report (tflite_report.json) there; a --distill_into student's go to "
                    "its student/ folder.")
flags.DEFINE_string("image_column", "image", "With --label_columns: the CSV/TSV column of image paths (relative "
                    "paths are relative to the file's folder).")
flags.DEFINE_float("student_alpha", None, "With --distill_into: width multiplier of a MobileNet student.")
flags.DEFINE_string("student_image_size", None, "With --distill_into: the student's input size in pixels, as "
                    "--image_size takes it, e.g. smaller than the teacher's for speed; default: the teacher's.")
# This recipe's flags that do nothing without another, and what each does (`training_flags.refuse_without`).
_STUDENT_FLAGS = {"student_alpha": "sets the width of the MobileNet student of",
                  "student_image_size": "sets the input size of the student of"}
_TASK_FLAGS = {"image_column": "names the image column of the CSV/TSV read with"}
# What --image_size and --student_image_size take, for their messages.
_IMAGE_SIZE_FORMS = "one positive integer for a square (e.g. 224) or HEIGHT,WIDTH for another shape (e.g. 256,320)"
# --help lists the shared flags too, not only this file's.
flags.adopt_module_key_flags(training_flags)
flags.adopt_module_key_flags(task_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    training_flags.check_paths("tflite_dir")
    training_flags.check_numbers()
    if FLAGS.top_k < 0:
        raise app.UsageError(f"--top_k must be >= 0 (0 leaves the top-k outputs out). Received: --top_k={FLAGS.top_k}")
    tuning_run.check_flags()
    distillation_run.check_flags(student="an image backbone name, e.g. mobilenet_v3_small",
                                 unlabelled="a folder of images (any depth)", student_flags=_STUDENT_FLAGS)
    task_flags.check_flags("distill_into", "tflite_dir", "tfds_name", needing=_TASK_FLAGS)
    check_backbone_flags()
    check_training_flags()
    run_folder.check_trained(FLAGS.backup_dir)
    tfxfer.seed_everything(FLAGS.seed, deterministic=FLAGS.deterministic)
    strategy, global_batch = training_flags.create_strategy()
    # Every worker runs what follows; only the chief's files are kept. Before the
    # data: decoded images beyond --cache_memory_mb spill into the run folder.
    run_dir, export_dir = training_flags.output_dirs()
    with strategy.scope():  # the model's variables are created once per replica
        backbone = FLAGS.backbone
        if backbone.endswith(".keras"):
            backbone = tfxfer.backbone_from_model(backbone, FLAGS.backbone_output_layer, safe_mode=FLAGS.safe_mode)
        # Before the data: a size the backbone cannot take fails before any image is decoded.
        image_size = resolve_image_size(backbone)
        data = load_data(height_width(image_size), global_batch, run_dir)
        model = tfxfer.build_image_classifier(
            backbone, **task_flags.head_arguments(data), weights=training_flags.parse_weights(FLAGS.weights),
            image_size=image_size, alpha=FLAGS.alpha, augmentation=FLAGS.augmentation, dropout=FLAGS.dropout,
            seed=FLAGS.seed, test_time_flip=FLAGS.test_time_flip)
        # Built now, so that an unknown student backbone or missing weights fail before any training.
        student = build_student(image_size, len(data.class_names)) \
            if FLAGS.distill_into else None
        trained = run_folder.load_trained(FLAGS.backup_dir, safe_mode=FLAGS.safe_mode)
    unlabelled = None
    if FLAGS.unlabelled_data:
        unlabelled = tfxfer.load_unlabelled_images(FLAGS.unlabelled_data, image_size=height_width(image_size),
                                                   batch_size=global_batch, cache_memory_mb=FLAGS.cache_memory_mb,
                                                   spill_dir=run_dir)
    config = training_flags.fine_tune_config(global_batch)
    if student is not None:
        distillation_run.check_student_fine_tune_at(student, config)
    search = tuning_run.search(model, data.train, config, class_counts=data.train_class_counts)
    config = config if search is None else search.config
    model, result = training_flags.train_or_resume(model, data.train, data.validation, config, data.train_class_counts,
                                                   run_dir, trained, search)
    evaluation = run_report.evaluate(model, data.validation, data.class_names, multi_label=False)
    metrics = {**result.metrics(), "data": data.summary(), "backbone": FLAGS.backbone,
               "image_size": image_size, "test_time_flip": model.test_time_flip,
               **training_flags.run_facts(strategy, global_batch, config, model, search)}
    warmup_examples = None
    if FLAGS.warmup_examples and data.validation is not None:
        warmup_examples = warmup.encode_images(data.validation, FLAGS.warmup_examples)
    path = run_folder.load_exported(FLAGS.backup_dir)  # a resumed run's model may have been exported before its kill
    if path is None:
        path = tfxfer.export_saved_model(model, export_dir,
                                         class_names=data.class_names, metadata={"metrics": metrics},
                                         top_k=FLAGS.top_k or None, warmup_examples=warmup_examples)
        run_folder.save_exported(FLAGS.backup_dir, path)
    tflite_dir = export_tflite(model, data)
    student_tflite_dir = None
    if student is not None:
        metrics["distillation"] = distillation_run.distill_and_export(
            # --lora_rank is the teacher's: the student trains its own weights.
            model, student, data.train, data.validation, config.replace(lora_rank=None), teacher_export=path,
            class_names=data.class_names, unlabelled=unlabelled, top_k=FLAGS.top_k or None,
            warmup_examples=warmup_examples)
        student_tflite_dir = export_tflite(student, data, "student")
    run_report.finish(run_dir, metrics, result, evaluation, export_path=path,
                      written=tuning_run.write(run_dir, search),
                      training_data=None if FLAGS.tfds_name else FLAGS.data_dir,
                      tflite_dir=tflite_dir, student_tflite_dir=student_tflite_dir)
    run_folder.remove_trained(FLAGS.backup_dir)


def resolve_image_size(backbone):
    """--image_size once the backbone is known to take it; without it, the backbone's default, and for your own
    backbone with a fixed input its (height, width), which need not be square. --student_image_size is checked
    against the --distill_into student here too: a size either cannot take fails before any image is decoded."""
    if parse_image_size("image_size") is not None:
        image_size = size_the_backbone_takes(backbone, "image_size")
    else:
        image_size = None
        if not isinstance(backbone, str):
            height, width = backbone.input_shape[1:3]
            if None not in (height, width) and height != width:
                image_size = (height, width)  # the library's default would be its height, both ways
        image_size = tfxfer.models.image_classifier.resolve_image_size(backbone, image_size)
    if FLAGS.distill_into and parse_image_size("student_image_size") is not None:
        size_the_backbone_takes(FLAGS.distill_into, "student_image_size")
    return image_size


def parse_image_size(name):
    """--<name> (--image_size or --student_image_size) as the library's `image_size`: None when unset, one int
    for a square (one number, or two equal ones: metrics.json records a square size as one number), else a
    (height, width) tuple. Anything else is a usage error."""
    text = FLAGS[name].value
    if text is None:
        return None
    try:
        sides = [int(side) for side in text.split(",")]
    except ValueError:
        sides = []  # not integers: refused below
    if not 1 <= len(sides) <= 2 or min(sides) < 1:
        raise app.UsageError(f"--{name} must be {_IMAGE_SIZE_FORMS}. Received: {FLAGS[name].serialize()}")
    height, width = sides[0], sides[-1]
    return height if height == width else (height, width)


def size_the_backbone_takes(backbone, name):
    """--<name>'s size (`parse_image_size`, which must not be None) once `backbone` (a registry name or your own
    model) is known to take it, as `tfxfer.models.image_classifier.resolve_image_size` checks it; a size it
    cannot take is a usage error naming the flag."""
    if isinstance(backbone, str):
        registry.get_backbone_spec(backbone)  # an unknown name is no mistake of the size: its own message
    try:
        return tfxfer.models.image_classifier.resolve_image_size(backbone, parse_image_size(name))
    except ConfigError as error:
        # The library's message as it is, the shape it received included (its hints name the teacher's flag, so
        # a student's names its own), then the flag as typed.
        reason = str(error).replace("--image_size", f"--{name}")
        taker = "--distill_into" if name == "student_image_size" else "--backbone"
        raise app.UsageError(f"{reason}. Pass --{name} as {_IMAGE_SIZE_FORMS} that {taker} takes. "
                             f"Received: {FLAGS[name].serialize()}") from error


def height_width(image_size):
    """`image_size` (one side, or a (height, width) pair) as the (height, width) the loaders take."""
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


def check_backbone_flags() -> None:
    """Usage errors of the backbone flags, before any work: flags of the other kind of --backbone would do nothing.

    --backbone_output_layer and --nosafe_mode work on your own .keras model, which main loads; --alpha and
    --weights on a registry backbone, which `tfxfer.build_image_classifier` builds (it ignores both for a model).
    """
    if FLAGS.backbone.endswith(".keras"):  # as main reads it: your own model, not a registry name
        own = f"--backbone={FLAGS.backbone} is your own .keras model"
        training_flags.refuse_if_passed(
            "alpha", f"--alpha sets the width of a MobileNet registry backbone, and {own}, whose width is the one "
            "it was saved with, so --alpha does nothing; leave it out.")
        training_flags.refuse_if_passed(
            "weights", f"--weights picks the starting weights of a registry backbone, and {own}, which starts from "
            "the weights saved in it, so --weights does nothing; leave it out.")
        return
    training_flags.refuse_if_passed(
        "backbone_output_layer",
        f"--backbone_output_layer is the layer to cut your own .keras --backbone at, and --backbone="
        f"{FLAGS.backbone} is not a .keras file: a keras.applications backbone brings its own features layer, "
        "so --backbone_output_layer does nothing. Leave it out, or pass your model as --backbone=FILE.keras.")
    training_flags.refuse_if_passed(
        "safe_mode",
        f"--nosafe_mode lets your own .keras --backbone run the Python code of its Lambda layers as it loads, and "
        f"--backbone={FLAGS.backbone} is not a .keras file: a keras.applications backbone is built, not loaded, "
        "so --nosafe_mode does nothing. Leave it out, or pass your model as --backbone=FILE.keras.")


def check_training_flags() -> None:
    """What `tfxfer.fine_tune` would refuse once the images are decoded and the model built, refused from the
    flags alone and with the library's own rules: --lora_rank with a registry backbone (a convolutional network),
    --jit_compile with --augmentation (layers XLA cannot compile)."""
    registry.check_lora(FLAGS.backbone, FLAGS.lora_rank)
    if FLAGS.jit_compile and FLAGS.augmentation:
        # The layers build_image_classifier(augmentation=True) adds (and a student's), built alone: a few
        # random-transform layers, no backbone.
        precision.check_xla(tfxfer.default_image_augmentation(seed=FLAGS.seed))


def build_student(image_size, num_classes):
    """The --distill_into student: a registry backbone at --student_image_size, else at the teacher's
    `image_size`."""
    student_size = parse_image_size("student_image_size") or image_size  # a size is never 0
    try:
        return tfxfer.build_image_classifier(
            FLAGS.distill_into, num_classes, weights=training_flags.parse_weights(FLAGS.student_weights),
            image_size=student_size, alpha=FLAGS.student_alpha, augmentation=FLAGS.augmentation, dropout=FLAGS.dropout,
            seed=FLAGS.seed, test_time_flip=FLAGS.test_time_flip)
    except ImageNetWeightsUnavailableError as error:  # its message names --weights, the teacher's flag
        raise UnavailableOfflineError(
            f"The student's ImageNet weights ({FLAGS.distill_into}) could not be downloaded (this machine may have "
            "no internet access): pass them as a file, --student_weights=/path/to/<file>.weights.h5, or start the "
            f"student from random weights with --student_weights=none. Received: --student_weights="
            f"{FLAGS.student_weights}") from error


def export_tflite(model, data, folder=""):
    """With --tflite_dir: the TFLite models of `model` and their report, in `<tflite_dir>/<folder>`, on the
    data resized to the model's input (a student's may be smaller). Returns that folder, or None without
    --tflite_dir."""
    if not FLAGS.tflite_dir:
        return None
    size = model.input_shape[1:3]

    def resized(dataset):
        if dataset is None or tuple(dataset.element_spec[0].shape[1:3]) == size:
            return dataset
        return dataset.map(lambda images, labels: (tf.image.resize(images, size, antialias=True), labels))

    tfxfer.export_tflite(model, os.path.join(tfxfer.chief_or_temp_dir(FLAGS.tflite_dir), folder),
                         train=resized(data.train), validation=resized(data.validation),
                         class_names=data.class_names)
    return os.path.join(FLAGS.tflite_dir, folder) if folder else FLAGS.tflite_dir  # the chief's, which it prints


def load_data(image_size, batch_size, run_dir):
    """Loads --data_dir or --tfds_name, validating on the data's own validation part when it has one (see
    `training_flags.validation_split`), else on a held-out share, or on nothing with --validation_split=0; decoded
    images beyond --cache_memory_mb spill to a folder in `run_dir`.

    The loaders remove that folder at process exit: the decoded images can take
    gigabytes, and the run's results do not need them.
    """
    common = dict(image_size=image_size, batch_size=batch_size, seed=FLAGS.seed,
                  cache_memory_mb=FLAGS.cache_memory_mb, spill_dir=run_dir)
    if FLAGS.tfds_name:
        # Validated on the dataset's validation (or test) split, else on a share of train; 0 is passed on as 0,
        # not None: without such a split, the loader then trains on all of train instead of holding out its default.
        return tfxfer.load_tfds_images(FLAGS.tfds_name, data_dir=FLAGS.data_dir,
                                       validation_split=FLAGS.validation_split, **common)
    if not FLAGS.data_dir:
        raise app.UsageError("Pass --data_dir (image folders) or --tfds_name.")
    if not FLAGS.label_columns and FLAGS.data_dir.lower().endswith((".csv", ".tsv")):
        raise app.UsageError(f"--data_dir is a CSV/TSV file of image paths: pass the header of its label column with "
                             f"--label_columns (several, comma-separated, for a model with a head each) and of its "
                             f"image paths with --image_column (default 'image'). "
                             f"Received: --data_dir={FLAGS.data_dir}")
    if FLAGS.label_columns:
        return tfxfer.load_image_csv(FLAGS.data_dir, label_columns=FLAGS.label_columns, image_column=FLAGS.image_column,
                                     image_size=image_size, batch_size=batch_size, seed=FLAGS.seed,
                                     validation_split=training_flags.validation_split(
                                         False, "is a CSV/TSV file, without a validation part of its own"))
    # A --data_dir that is no folder is given the share too: the loader then says what is wrong with it.
    has_own, missing = (training_flags.split_folders(FLAGS.data_dir) if tf.io.gfile.isdir(FLAGS.data_dir)
                        else (False, "is not a folder"))
    return tfxfer.load_image_folders(FLAGS.data_dir, **common,
                                     validation_split=training_flags.validation_split(has_own, missing))


if __name__ == "__main__":
    cli.run(main)
