"""How every benchmark reports: means and ranges over seeds; results as JSON on stdout, and in a file if asked."""

import json
import os
from collections.abc import Callable

from absl import logging


def report(results: dict, output: str | None) -> None:
    """Prints `results` as JSON, and writes the same text to `output` unless it is None."""
    text = json.dumps(results, indent=2)
    print(text)
    if output:
        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        with open(output, "w") as f:
            f.write(text)


def summarise(runs: list[dict]) -> dict:
    """Each numeric figure's mean over `runs`, and its `[min, max]` under `range`."""
    names = [name for name, value in runs[0].items()
             if name != "seed" and isinstance(value, (int, float)) and not isinstance(value, bool)]
    summary = {name: sum(run[name] for run in runs) / len(runs) for name in names}
    summary["range"] = {name: [min(run[name] for run in runs), max(run[name] for run in runs)] for name in names}
    return summary


def compare_variants(run_variant: Callable[[int, str], dict], seeds: list[int], variants: list[str],
                     output: str | None) -> None:
    """Runs `run_variant(seed, variant)` for every seed and, within it, every variant (each run
    logged as it ends), then reports each variant's summary over the seeds and its runs."""
    runs = {variant: [] for variant in variants}
    for seed in seeds:
        for variant in variants:
            runs[variant].append(run_variant(seed, variant))
            logging.info("%s", runs[variant][-1])
    report({variant: {**summarise(variant_runs), "runs": variant_runs} for variant, variant_runs in runs.items()},
           output)


def fine_tune_figures(result) -> dict:
    """What a comparison of training settings reports of a `tfxfer.FineTuneResult`."""
    return {"phase1_seconds": result.phase1.seconds, "phase2_seconds": result.phase2.seconds,
            "phase1_learning_rate": result.phase1.learning_rate,
            "phase1_val_accuracy": result.phase1.final_metrics["val_accuracy"],
            "val_accuracy": result.phase2.final_metrics["val_accuracy"],
            "phase1_val_loss": result.phase1.final_metrics["val_loss"],
            "val_loss": result.phase2.final_metrics["val_loss"]}
