r"""What mixed precision and XLA do to phase-2 throughput and accuracy on this machine.

Fine-tunes ImageNet MobileNetV2-0.35 (224x224) on the ants/bees photos four
ways, `FineTuneConfig(mixed_precision=..., jit_compile=...)`: float32,
mixed_bfloat16, float32 with XLA, and mixed_bfloat16 with XLA. All run in one
process, and each seed runs the variants in a rotated order, so that load from
other jobs on the machine falls on every variant alike. Reported per variant:
phase-2 training images per second (epochs after the first, which traces and,
with XLA, compiles; validation passes excluded) as a ratio to float32's in the
same seed, and the validation accuracy of the trained model (float32 again
after `fine_tune`) and as measured during training in the variant's own policy.

  python benchmarks/precision.py --shared_dir=../shared --seeds=0,1,2 --output=runs/precision.json
"""

import os
import time

import keras
import measure
import numpy as np
import results as results_lib
from absl import app, flags, logging

import tfxfer
from tfxfer.training import precision

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", ["0", "1"], "Seeds; each runs every variant, in an order rotated per seed.")
flags.DEFINE_list("variants", ["float32", "mixed_bfloat16", "jit", "mixed_bfloat16+jit"],
                  "Variants: float32, mixed_bfloat16, mixed_float16, each optionally +jit; 'jit' is float32+jit.")
flags.DEFINE_integer("epochs", 2, "Phase-1 epochs (the head, on cached features).")
flags.DEFINE_integer("fine_tune_epochs", 3, "Phase-2 epochs; the first is left out of the throughput.")
flags.DEFINE_bool("augmentation", False,
                  "Build the models with tfxfer's random augmentation. Off by default: its RandomAffine "
                  "has no XLA kernel, so the +jit variants cannot run with it.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS

IMAGE_SIZE = 224
WEIGHTS = "weights/mobilenet_v2_0.35_224_no_top.weights.h5"


def parse_variant(name: str) -> dict:
    """`FineTuneConfig` fields of a variant name: "mixed_bfloat16+jit" -> mixed precision and XLA."""
    parts = name.split("+")
    policy = None if parts[0] in ("float32", "jit") else parts[0]
    return {"mixed_precision": policy, "jit_compile": "jit" in parts}


def run_variant(name: str, seed: int, data) -> dict:
    """Fine-tunes a fresh model as variant `name`; its phase-2 throughput, accuracies and times."""
    keras.utils.set_random_seed(seed)
    model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names), image_size=IMAGE_SIZE,
                                          alpha=0.35, seed=seed, augmentation=FLAGS.augmentation,
                                          weights=os.path.join(FLAGS.shared_dir, WEIGHTS))
    config = tfxfer.FineTuneConfig(epochs=FLAGS.epochs, fine_tune_epochs=FLAGS.fine_tune_epochs,
                                   early_stopping_patience=None, **parse_variant(name))
    throughput = measure.TrainingThroughput(_count(data.train))
    start = time.perf_counter()
    # Phase 1 on cached features (no augmentation there): it is the same for every
    # variant but its precision, and phase 2 is what this benchmark measures.
    result = tfxfer.fine_tune(model, data.train, data.validation, config=config, callbacks=[throughput],
                              cache_features=True, verbose=0)
    seconds = time.perf_counter() - start
    policies = {layer.compute_dtype for layer in model._flatten_layers(recursive=True)}
    return {
        "variant": name, "seed": seed,
        "phase2_images_per_second": throughput.images_per_second(run=-1),
        "phase2_epoch_seconds": throughput.runs[-1],
        "val_accuracy": _float32_accuracy(model, data.validation),
        "val_accuracy_in_training_policy": result.phase2.final_metrics["val_accuracy"],
        "phase1_seconds": result.phase1.seconds, "phase2_seconds": result.phase2.seconds, "seconds": seconds,
        "compute_dtypes_after_training": sorted(policies),
    }


def summarize(runs: list[dict]) -> dict:
    """Per variant: the mean over seeds of the throughput ratio to float32 (same seed) and of the accuracies."""
    float32 = {run["seed"]: run["phase2_images_per_second"] for run in runs if run["variant"] == "float32"}
    summary = {}
    for name in dict.fromkeys(run["variant"] for run in runs):
        mine = [run for run in runs if run["variant"] == name]
        ratios = [run["phase2_images_per_second"] / float32[run["seed"]] for run in mine if run["seed"] in float32]
        summary[name] = {
            "phase2_throughput_vs_float32": float(np.mean(ratios)) if ratios else None,
            "phase2_throughput_vs_float32_per_seed": ratios,
            "phase2_images_per_second": float(np.mean([run["phase2_images_per_second"] for run in mine])),
            "val_accuracy": float(np.mean([run["val_accuracy"] for run in mine])),
            "val_accuracy_in_training_policy": float(np.mean([run["val_accuracy_in_training_policy"]
                                                              for run in mine])),
        }
    return summary


def main(argv):
    del argv
    logging.set_verbosity("info")
    seeds = [int(seed) for seed in FLAGS.seeds]
    runs = []
    for index, seed in enumerate(seeds):
        data = tfxfer.load_image_folders(os.path.join(FLAGS.shared_dir, "data", "hymenoptera"),
                                         image_size=(IMAGE_SIZE, IMAGE_SIZE), seed=seed)
        shift = index % len(FLAGS.variants)
        for name in FLAGS.variants[shift:] + FLAGS.variants[:shift]:
            runs.append(run_variant(name, seed, data))
            logging.info("%s", runs[-1])
    results_lib.report({
        "summary": summarize(runs), "runs": runs,
        "auto_resolves_to": precision.resolve("auto"),
        "cpu_bf16_flags": sorted(precision.read_cpu_flags() & {"avx512_bf16", "amx_bf16"}),
        "config": {"epochs": FLAGS.epochs, "fine_tune_epochs": FLAGS.fine_tune_epochs, "image_size": IMAGE_SIZE,
                   "augmentation": FLAGS.augmentation},
        "machine": measure.machine(),
    }, FLAGS.output)


def _count(dataset) -> int:
    return sum(int(labels.shape[0]) for _, labels in dataset)


def _float32_accuracy(model, validation) -> float:
    """Validation accuracy of the model as trained, computed as it will be served: in float32."""
    correct = total = 0
    for images, labels in validation:
        probabilities = np.asarray(model.predict_on_batch(images))
        # Two classes make a binary head: one sigmoid unit.
        predicted = (probabilities[:, 0] > 0.5).astype(int) if probabilities.shape[-1] == 1 else (
            np.argmax(probabilities, axis=-1))
        correct += int(np.sum(predicted == np.asarray(labels).reshape(-1)))
        total += len(predicted)
    return correct / total


if __name__ == "__main__":
    app.run(main)
