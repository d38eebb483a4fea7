r"""Candidate text phase-2 defaults on MiniLM, measured on splits of the training data only.

Variants of phase 2 (phase 1 is the same in all of them):
- **half2**: the text recipe's defaults: 2 epochs with the top half of the backbone's layers unfrozen
  (`fine_tune_at=0.5`: every transformer block of MiniLM);
- **half3**: the same for 3 epochs (the defaults before half2 ended ahead of it);
- **top1**: 1 epoch with the top fifth unfrozen (`fine_tune_at=0.2`: MiniLM's
  top 3 of 6 blocks);
- **top1_fast**: top1 at 4 times the learning rate (2e-4);
- **half2_halfway**: half2 ending halfway back to phase 1's weights (`fine_tune_interpolation=0.5`,
  the image default; the text defaults keep phase 2's own weights).

The recipe's validation texts (its seeded 10 % of ../shared/data/rt-polarity)
are never looked at: each seed takes the recipe's training texts, holds out 20 %
of them (seeded, stratified), trains on the other 80 % and scores on those.

  python benchmarks/choose_text_defaults.py --shared_dir=../shared --seeds=0,1,2 --output=runs/choose_text.json
"""

import os
import sys
import tempfile
import time

import keras
import numpy as np
import results as results_lib
import shared_assets
import text_pair
from absl import app, flags
from sklearn.model_selection import train_test_split

import tfxfer
from tfxfer.defaults import TextDefaults

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the splits and of training.")
flags.DEFINE_list("variants", ["half3", "half2"], "Which variants to run.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS

_VARIANTS = {  # name: FineTuneConfig changes to the text recipe's defaults
    "half2": {"fine_tune_epochs": 2, "fine_tune_at": 0.5},
    "half3": {"fine_tune_epochs": 3, "fine_tune_at": 0.5},
    "top1": {"fine_tune_epochs": 1, "fine_tune_at": 0.2},
    "top1_fast": {"fine_tune_epochs": 1, "fine_tune_at": 0.2, "fine_tune_learning_rate": 2e-4},
    "half2_halfway": {"fine_tune_epochs": 2, "fine_tune_at": 0.5, "fine_tune_interpolation": 0.5},
}
HELD_OUT = 0.2


def write_split(texts: list[str], labels: np.ndarray, seed: int, folder: str) -> None:
    """`folder/train/<label>/` and `folder/val/<label>/`, one text per file: a fixed split the loader keeps."""
    train, held_out, train_labels, held_out_labels = train_test_split(
        texts, labels, test_size=HELD_OUT, stratify=labels, random_state=seed)
    for split, split_texts, split_labels in (("train", train, train_labels), ("val", held_out, held_out_labels)):
        for index, (text, label) in enumerate(zip(split_texts, split_labels)):
            class_dir = os.path.join(folder, split, f"class_{label}")
            os.makedirs(class_dir, exist_ok=True)
            with open(os.path.join(class_dir, f"{index:05d}.txt"), "w", encoding="utf-8") as f:
                f.write(text)


def run_variant(data_dir: str, backbone: str, seed: int, variant: str) -> dict:
    (texts, labels), _ = text_pair.split_texts(data_dir, seed)  # the recipe's training texts only
    with tempfile.TemporaryDirectory() as folder:
        write_split(texts, labels, seed, folder)
        keras.utils.set_random_seed(seed)
        start = time.perf_counter()
        data = tfxfer.load_text_data(folder, seed=seed)
        model = tfxfer.build_text_classifier(backbone, len(data.class_names), sequence_length=128)
        tokenized = data.map_inputs(model.preprocessor)
        config = TextDefaults.fine_tune_config().replace(**_VARIANTS[variant])
        result = tfxfer.fine_tune(model, tokenized.train, tokenized.validation, config=config,
                                  class_counts=data.train_class_counts, verbose=2)
    return {"seed": seed, "variant": variant, "seconds": time.perf_counter() - start,
            **results_lib.fine_tune_figures(result)}


def main(argv):
    del argv
    data_dir = os.path.join(FLAGS.shared_dir, text_pair.DATA)
    if not os.path.isdir(data_dir):
        sys.exit(f"rt-polarity not found under {FLAGS.shared_dir!r}: pass --shared_dir or set TFXFER_SHARED.")
    backbone = shared_assets.minilm_folder()
    results_lib.compare_variants(lambda seed, variant: run_variant(data_dir, backbone, seed, variant),
                                 list(map(int, FLAGS.seeds)), FLAGS.variants, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
