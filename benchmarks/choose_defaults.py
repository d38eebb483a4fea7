r"""Candidate image defaults, measured on splits of the training data only.

Each variant changes one thing from tfxfer's defaults:
- **clean**: the defaults: phase 1 trains the head on the clean images' features,
  computed once, then phase 2 (which augments);
- **full**: phase 1 runs the backbone on augmented images every epoch (`cache_features=False`);
- **aug2**: phase 1 trains on two cached passes of augmented images
  (`FineTuneConfig(augmented_feature_passes=2)`);
- **ema**: phase 2 validates and ends with a moving average of its weights
  (`FineTuneConfig(fine_tune_ema_momentum=0.9)`: about the last 10 steps, 1.5 epochs here);
- **head_rate**: phase 1 trains the head at 1e-2, not 3e-3 (`learning_rate=1e-2`): a linear
  probe closer to convergence in the same epochs, before phase 2 starts from it;
- **lr3x**: phase 2 at 3 times the default's peak learning rate (`fine_tune_learning_rate=3e-4`);
- **lr_third**: phase 2 at a third of the default's peak learning rate (`fine_tune_learning_rate=3e-5`);
- **deeper**: phase 2 unfreezes the top 60 % of the backbone's layers, not 30 % (`fine_tune_at=0.6`);
- **shallower**: phase 2 unfreezes the top 15 % of the backbone's layers (`fine_tune_at=0.15`);
- **no_early_stopping**: both phases run all their epochs (`early_stopping_patience=None`),
  and the model is the last epoch's, not the one with the lowest validation loss;
- **five_epochs**: the same, with phase 2's schedule over 5 epochs, not 10
  (`fine_tune_epochs=5, early_stopping_patience=None`): about the time early stopping leaves it;
- **weight_decay**: AdamW's decoupled weight decay at 1e-2 in both phases, not 1e-4;
- **no_label_smoothing**: the plain cross-entropy loss, without the default's label smoothing of 0.1;
- **label_smoothing_0.2**: label smoothing at 0.2, twice the default's;
- **flip_only**: phase 2's augmentation only mirrors the images, without the default's
  random rotation, zoom and shift (`default_image_augmentation(rotation=0, zoom=0, translation=0)`);
- **no_flip**: phase 2's augmentation without the mirror image: the default's random rotation,
  zoom and shift only (`default_image_augmentation(flip=None)`);
- **stronger_augmentation**: phase 2's rotation, zoom and shift at 1.5 times the default's ranges
  (`default_image_augmentation(rotation=0.15, zoom=0.3, translation=0.15)`);
- **three_resamplings**: phase 2's rotation, zoom and shift as Keras' `RandomRotation`, `RandomZoom` and
  `RandomTranslation`, one resampling each, with the same ranges: the default augmentation before
  `tfxfer.RandomAffine` drew all three into one resampling;
- **probe40**: phase 1 over 40 epochs, not 20 (`FineTuneConfig(epochs=40)`);
- **batch16**: batches of 16 images, not 32, in both phases (`load_image_folders(batch_size=16)`);
- **probe_head**: phase 2 starts from the converged linear probe (the benchmark's: logistic regression
  at C = 1 on the standardised features of the training photos, `probe_head.py`) instead of the head
  phase 1's AdamW epochs trained;
- **lr_finder**: phase 1 at the learning-rate finder's suggestion, swept on the training data's
  cached features right before it, not at the config's 3e-3 (`fine_tune(find_learning_rate=1)`);
- **no_dropout**, **dropout_0.2**, **dropout_0.5**: the head's dropout rate at 0, 0.2 or 0.5
  (`build_image_classifier(dropout=...)`);
- **center_crop**, **pad**: every image (training, validation and scored) cropped to the
  model's aspect ratio around its centre, or padded to it with black, before it is resized
  (`aspect_ratio.py`), not stretched to it as tfxfer's loaders and export do;
- **mixup**, **cutmix**: phase 2 trains on mixed images, mixup's blend of two images or CutMix's box of
  one pasted into the other, with the loss mixed alike (`mixup.py`);
- **sam**, **sam_0.01**, **sam_0.002**: phase 2 takes sharpness-aware steps, each at the weights moved
  towards a higher loss nearby by rho = 0.05 (the paper's), 0.01 or 0.002 (`sharpness.py`);
- **block_rates**, **block_rates_3x**: phase 2 trains every backbone layer, at rates falling block by block
  from 1e-4 (or 3e-4) at the top to a hundredth of it at the stem (`discriminative.py`);
- **size224**, **size288**: images and model at 224x224 (MobileNetV2's pretraining size) or
  288x288, not tfxfer's default size (320x320, `tfxfer.default_image_size`).

The others run at tfxfer's default size, or at `--image_size`.

Every run also scores its final model two more ways, paired with its `val_accuracy`: the
same training run, so no training noise between them:
- with flip test-time augmentation (`flip_averaged_val_accuracy`: each image's
  probabilities averaged with its mirror image's);
- with its weights halfway between phase 1's and its final ones (`interpolated_val_accuracy`:
  WiSE-FT's weight-space ensemble of the linear probe and the fine-tuned model, Wortsman
  et al. 2022, at its usual mixing of 0.5; with `--fine_tune_interpolation=1`, halfway to
  phase 2's own weights, as the default `fine_tune_interpolation` ends phase 2 itself);
- with phase 1's weights when the final model's `val_loss` did not beat phase 1's, else its own
  (`best_phase_val_accuracy`: early stopping that also counts the weights phase 2 starts from);
- at other `fine_tune_interpolation` values (`val_accuracy_by_interpolation`: for each of
  0.25, 0.75 and 1, the weights that far from phase 1's towards phase 2's own, which the
  run's final weights and phase 1's determine whenever its own interpolation is above 0).

The 153 validation images of ../shared/data/hymenoptera are never looked at: each
seed splits `train/` 80/20 (seeded, stratified), trains on 80 % and scores on the
other 20 % (49 images), which `fine_tune` also validates on (early stopping). With
`--early_stopping_split`, `fine_tune` validates on that share of the 80 % instead and
trains on the rest (`three_way_split.py`), so the scored images are ones nothing chose on.

  python benchmarks/choose_defaults.py --shared_dir=../shared --seeds=0,1,2,3,4 --output=runs/choose_defaults.json
"""

