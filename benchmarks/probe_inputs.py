r"""What the head reads, screened with a linear probe on splits of the training photos.

tfxfer's head reads the frozen backbone's last feature map, average-pooled, of each photo
at `tfxfer.default_image_size` (320x320 for MobileNetV2). Would another input serve it
better? A linear probe answers cheaply, with the backbone run once per input size: a
logistic regression (scikit-learn, standardised features, default regularisation:
`linear_probe.py`) on the frozen features, trained on 80 % of hymenoptera/train and
scored on the other 20 % (49 photos), the same scored photos as
`choose_defaults.py --early_stopping_split`'s for each seed; with `--early_stopping_split`,
it trains on the photos the fine-tuned model trains on there, not also on its
early-stopping photos. The 153 validation images are never used.

The inputs, all from the shared MobileNetV2-0.35 weights:
- **avg_224** ... **avg_416**: the last feature map average-pooled, at that input size;
  **avg_320** is what tfxfer's head reads, and every other input is compared with it;
- **max**, **avg_and_max**, **gem**: max-pooled; average- and max-pooled side by side
  (fastai's default head); generalised-mean pooled with p = 3 (Radenović et al. 2018);
- **power_normalised**: average-pooled, then square-rooted and scaled to unit length (the
  power and L2 normalisation of Perronnin et al. 2010);
- **pyramid**: average-pooled over the whole map and over each of its four quadrants, side by
  side (a two-level spatial pyramid, He et al. 2014);
- **bilinear**: the mean outer product of block 16's 112-channel output with itself at each
  position (second-order pooling, Lin et al. 2015), signed-square-rooted and scaled to unit length;
- **recalibrated**: average-pooled, after every BatchNorm layer's statistics were estimated
  again on the training photos at 320x320, unlabelled, in batches of 32 (AdaBN, Li et al. 2016;
  the scored photos are among them, which can only favour it);
- **four_blocks**: four blocks' outputs average-pooled side by side (`BLOCKS`);
- **flip_averaged**: the mean of the photo's features and its mirror image's;
- **scales_averaged**: the mean of the features at 320 and at 416;
- **with_mirrors**, **with_other_scales**: trained on each photo's features plus its mirror
  image's, or plus those at 288 and 352, as more examples; scored on the 320 features;
- **centre_crop_averaged**, **five_crops_averaged**: the mean of the photo's features and those
  of its central crop, or of its central and four corner crops (each 80 % of its height and
  width, read at 320x320: the ten-crop evaluation of Krizhevsky et al. 2012, less the mirrors);
- **logistic_cv**, **rbf_svm**, **mlp**, **nearest_10**: the head's input (avg_320) read by
  another classifier instead of the logistic regression: its regularisation chosen by 5-fold
  cross-validation on the training photos; a support-vector machine with an RBF kernel; a
  network with one hidden layer of 256 ReLUs; a 10-nearest-neighbour vote (scikit-learn's
  defaults otherwise; all on standardised features).
All but the sizes read the photos at 320x320. Each input's summary holds, over the splits,
its mean accuracy, the mean of `photos_vs_default` (scored photos right, less avg_320's on
the same split; times the number of splits for the sum) and the shares of the splits it is
`ahead` and `behind` on.

  python benchmarks/probe_inputs.py --shared_dir=../shared --output=runs/probe_inputs.json
"""

import os

import image_pair
import keras
import linear_probe
import numpy as np
import results as results_lib
import tensorflow as tf
import three_way_split
from absl import app, flags
from sklearn.linear_model import LogisticRegressionCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tfxfer.data import image_ops
from tfxfer.data.splits import split_per_class

flags.DEFINE_string("shared_dir", os.environ.get("TFXFER_SHARED", "../shared"), "The shared assets folder.")
flags.DEFINE_list("seeds", [str(seed) for seed in range(40)], "Seeds of the 80/20 splits.")
flags.DEFINE_float("early_stopping_split", None, "Leave out this share of the photos the probe would train on, "
                   "as choose_defaults.py --early_stopping_split leaves it out for early stopping, so that the "
                   "probe trains on the photos the fine-tuned model trains on; default: it trains on all 80 %.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS

SIZES = (224, 288, 320, 352, 416)
DEFAULT_SIZE = 320
BLOCKS = ("block_13_expand_relu", "block_15_add", "block_16_project_BN", "out_relu")
SCORING_SPLIT = 0.2  # three_way_split.make's: the same scored photos for each seed
CROP_SHARE = 0.8  # of a photo's height and width, for the crop-averaged inputs
# The probe, and the other classifiers read on the head's input (each a function of the seed).
CLASSIFIERS = {
    "logistic": lambda seed: linear_probe.linear_probe(),
    # Scored by accuracy, as the recorded figures were: scikit-learn 1.11 makes log loss the default.
    "logistic_cv": lambda seed: make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=10, max_iter=5000,
                                                                                     scoring="accuracy")),
    "rbf_svm": lambda seed: make_pipeline(StandardScaler(), SVC()),
    "mlp": lambda seed: make_pipeline(StandardScaler(), MLPClassifier((256,), max_iter=2000, random_state=seed)),
    "nearest_10": lambda seed: make_pipeline(StandardScaler(), KNeighborsClassifier(10)),
}


