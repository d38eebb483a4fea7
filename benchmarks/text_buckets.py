r"""Training batches grouped by word count vs by the model's token count, side by side.

On `../shared/data/rt-polarity` with MiniLM (the text recipe's split, seed 0 by
default), for both groupings of the same training texts:
- **padding**: tokens the trimmed batches carry / tokens the texts hold (1.0
  would be no padding at all); machine-independent;
- **seconds**: one forward pass of MiniLM over every training batch (what phase
  1's feature extraction pays, and every phase-2 epoch in proportion: a
  transformer's cost grows with the tokens it is given). After an untimed pass
  over each (tracing, and kernels set up for every batch shape), the two
  alternate for `--rounds` rounds in one process, each round in the other
  order, since a shared machine's speed drifts.

  python benchmarks/text_buckets.py --shared_dir=../shared --output=runs/text_buckets.json
"""

import os
import sys
import time

import results as results_lib
import shared_assets
import tensorflow as tf
import text_pair
from absl import app, flags

import tfxfer
from tfxfer.data import token_batches
from tfxfer.training import feature_cache

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_integer("seed", 0, "Seed of the split and the shuffle.")
flags.DEFINE_integer("rounds", 3, "Timed passes of each grouping, alternating.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS


def forward_pass(batches: tf.data.Dataset, forward) -> dict:
    """Seconds of one pass of `forward` over `batches`, and the tokens they held and carried."""
    held = carried = 0
    start = time.perf_counter()
    for inputs, _ in batches:
        forward(inputs).numpy()
        mask = inputs["padding_mask"].numpy()
        held, carried = held + int(mask.sum()), carried + mask.size
    return {"seconds": time.perf_counter() - start, "padding": carried / held, "tokens": carried,
            "batches": int(batches.cardinality())}


def main(argv):
    del argv
    data_dir = os.path.join(FLAGS.shared_dir, text_pair.DATA)
    if not os.path.isdir(data_dir):
        sys.exit(f"Text data not found under {FLAGS.shared_dir!r} ({text_pair.DATA}): pass --shared_dir.")
    data = tfxfer.load_text_data(data_dir, batch_size=32, validation_split=text_pair.VALIDATION_SPLIT,
                                 seed=FLAGS.seed)
    model = tfxfer.build_text_classifier(shared_assets.minilm_folder(), len(data.class_names))
    extractor, _ = feature_cache.split_at_head(model)  # what phase 1 caches: pooled backbone features
    forward = tf.function(lambda inputs: extractor(inputs, training=False), reduce_retracing=True)
    groupings = {
        "words": token_batches.preprocess_dataset(data.train, model.preprocessor),  # as loaded
        "tokens": data.map_inputs(model.preprocessor).train,  # regrouped by the tokenizer's counts
    }
    for batches in groupings.values():
        forward_pass(batches, forward)
    passes = {name: [] for name in groupings}
    for round_index in range(FLAGS.rounds):
        for name in sorted(groupings, reverse=bool(round_index % 2)):
            passes[name].append(forward_pass(groupings[name], forward))
    results = {name: {"seconds": [run["seconds"] for run in runs], **{key: runs[0][key] for key in
                                                                       ("padding", "tokens", "batches")}}
               for name, runs in passes.items()}
    mean_seconds = {name: sum(result["seconds"]) / len(result["seconds"]) for name, result in results.items()}
    results["ratios"] = {"tokens_vs_words_seconds": mean_seconds["tokens"] / mean_seconds["words"],
                         "tokens_vs_words_padded_tokens": results["tokens"]["tokens"] / results["words"]["tokens"]}
    results_lib.report(results, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