import dataclasses
import os
import tempfile
import time

import aspect_ratio
import candidates
import discriminative
import image_pair
import keras
import mixup
import model_scores
import probe_head
import results as results_lib
import sharpness
import three_way_split
from absl import app, flags

import tfxfer

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds of the splits and of training.")
flags.DEFINE_list("variants", ["clean", "full", "aug2", "ema"], "Which variants to run.")
flags.DEFINE_integer("image_size", None, "Input size of every variant but size224 and size288; default: "
                     "tfxfer's (320 for MobileNetV2).")
flags.DEFINE_integer("epochs", None, "Phase-1 epochs of every variant; default: FineTuneConfig's.")
flags.DEFINE_float("dropout", None, candidates.DROPOUT_FLAG_HELP)
flags.DEFINE_float("fine_tune_interpolation", None, candidates.INTERPOLATION_FLAG_HELP)
flags.DEFINE_float("early_stopping_split", None, "Fraction of the training part (80 %) held out as fine_tune's "
                   "validation data, for early stopping, so that the scoring part is one nothing chose on "
                   "(three_way_split.py); default: none, fine_tune validates on the scoring part.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Variant:
    """What a variant changes from tfxfer's defaults."""

    cache_features: bool = True
    config_changes: dict = dataclasses.field(default_factory=dict)  # FineTuneConfig fields
    image_size: int | None = None  # None: --image_size, or tfxfer's default size
    augmentation: dict | None = None  # default_image_augmentation arguments; None: the default augmentation
    three_resamplings: bool = False  # the default ranges, as three Keras layers that each resample
    batch_size: int = 32  # load_image_folders' default
    aspect: str | None = None  # an `aspect_ratio.MODES` resize; None: tfxfer's, which stretches to the model's size
    probe_head: bool = False  # phase 2 starts from the converged linear probe (`probe_head.py`)
    mixing: str | None = None  # a `mixup.MODES` mixing of phase 2's images; None: the images as they are
    sharpness_aware: float | None = None  # phase 2 takes SAM's steps of this rho (`sharpness.py`); None: its own
    block_rates: bool = False  # `layer_decay` spreads phase 2's rates over the conv blocks (`discriminative.py`)


_VARIANTS = {
    **{name: Variant(config_changes=changes) for name, changes in candidates.CONFIG_CHANGES.items()},
    # candidates.build_changes and candidates.fit_changes have their changes.
    **{name: Variant() for name in (*candidates.BUILD_CHANGES, *candidates.FIT_CHANGES)},
    "full": Variant(cache_features=False),
    "flip_only": Variant(augmentation={"rotation": 0, "zoom": 0, "translation": 0}),
    "no_flip": Variant(augmentation={"flip": None}),
    "stronger_augmentation": Variant(augmentation={"rotation": 0.15, "zoom": 0.3, "translation": 0.15}),
    "three_resamplings": Variant(three_resamplings=True),
    "size224": Variant(image_size=224),
    "size288": Variant(image_size=288),
    "batch16": Variant(batch_size=16),
    "center_crop": Variant(aspect="center_crop"),
    "pad": Variant(aspect="pad"),
    "probe_head": Variant(probe_head=True),
    **{mode: Variant(mixing=mode) for mode in mixup.MODES},
    "sam": Variant(sharpness_aware=sharpness.RHO),
    "sam_0.01": Variant(sharpness_aware=0.01),
    "sam_0.002": Variant(sharpness_aware=0.002),
    # The whole backbone, the stem at a hundredth of the top block's rate; then the same at 3x the rate.
    "block_rates": Variant(config_changes={"fine_tune_at": 1.0, "layer_decay": discriminative.DECAY},
                           block_rates=True),
    "block_rates_3x": Variant(config_changes={"fine_tune_at": 1.0, "layer_decay": discriminative.DECAY,
                                              "fine_tune_learning_rate": 3e-4}, block_rates=True),
}


def run_variant(data_dir: str, weights: str, seed: int, variant: str) -> dict:
    train_dir = os.path.join(data_dir, "train")
    if FLAGS.early_stopping_split is None:
        return train_and_score(train_dir, None, weights, seed, variant)
    with tempfile.TemporaryDirectory() as links:
        fit_dir, scoring_dir = three_way_split.make(train_dir, links, seed,
                                                    early_stopping_split=FLAGS.early_stopping_split)
        return train_and_score(fit_dir, scoring_dir, weights, seed, variant)


def train_and_score(fit_dir: str, scoring_dir: str | None, weights: str, seed: int, variant: str) -> dict:
    """Trains `variant` on `fit_dir` and scores it on `scoring_dir`; without one, on 20 % of `fit_dir` held out
    for validation, which early stopping then also looks at."""
    spec = _VARIANTS[variant]
    with (aspect_ratio.resizing(spec.aspect), mixup.mixing(spec.mixing),
          sharpness.sharpness_aware(spec.sharpness_aware), discriminative.block_rates(spec.block_rates)):
        return _train_and_score(fit_dir, scoring_dir, weights, seed, variant, spec)


def _train_and_score(fit_dir: str, scoring_dir: str | None, weights: str, seed: int, variant: str,
                     spec: Variant) -> dict:
    image_size = spec.image_size or FLAGS.image_size or tfxfer.default_image_size("mobilenet_v2")
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    load = dict(image_size=(image_size, image_size), seed=seed, batch_size=spec.batch_size)
    data = tfxfer.load_image_folders(fit_dir, validation_split=None if scoring_dir else 0.2, **load)
    scoring = data.validation if scoring_dir is None else tfxfer.load_image_folders(scoring_dir, **load).train
    augmentation = (three_resamplings(seed) if spec.three_resamplings
                    else True if spec.augmentation is None
                    else tfxfer.default_image_augmentation(**spec.augmentation, seed=seed))
    model = tfxfer.build_image_classifier("mobilenet_v2", len(data.class_names), weights=weights,
                                          image_size=image_size, alpha=image_pair.ALPHA, seed=seed,
                                          augmentation=augmentation,
                                          **candidates.build_changes(variant, FLAGS.dropout))
    phase1 = model_scores.Phase1Weights()  # after the probe's head, which it then records as phase 1's
    callbacks = [*([probe_head.ConvergedProbeHead(data.train)] if spec.probe_head else []), phase1]
    config = candidates.config(spec.config_changes, FLAGS.epochs, FLAGS.fine_tune_interpolation)
    result = tfxfer.fine_tune(model, data.train, data.validation, class_counts=data.train_class_counts,
                              config=config, callbacks=callbacks, cache_features=spec.cache_features, verbose=0,
                              **candidates.fit_changes(variant))
    seconds = time.perf_counter() - start
    # Accuracies on `scoring`: they replace fine_tune's own, which are on its validation data; the losses stay its.
    scores = {"phase1_val_accuracy": model_scores.interpolated_accuracy(model, phase1.weights, scoring, mixing=0.0),
              "val_accuracy": model_scores.accuracy(model, scoring)}
    phase2_better = result.phase2.final_metrics["val_loss"] < result.phase1.final_metrics["val_loss"]
    return {"seed": seed, "variant": variant, "seconds": seconds,
            **results_lib.fine_tune_figures(result), **scores,
            "flip_averaged_val_accuracy": model_scores.accuracy(model, scoring, flip_averaged=True),
            "interpolated_val_accuracy": model_scores.interpolated_accuracy(model, phase1.weights, scoring),
            "best_phase_val_accuracy": scores["val_accuracy" if phase2_better else "phase1_val_accuracy"],
            "val_accuracy_by_interpolation": model_scores.other_interpolations(
                model, phase1.weights, scoring, config.fine_tune_interpolation)}


def three_resamplings(seed: int) -> keras.Sequential:
    """The default augmentation's mirror image, rotation, zoom and shift, as Keras layers that resample one by one."""
    flip, affine = tfxfer.default_image_augmentation(seed=seed).layers  # its ranges, so the two cannot drift apart
    return keras.Sequential([
        flip,
        keras.layers.RandomRotation(affine.rotation, fill_mode=affine.fill_mode, seed=seed),
        keras.layers.RandomZoom((-affine.zoom, affine.zoom), fill_mode=affine.fill_mode, seed=seed),
        keras.layers.RandomTranslation(affine.translation, affine.translation, fill_mode=affine.fill_mode, seed=seed),
    ], name="augmentation")


def main(argv):
    del argv
    candidates.exit_on_unknown(FLAGS.variants, _VARIANTS)
    image_pair.compare_variants(run_variant, FLAGS.shared_dir, FLAGS.seeds, FLAGS.variants, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
