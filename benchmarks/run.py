r"""tfxfer against the hand-written recipe and the frozen-feature probe, side by side, in one command.

Image (`../shared/data/hymenoptera`, ImageNet MobileNetV2-0.35 weights), in this
one process, for each seed:
- **tfxfer**: its defaults through the Python API (load, build, `fine_tune`);
- **baseline**: the Keras transfer-learning guide's recipe written by hand:
  10 frozen epochs, then 10 with the whole base unfrozen at Adam 1e-5;
and once (it has no randomness) the **probe**: logistic regression on the frozen
backbone's pooled features, standardised (`linear_probe.py`), at the recipe's 224x224
and again at tfxfer's input size (320x320: how much of tfxfer's lead the larger input
alone buys).

Text (`../shared/data/rt-polarity`, MiniLM), for each of `--text_seeds`: the text recipe with
its defaults in its own process, and a logistic-regression probe on frozen mean-pooled
MiniLM features (as they are: `linear_probe.py`), on the same seeded 90/10 split.

  python benchmarks/run.py --shared_dir=../shared --seeds=0,1,2 --output=benchmarks/results.json

writes the means over the seeds (and each run, and each figure's range) to
`--output`, and a markdown table to `--markdown` (default: RESULTS.md beside
the output). With `--only`, the other half of an existing `--output` is kept.
Ratios: `phase1_speedup` = the baseline's phase-1 seconds / tfxfer's;
`phase2_throughput` = tfxfer's phase-2 training images per second / the
baseline's; `end_to_end_time` = tfxfer's seconds / the baseline's.
"""

import json
import os
import sys

import image_pair
import measure
import results as results_lib
import results_table
import shared_assets
import text_pair
from absl import app, flags, logging

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_enum("only", None, ["image", "text"], "Run only this half.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Image seeds; each runs every recipe, and means are reported.")
flags.DEFINE_list("text_seeds", ["0", "1"],
                  "Text seeds (a text run took 5 to 6 minutes on 2 cores with bf16; with 3 phase-2 "
                  "epochs, 21 with AVX2 only).")
flags.DEFINE_string("output", "benchmarks/results.json", "The JSON file of results.")
flags.DEFINE_string("markdown", None, "The markdown table; default RESULTS.md beside --output.")
FLAGS = flags.FLAGS

_RATIOS = {  # name: (metric, tfxfer's figure divides the baseline's, or the other way round)
    "phase1_speedup": ("phase1_seconds", False),
    "phase2_throughput": ("phase2_images_per_second", True),
    "end_to_end_time": ("seconds", True),
}


def run_image(seeds: list[int]) -> dict:
    found = image_pair.assets(FLAGS.shared_dir)
    runs = {"tfxfer": [], "baseline": []}
    for index, seed in enumerate(seeds):
        # Alternating who goes first spreads the process's warm-up over both.
        order = ["tfxfer", "baseline"] if index % 2 == 0 else ["baseline", "tfxfer"]
        for name in order:
            run = image_pair.run_tfxfer if name == "tfxfer" else image_pair.run_keras_guide
            runs[name].append({"seed": seed, **run(*found, seed)})
            logging.info("image %s seed %d: %s", name, seed, runs[name][-1])
    results = {name: results_lib.summarise(name_runs) for name, name_runs in runs.items()}
    results["probe"] = image_pair.run_probe(*found)
    results["probe_at_tfxfer_size"] = image_pair.run_probe(*found, image_size=int(results["tfxfer"]["image_size"]))
    results["ratios"] = {
        ratio: (results["tfxfer"][metric] / results["baseline"][metric] if tfxfer_first
                else results["baseline"][metric] / results["tfxfer"][metric])
        for ratio, (metric, tfxfer_first) in _RATIOS.items()}
    results["runs"] = runs
    return results


def run_text(seeds: list[int]) -> dict:
    data_dir = os.path.join(FLAGS.shared_dir, text_pair.DATA)
    if not os.path.isdir(data_dir):
        sys.exit(f"Text data not found under {FLAGS.shared_dir!r} ({text_pair.DATA}): pass --shared_dir.")
    backbone = shared_assets.minilm_folder()
    runs = {"tfxfer": [], "probe": []}
    for seed in seeds:
        runs["tfxfer"].append({"seed": seed, **text_pair.run_tfxfer(data_dir, backbone, seed)})
        runs["probe"].append({"seed": seed, **text_pair.run_probe(data_dir, backbone, seed)})
        logging.info("text seed %d: tfxfer %s, probe %s", seed, runs["tfxfer"][-1], runs["probe"][-1])
    return {**{name: results_lib.summarise(name_runs) for name, name_runs in runs.items()}, "runs": runs}


def main(argv):
    del argv
    command = " ".join(["python", "benchmarks/run.py", *sys.argv[1:]])
    results = {}
    if FLAGS.only and os.path.exists(FLAGS.output):
        with open(FLAGS.output) as f:  # the other half's last results stay
            results = json.load(f)
    if FLAGS.only in (None, "image"):
        results["image"] = {**run_image([int(seed) for seed in FLAGS.seeds]), "command": command}
    if FLAGS.only in (None, "text"):
        results["text"] = {**run_text([int(seed) for seed in FLAGS.text_seeds]), "command": command}
    results["machine"] = measure.machine()
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(results, f, indent=2)
    markdown = FLAGS.markdown or os.path.join(os.path.dirname(FLAGS.output), "RESULTS.md")
    with open(markdown, "w") as f:
        f.write(results_table.markdown(results))
    print(f"Wrote {FLAGS.output} and {markdown}.")


if __name__ == "__main__":
    app.run(main)
