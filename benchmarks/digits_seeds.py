r"""The offline main job over several seeds, with oneDNN on and off: how robust its margin is.

Each run is `recipes/digits_transfer.py --seed=S` in a fresh process, with
`TF_ENABLE_ONEDNN_OPTS` set to 1 or 0: oneDNN changes TensorFlow's CPU kernels,
and so the rounding, as another CPU would. Prints a markdown table of every run
and the min-max of transfer, scratch and their margin.

  python benchmarks/digits_seeds.py --seeds=0,1,2,3,4 --output=runs/digits_seeds.json
"""

import json
import os
import subprocess
import sys
import tempfile

from absl import app, flags

flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds of the main job.")
flags.DEFINE_list("onednn", ["1", "0"], "TF_ENABLE_ONEDNN_OPTS values to run each seed with.")
flags.DEFINE_string("output", None, "Optional JSON file for every run's comparison.")
FLAGS = flags.FLAGS

RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "digits_transfer.py")


def run_main_job(seed: int, onednn: str) -> dict:
    """One run in a fresh process; returns its metrics.json `comparison`."""
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run([sys.executable, RECIPE, f"--seed={seed}", f"--run_dir={work}/run",
                        f"--export_dir={work}/exports"], check=True, env=env, capture_output=True)
        with open(os.path.join(work, "run", "metrics.json")) as f:
            return json.load(f)["comparison"]


def main(argv):
    del argv
    runs = []
    print("| seed | oneDNN | source | transfer | scratch | margin | pixels (LR) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in map(int, FLAGS.seeds):
        for onednn in FLAGS.onednn:
            c = run_main_job(seed, onednn)
            c.update(seed=seed, onednn=onednn, margin=c["transfer_val_accuracy"] - c["scratch_val_accuracy"])
            runs.append(c)
            print(f"| {seed} | {'on' if onednn == '1' else 'off'} | {c['source_val_accuracy']:.3f} | "
                  f"{c['transfer_val_accuracy']:.3f} | {c['scratch_val_accuracy']:.3f} | {c['margin']:+.3f} | "
                  f"{c['pixel_logistic_regression_val_accuracy']:.3f} | {c['seconds']:.0f} |", flush=True)
    for key in ("transfer_val_accuracy", "scratch_val_accuracy", "margin", "seconds"):
        values = [run[key] for run in runs]
        print(f"{key}: min {min(values):.3f}, max {max(values):.3f}, mean {sum(values) / len(values):.3f}")
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as f:
            json.dump(runs, f, indent=2)


if __name__ == "__main__":
    app.run(main)
