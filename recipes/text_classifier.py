r"""Fine-tunes a pretrained text backbone on your labelled texts and exports a SavedModel
that takes raw strings.

A keras-hub preset (name, save_to_preset folder or Hugging Face-format folder):
  python recipes/text_classifier.py --data_dir=reviews.csv --text_column=review \
      --label_column=sentiment --backbone=path/to/preset --sequence_length=64
Pretrained word vectors (GloVe/word2vec text format) and a BiLSTM:
  python recipes/text_classifier.py --data_dir=../shared/data/rt-polarity \
      --word_vectors=glove.6B.100d.txt --fine_tune_at=0
A TFDS dataset (validated on its validation split), or a multi-label CSV (label cells like "billing|urgent"):
  python recipes/text_classifier.py --tfds_name=glue/sst2
  python recipes/text_classifier.py --data_dir=tickets.csv --label_separator="|"
A head per task on one backbone (a label column per task; empty cells are unlabelled):
  python recipes/text_classifier.py --data_dir=tickets.csv --label_columns=product,priority
LoRA: phase 2 trains rank-8 adapters on the attention of the blocks it unfreezes instead of their weights:
  python recipes/text_classifier.py --data_dir=reviews.csv --backbone=path/to/preset --lora_rank=8
All GPUs of the machine (--batch_size is per replica):
  python recipes/text_classifier.py --data_dir=reviews.csv --strategy=mirrored --scale_learning_rate
--data_dir may be a .csv/.tsv file, a folder of class folders (or `train/` + `val/` folders holding them), or a
folder of one-text-per-line class files; the format is detected. Data without a validation part of its own holds
out 10 % of each class for validation unless --validation_split says otherwise; --validation_split=0 trains on all
of it.
All flags can also come from a file: --flagfile=reviews.flags
"""

import functools
import os

import cli
import distillation_run
import numpy as np
import run_folder
import run_report
import task_flags
import tensorflow as tf
import training_flags
import tuning_run
from absl import app, flags, logging

import tfxfer
from tfxfer.data import text_data

_TEXT = tfxfer.defaults.TextDefaults()

training_flags.define_flags(
    data_help="A .csv/.tsv file, a folder of class folders, or a folder of class line files; "
              "or TFDS data_dir with --tfds_name.",
    backbone=_TEXT.backbone,
    backbone_help="keras-hub preset name, preset folder or Hugging Face-format folder.",
    batch_size=_TEXT.batch_size, seed=_TEXT.seed, held_out_share=_TEXT.validation_split,
    training=_TEXT.fine_tune_config(), dropout=_TEXT.dropout, model_name="text_classifier")
flags.DEFINE_string("text_column", "text", "CSV/TSV column holding the texts.")
flags.DEFINE_string("label_column", "label", "CSV/TSV column holding the class names.")
flags.DEFINE_string("label_separator", None,
                    "Multi-label CSV/TSV: separator of the class names in a label cell (e.g. '|').")
flags.DEFINE_string("weights", "pretrained",
                    "Weights of a keras-hub --backbone: 'pretrained' (the preset's), 'none' (random init) or a "
                    ".weights.h5 file of the same backbone.")
flags.DEFINE_string("word_vectors", None, "GloVe/word2vec text-format file; used instead of --backbone.")
flags.DEFINE_enum("encoder", _TEXT.encoder, ["bilstm", "mean"], "Encoder over word vectors.")
flags.DEFINE_integer("sequence_length", _TEXT.sequence_length, "Tokens per text (longer texts are truncated).")
flags.DEFINE_enum("pooling", _TEXT.pooling, ["avg", "cls", "mean"],
                  "Pooling of a transformer's token features (\"mean\" is \"avg\").")
flags.DEFINE_float("layer_decay", None,
                   "Phase 2: layer-wise learning-rate decay of a transformer backbone (1.0 = off). "
                   f"Default {_TEXT.fine_tune_config().layer_decay} for a transformer, "
                   f"{_TEXT.fine_tune_config(word_vectors=True).layer_decay} with --word_vectors.")
flags.DEFINE_integer("distill_augment", 4,
                     "With --distill_into: altered copies of each training text (words left out, short spans "
                     "cut out) that the teacher labels for the student, besides --unlabelled_data "
                     "(tfxfer.augment_texts; 0 = none). Each copy costs a teacher pass and a student step.")
