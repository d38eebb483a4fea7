r"""Fine-tunes a pretrained text backbone on your labelled texts and exports a SavedModel
that takes raw strings.

A keras-hub preset (name, save_to_preset folder or Hugging Face-format folder):
  python recipes/text_classifier.py --data_dir=reviews.csv --text_column=review \
      --label_column=sentiment --backbone=path/to/preset --sequence_length=64
Pretrained word vectors (GloVe/word2vec text format) and a BiLSTM:
  python recipes/text_classifier.py --data_dir=../shared/data/rt-polarity \
      --word_vectors=glove.6B.100d.txt --fine_tune_at=0
--data_dir may be a .csv/.tsv file, a folder of class folders, or a folder of
one-text-per-line class files; the format is detected.
"""

import os

import keras
from absl import app, flags, logging

import tfxfer

_TRAIN = tfxfer.FineTuneConfig()
_TEXT = tfxfer.defaults.TextDefaults()

flags.DEFINE_string("data_dir", None, "A .csv/.tsv file, a folder of class folders, or a folder of class line files.")
flags.DEFINE_float("validation_split", _TEXT.validation_split, "Share of the data held out for validation (seeded, per class).")
flags.DEFINE_string("text_column", "text", "CSV/TSV column holding the texts.")
flags.DEFINE_string("label_column", "label", "CSV/TSV column holding the class names.")
flags.DEFINE_string("backbone", _TEXT.backbone, "keras-hub preset name, preset folder or Hugging Face-format folder.")
flags.DEFINE_string("word_vectors", None, "GloVe/word2vec text-format file; used instead of --backbone.")
flags.DEFINE_enum("encoder", _TEXT.encoder, ["bilstm", "mean"], "Encoder over word vectors.")
flags.DEFINE_integer("sequence_length", _TEXT.sequence_length, "Tokens per text (longer texts are truncated).")
flags.DEFINE_enum("pooling", _TEXT.pooling, ["cls", "mean"], "Pooling of a transformer's token features.")
flags.DEFINE_integer("batch_size", _TEXT.batch_size, "Batch size.")
flags.DEFINE_integer("epochs", _TRAIN.epochs, "Phase-1 epochs (frozen backbone).")
flags.DEFINE_integer("fine_tune_epochs", _TRAIN.fine_tune_epochs, "Phase-2 epochs (top of backbone unfrozen); 0 skips.")
flags.DEFINE_string("fine_tune_at", str(_TEXT.fine_tune_at),
                    "First backbone layer to unfreeze: index, fraction from the top (0.5) or layer name "
                    "(transformer_layer_8).")
flags.DEFINE_float("learning_rate", _TRAIN.learning_rate, "Phase-1 peak learning rate.")
flags.DEFINE_float("fine_tune_learning_rate", _TEXT.fine_tune_learning_rate, "Phase-2 peak learning rate.")
flags.DEFINE_integer("seed", _TEXT.seed, "Seed for the split, shuffling and weights.")
flags.DEFINE_string("run_dir", "runs/text_classifier", "Where metrics.json goes.")
flags.DEFINE_string("export_dir", "saved_models", "Base folder of exported models.")
flags.DEFINE_string("model_name", "text_classifier", "Exports go to <export_dir>/<model_name>/<version>/.")
flags.DEFINE_integer("warmup_examples", 3, "Validation texts in the TF Serving warmup file; 0 writes none.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if not FLAGS.data_dir:
        raise app.UsageError("Pass --data_dir: a .csv/.tsv file or a folder of texts.")
    keras.utils.set_random_seed(FLAGS.seed)
    data = tfxfer.load_text_data(
        FLAGS.data_dir, batch_size=FLAGS.batch_size, validation_split=FLAGS.validation_split or None,
        seed=FLAGS.seed, text_column=FLAGS.text_column, label_column=FLAGS.label_column)
    backbone = FLAGS.backbone
    if FLAGS.word_vectors:
        backbone = tfxfer.load_word_vector_backbone(
            FLAGS.word_vectors, data.texts("train"), sequence_length=FLAGS.sequence_length,
            encoder=FLAGS.encoder, max_tokens=_TEXT.max_tokens, seed=FLAGS.seed)
    model = tfxfer.build_text_classifier(
        backbone, len(data.class_names), sequence_length=FLAGS.sequence_length, pooling=FLAGS.pooling,
        dropout=_TEXT.dropout)
    tokenized = data.map_inputs(model.preprocessor)
    config = _TRAIN.replace(
        epochs=FLAGS.epochs, fine_tune_epochs=FLAGS.fine_tune_epochs,
        fine_tune_at=tfxfer.parse_fine_tune_at(FLAGS.fine_tune_at),
        learning_rate=FLAGS.learning_rate, fine_tune_learning_rate=FLAGS.fine_tune_learning_rate)
    result = tfxfer.fine_tune(model, tokenized.train, tokenized.validation, config=config,
                              class_counts=data.train_class_counts)
    metrics = {**result.metrics(), "data": data.summary(),
               "backbone": FLAGS.word_vectors or FLAGS.backbone, "sequence_length": FLAGS.sequence_length,
               "batch_size": FLAGS.batch_size}
    tfxfer.write_metrics(FLAGS.run_dir, metrics)
    path = tfxfer.export_saved_model(model, os.path.join(FLAGS.export_dir, FLAGS.model_name),
                                     class_names=data.class_names, metadata={"metrics": metrics},
                                     warmup_examples=data.warmup_texts(FLAGS.warmup_examples))
    logging.info("Exported to %s", path)


if __name__ == "__main__":
    app.run(main)