def crops(paths: list[str], size: int) -> list[np.ndarray]:
    """Five crops of each photo at `paths`, `CROP_SHARE` of its height and width (the central one first, then the
    corners), each resized as `image_pair.photos` does: one uint8 array of all the photos per crop."""
    per_photo = []
    for path in paths:
        image = image_ops.decode_uint8(tf.io.read_file(path))
        height, width = int(image.shape[0]), int(image.shape[1])
        crop_height, crop_width = int(height * CROP_SHARE), int(width * CROP_SHARE)
        corners = [((height - crop_height) // 2, (width - crop_width) // 2), (0, 0), (0, width - crop_width),
                   (height - crop_height, 0), (height - crop_height, width - crop_width)]
        per_photo.append([image_ops.resize_uint8(image[top:top + crop_height, left:left + crop_width],
                                                 (size, size)).numpy() for top, left in corners])
    return [np.stack(crop) for crop in zip(*per_photo)]


def pooled_features(images: np.ndarray, weights: str | None) -> dict[str, np.ndarray]:
    """`pooled` of the backbone's `BLOCKS` outputs for `images` (uint8), read at their size."""
    size = images.shape[1]
    base = keras.applications.MobileNetV2(alpha=image_pair.ALPHA, include_top=False, weights=weights,
                                          input_shape=(size, size, 3))
    return pooled(keras.Model(base.input, [base.get_layer(block).output for block in BLOCKS]).predict(
        images.astype("float32") / 127.5 - 1.0, batch_size=32, verbose=0))


def pooled(block_maps: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Each of `BLOCKS`' feature maps average-pooled, the last one pooled the other ways, and block 16's
    second-order pooled, by name."""
    last = block_maps[-1]
    average = last.mean(axis=(1, 2))
    half_height, half_width = last.shape[1] // 2, last.shape[2] // 2
    quadrants = [last[:, top_or_bottom, left_or_right].mean(axis=(1, 2))
                 for top_or_bottom in (slice(None, half_height), slice(half_height, None))
                 for left_or_right in (slice(None, half_width), slice(half_width, None))]
    block_16 = block_maps[BLOCKS.index("block_16_project_BN")]
    positions = block_16.reshape(len(block_16), -1, block_16.shape[-1])
    outer = np.einsum("npc,npd->ncd", positions, positions) / positions.shape[1]
    upper_rows, upper_columns = np.triu_indices(block_16.shape[-1])  # the outer product is symmetric
    second_order = outer[:, upper_rows, upper_columns]
    return {**{block: block_map.mean(axis=(1, 2)) for block, block_map in zip(BLOCKS, block_maps)},
            "max": last.max(axis=(1, 2)),
            "gem": np.cbrt((np.maximum(last, 1e-6) ** 3).mean(axis=(1, 2))),
            "power_normalised": _unit_length(np.sqrt(average)),  # the last map is a ReLU's: never negative
            "pyramid": np.concatenate([average, *quadrants], axis=1),
            "bilinear": _unit_length(np.sign(second_order) * np.sqrt(np.abs(second_order)))}


def _unit_length(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def recalibrated_features(images: np.ndarray, weights: str | None) -> np.ndarray:
    """The last map average-pooled, after every BatchNorm layer's statistics were estimated on `images` (uint8)."""
    size = images.shape[1]
    base = keras.applications.MobileNetV2(alpha=image_pair.ALPHA, include_top=False, weights=weights,
                                          input_shape=(size, size, 3))
    inputs = images.astype("float32") / 127.5 - 1.0
    recalibrate_batchnorm(base, inputs)
    return base.predict(inputs, batch_size=32, verbose=0).mean(axis=(1, 2))


def recalibrate_batchnorm(model: keras.Model, inputs: np.ndarray, batch_size: int = 32) -> None:
    """Sets each BatchNorm layer's moving mean and variance of `model` to the mean of its batch statistics
    over `inputs`, in batches run in training mode (as PyTorch's `swa_utils.update_bn`): at momentum
    i / (i + 1) for batch i, the moving values are the running mean of the batches'. One batch of all the
    photos at 320x320 would need some 20 GB."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for index, start in enumerate(range(0, len(inputs), batch_size)):
        for layer in layers:
            layer.momentum = index / (index + 1)
        model(inputs[start:start + batch_size], training=True)


def probe_inputs(paths: list[str], weights: str) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """Each input by name: (the feature rows to train on, one array per copy of the photos; the rows to score)."""
    images = {size: image_pair.photos(paths, size) for size in SIZES}
    features = {size: pooled_features(images[size], weights) for size in SIZES}
    default = features[DEFAULT_SIZE]
    mirrored = pooled_features(images[DEFAULT_SIZE][:, :, ::-1], weights)["out_relu"]  # axis 2: the width
    cropped = [pooled_features(crop, weights)["out_relu"] for crop in crops(paths, DEFAULT_SIZE)]
    scored_as_trained = {f"avg_{size}": features[size]["out_relu"] for size in SIZES}
    scored_as_trained.update({
        "max": default["max"],
        "avg_and_max": np.concatenate([default["out_relu"], default["max"]], axis=1),
        "gem": default["gem"],
        "power_normalised": default["power_normalised"],
        "pyramid": default["pyramid"],
        "bilinear": default["bilinear"],
        "recalibrated": recalibrated_features(images[DEFAULT_SIZE], weights),
        "four_blocks": np.concatenate([default[block] for block in BLOCKS], axis=1),
        "flip_averaged": (default["out_relu"] + mirrored) / 2,
        "scales_averaged": (default["out_relu"] + features[416]["out_relu"]) / 2,
        "centre_crop_averaged": (default["out_relu"] + cropped[0]) / 2,
        "five_crops_averaged": (default["out_relu"] + sum(cropped)) / (1 + len(cropped)),
    })
    inputs = {name: ([rows], rows) for name, rows in scored_as_trained.items()}
    inputs["with_mirrors"] = ([default["out_relu"], mirrored], default["out_relu"])
    inputs["with_other_scales"] = ([default["out_relu"], features[288]["out_relu"], features[352]["out_relu"]],
                                   default["out_relu"])
    return inputs


def photos_right(train_rows: list[np.ndarray], score_rows: np.ndarray, labels: np.ndarray, seed: int,
                 early_stopping_split: float | None = None, classifier: str = "logistic") -> int:
    """How many of the seed's scored photos a probe (or another of `CLASSIFIERS`) gets right, trained on the
    others' `train_rows` (less the early-stopping photos of `three_way_split` with `early_stopping_split`)."""
    if early_stopping_split is None:
        fit, scored = split_per_class(labels, SCORING_SPLIT, seed)
    else:
        fit, _, scored = three_way_split.split_indices(labels, seed, early_stopping_split=early_stopping_split,
                                                        scoring_split=SCORING_SPLIT)
    probe = CLASSIFIERS[classifier](seed)
    probe.fit(np.concatenate([rows[fit] for rows in train_rows]), np.tile(labels[fit], len(train_rows)))
    return int((probe.predict(score_rows[scored]) == labels[scored]).sum())


def main(argv):
    del argv
    data_dir, weights = image_pair.assets(FLAGS.shared_dir)
    _, paths, labels = three_way_split.list_photos(f"{data_dir}/train")
    inputs = probe_inputs(paths, weights)
    scored = len(split_per_class(labels, SCORING_SPLIT, 0)[1])
    default = {seed: photos_right(*inputs[f"avg_{DEFAULT_SIZE}"], labels, seed, FLAGS.early_stopping_split)
               for seed in map(int, FLAGS.seeds)}

    def run(seed: int, name: str) -> dict:
        # A classifier's name reads the head's input with it; an input's, with the probe.
        input_name, classifier = (f"avg_{DEFAULT_SIZE}", name) if name in CLASSIFIERS else (name, "logistic")
        right = photos_right(*inputs[input_name], labels, seed, FLAGS.early_stopping_split, classifier)
        return {"seed": seed, "val_accuracy": right / scored, "photos_vs_default": right - default[seed],
                "ahead": int(right > default[seed]), "behind": int(right < default[seed])}

    others = [name for name in CLASSIFIERS if name != "logistic"]
    results_lib.compare_variants(run, list(default), list(inputs) + others, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