# This recipe's flags that do nothing without --distill_into, and what each does (`training_flags.refuse_without`).
_STUDENT_FLAGS = {"distill_augment": "makes texts for the student of"}
# --help lists the shared flags too, not only this file's.
flags.adopt_module_key_flags(training_flags)
flags.adopt_module_key_flags(task_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    training_flags.check_paths()
    training_flags.check_numbers()
    tuning_run.check_flags()
    distillation_run.check_flags(student="a keras-hub preset or folder, or a word-vector file",
                                 unlabelled="a text file with one text per line", student_flags=_STUDENT_FLAGS)
    task_flags.check_flags("label_column", "distill_into", "tfds_name")
    check_backbone_flags()
    if FLAGS.distill_augment < 0:  # augment_texts would refuse it with a traceback, after loading the data
        raise app.UsageError(f"--distill_augment must be >= 0 (0 makes no altered copies). "
                             f"Received: --distill_augment={FLAGS.distill_augment}")
    run_folder.check_trained(FLAGS.backup_dir)
    tfxfer.seed_everything(FLAGS.seed, deterministic=FLAGS.deterministic)
    strategy, global_batch = training_flags.create_strategy()
    data = load_data(global_batch)
    with strategy.scope():  # the model's variables are created once per replica
        model = build_model(data, FLAGS.word_vectors or FLAGS.backbone, word_vectors=bool(FLAGS.word_vectors),
                            weights=FLAGS.weights)
        # Built now, so that an unknown student or missing weights fail before any training.
        student = None
        if FLAGS.distill_into:
            student = build_model(data, FLAGS.distill_into, word_vectors=os.path.isfile(FLAGS.distill_into),
                                  weights=FLAGS.student_weights)
        trained = run_folder.load_trained(FLAGS.backup_dir)
    unlabelled = load_unlabelled(data, global_batch) if student is not None else None
    tokenized = data.map_inputs(model.preprocessor)
    config = kind_config(training_flags.fine_tune_config(global_batch), word_vectors=bool(FLAGS.word_vectors),
                         layer_decay=FLAGS.layer_decay)
    if student is not None:
        distillation_run.check_student_fine_tune_at(student, config)
    search = tuning_run.search(model, tokenized.train, config, class_counts=data.train_class_counts)
    config = config if search is None else search.config
    # Every worker runs what follows; only the chief's files are kept.
    run_dir, export_dir = training_flags.output_dirs()
    model, result = training_flags.train_or_resume(model, tokenized.train, tokenized.validation, config,
                                                   data.train_class_counts, run_dir, trained, search)
    evaluation = run_report.evaluate(model, tokenized.validation, data.class_names, multi_label=data.multi_label)
    metrics = {**result.metrics(), "data": data.summary(),
               "backbone": FLAGS.word_vectors or FLAGS.backbone, "sequence_length": FLAGS.sequence_length,
               "layer_decay": config.layer_decay,
               **training_flags.run_facts(strategy, global_batch, config, model, search)}
    path = run_folder.load_exported(FLAGS.backup_dir)  # a resumed run's model may have been exported before its kill
    if path is None:
        path = tfxfer.export_saved_model(model, export_dir, class_names=data.class_names,
                                         metadata={"metrics": metrics},
                                         warmup_examples=data.warmup_texts(FLAGS.warmup_examples))
        run_folder.save_exported(FLAGS.backup_dir, path)
    if student is not None:  # on the raw texts: distill runs each model's own tokenizer
        # --lora_rank is the teacher's: the (smaller) student trains its own weights.
        student_config = config.replace(lora_rank=None)
        if os.path.isfile(FLAGS.distill_into):  # a word-vector student: its kind's defaults
            student_config = kind_config(student_config, word_vectors=True, layer_decay=None)
        metrics["distillation"] = distillation_run.distill_and_export(
            model, student, data.train, data.validation, student_config, teacher_export=path,
            class_names=data.class_names, unlabelled=unlabelled,
            warmup_examples=data.warmup_texts(FLAGS.warmup_examples))
    run_report.finish(run_dir, metrics, result, evaluation, export_path=path,
                      written=tuning_run.write(run_dir, search),
                      training_data=None if FLAGS.tfds_name else FLAGS.data_dir)
    run_folder.remove_trained(FLAGS.backup_dir)


def check_backbone_flags() -> None:
    """Usage errors of the backbone flags, before any work: an empty --word_vectors would be taken for none, and
    flags the models' kinds do not use would do nothing, or fail only once the data has loaded.

    --word_vectors replaces --backbone. --encoder builds only word-vector models, and --pooling only transformer
    ones: the model's own kind, or the student's (a word-vector file as --distill_into, else a transformer).
    --weights and --student_weights only load keras-hub backbones: `tfxfer.build_text_classifier` refuses any
    but their default for word vectors, which bring their own.
    """
    training_flags.check_not_empty("word_vectors", "a GloVe/word2vec text-format file", "to train --backbone")
    student_word_vectors = bool(FLAGS.distill_into) and os.path.isfile(FLAGS.distill_into)  # as main decides
    if student_word_vectors:
        training_flags.refuse_if_passed(
            "student_weights", f"--student_weights are the starting weights of a keras-hub student, and "
            f"--distill_into={FLAGS.distill_into} is a word-vector file, whose vectors are the student's own; leave "
            "--student_weights out.")
    if FLAGS.word_vectors:
        training_flags.refuse_if_passed(
            "backbone", "--backbone is not used with --word_vectors, whose vectors are the model's backbone "
            "instead; leave one of them out.")
        training_flags.refuse_if_passed(
            "weights", "--weights are the weights of a keras-hub --backbone, and --word_vectors replaces it with "
            "the file's vectors, which are the model's own; leave --weights out.")
        if not FLAGS.distill_into or student_word_vectors:
            training_flags.refuse_if_passed(
                "pooling", "--pooling pools a transformer's token features, and the encoder over --word_vectors "
                "gives one vector per text, so --pooling does nothing; leave it out (--encoder=mean averages the "
                "word vectors).")
    elif not student_word_vectors:
        training_flags.refuse_if_passed(
            "encoder", "--encoder is the encoder over word vectors (--word_vectors, or a word-vector file as "
            "--distill_into), and --backbone is a transformer, which has its own, so --encoder does nothing; leave "
            "it out, or pass --word_vectors=FILE.")


def kind_config(config: tfxfer.FineTuneConfig, *, word_vectors: bool,
                layer_decay: float | None) -> tfxfer.FineTuneConfig:
    """`config` with the text defaults of the backbone's kind (transformer or word vectors) for `layer_decay`
    when it is None, and for --mixed_precision when the flag was not given."""
    defaults = _TEXT.fine_tune_config(word_vectors=word_vectors)
    changes = {"layer_decay": defaults.layer_decay if layer_decay is None else layer_decay}
    if not FLAGS["mixed_precision"].present:
        changes["mixed_precision"] = defaults.mixed_precision
    return config.replace(**changes)


def build_model(data, backbone: str, *, word_vectors: bool, weights: str):
    """A classifier of `data`'s classes on `backbone`: a word-vector file (with --encoder), or a keras-hub
    preset or folder; `weights` as --weights takes them."""
    if word_vectors:
        backbone = tfxfer.load_word_vector_backbone(
            backbone, data.texts("train"), sequence_length=FLAGS.sequence_length, encoder=FLAGS.encoder,
            max_tokens=_TEXT.max_tokens, seed=FLAGS.seed)
    return tfxfer.build_text_classifier(
        backbone, **task_flags.head_arguments(data), sequence_length=FLAGS.sequence_length, pooling=FLAGS.pooling,
        dropout=FLAGS.dropout, multi_label=data.multi_label, weights=training_flags.parse_weights(weights))


def load_unlabelled(data, batch_size):
    """Batches of --unlabelled_data's texts and of --distill_augment's copies of the training texts, or None."""
    parts = []
    if FLAGS.unlabelled_data:
        parts.append(tfxfer.load_unlabelled_texts(FLAGS.unlabelled_data, batch_size=batch_size))
    if FLAGS.distill_augment:
        # Sorted: the copies depend on the seed, not on the order the training set was shuffled in.
        texts = sorted(text.decode("utf-8") for text in data.texts("train").unbatch().as_numpy_iterator())
        copies = tfxfer.augment_texts(texts, FLAGS.distill_augment, seed=FLAGS.seed)
        logging.info("--distill_augment=%d: %d altered copies of %d training texts for the teacher to label.",
                     FLAGS.distill_augment, len(copies), len(texts))
        if copies:
            parts.append(tf.data.Dataset.from_tensor_slices(np.asarray(copies, dtype=object)).batch(batch_size))
    return functools.reduce(tf.data.Dataset.concatenate, parts) if parts else None


def load_data(batch_size):
    """Loads --tfds_name or --data_dir, validating on the data's own validation part when it has one (see
    `training_flags.validation_split`), else on a held-out share, or on nothing with --validation_split=0. A share
    passed beside a validation folder of --data_dir is the loader's ConfigError, a usage error (`cli.run`)."""
    common = dict(batch_size=batch_size, seed=FLAGS.seed)
    if FLAGS.tfds_name:
        # Validated on the dataset's validation (or test) split, else on a share of train; 0 is passed on as 0,
        # not None: without such a split, the loader then trains on all of train instead of holding out its default.
        return tfxfer.load_tfds_text(FLAGS.tfds_name, data_dir=FLAGS.data_dir,
                                     validation_split=FLAGS.validation_split, **common)
    if not FLAGS.data_dir:
        raise app.UsageError("Pass --data_dir (a .csv/.tsv file or a folder of texts) or --tfds_name.")
    common["validation_split"] = training_flags.validation_split(*own_validation_part())
    if FLAGS.label_columns:
        return tfxfer.load_text_data(FLAGS.data_dir, text_column=FLAGS.text_column, label_columns=FLAGS.label_columns,
                                     label_separator=FLAGS.label_separator, **common)
    return tfxfer.load_text_data(FLAGS.data_dir, text_column=FLAGS.text_column, label_column=FLAGS.label_column,
                                 label_separator=FLAGS.label_separator, **common)


def own_validation_part() -> tuple[bool, str]:
    """Whether --data_dir has a validation part of its own (a `val/` folder beside `train/`), and what it lacks
    when it has none, for `training_flags.validation_split`'s log. A --data_dir the loader cannot read fails here
    as it would there (`text_data.detect_format`)."""
    data_format = text_data.detect_format(FLAGS.data_dir)
    if data_format == "csv":
        return False, "is a CSV/TSV file, without a validation part of its own"
    if data_format == "line_files":
        return False, "is a folder of class files (one text per line), without a validation part of its own"
    return training_flags.split_folders(FLAGS.data_dir)


if __name__ == "__main__":
    cli.run(main)
