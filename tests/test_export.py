"""Tests for tfxfer.export: versioned SavedModels that plain TensorFlow serves.

The key check reloads exported models in a fresh Python process that imports
only TensorFlow (the serving child of `_serving_child.py`, as TF Serving would:
no Keras model code, no tfxfer), feeds real JPEG/PNG bytes to the signatures and
compares with the Keras model.
Models use a tiny conv backbone with a non-square 32x48 input, so a
height/width mix-up anywhere in the serving path shows.
"""

import hashlib
import json
import os
import struct
import threading
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from _serving_child import run_child

import tfxfer
from tfxfer.data import image_ops
from tfxfer.export import versioning

HEIGHT, WIDTH = 32, 48
CLASS_NAMES = ["cat", "dog", "café au lait"]  # non-ASCII survives labels.txt
BINARY_NAMES = ["no", "yes"]


def _tiny_backbone():
    inputs = keras.Input((HEIGHT, WIDTH, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    return keras.Model(inputs, x, name="tiny")


def _classifier(num_classes=3, spread_over=None):
    """A random model; with images `spread_over`, its head is centred on them, so they land in several classes.

    Its BatchNorm has moving statistics and a scale and shift far from the initial ones, so the
    export's folding of it into the convolution (on by default) changes the kernel and bias.
    """
    model = tfxfer.build_image_classifier(
        _tiny_backbone(), num_classes=num_classes, preprocessing="tf", augmentation=False)
    batch_norm = model.backbone.get_layer("bn")
    rng = np.random.default_rng(5)
    for variable, low, high in ((batch_norm.gamma, 0.5, 2.0), (batch_norm.beta, -1.0, 1.0),
                                (batch_norm.moving_mean, -0.5, 0.5), (batch_norm.moving_variance, 0.1, 3.0)):
        variable.assign(rng.uniform(low, high, variable.shape))
    head = model.get_layer("predictions")
    head.kernel.assign(head.kernel * 5.0)  # sharper than the random init
    if spread_over is not None:
        # Every class's (or the one sigmoid unit's) logit then averages 0 over these images,
        # so one class cannot lead on all of them, whatever the random init.
        pooled = keras.Model(model.inputs, model.get_layer("pooler").output)(spread_over)
        head.bias.assign(-np.mean(np.asarray(pooled) @ np.asarray(head.kernel), axis=0))
    return model


def _pixels(shape, seed):
    """Noise around a random colour: different images, different predictions."""
    rng = np.random.default_rng(seed)
    colour = rng.uniform(0, 255, shape[-1])
    return np.clip(colour + rng.normal(0, 40, shape), 0, 255)


def _jpeg(shape, seed):
    return tf.io.encode_jpeg(_pixels(shape, seed).astype(np.uint8)).numpy()


def _png(shape, seed):
    return tf.io.encode_png(_pixels(shape, seed).astype(np.uint8)).numpy()


def _decoded(encoded):
    """What the model should see: the training pipeline's decode + resize."""
    return np.stack([image_ops.decode_and_resize(tf.constant(e), (HEIGHT, WIDTH)).numpy() for e in encoded])


def _keras_modules(modules):
    return sorted(m for m in modules if m == "keras" or m.startswith("keras."))


def _as_lists(outputs):
    """A signature's outputs as the tests compare them: lists, class names decoded."""
    return {
        "probabilities": outputs["probabilities"].tolist(),
        "class_ids": outputs["class_ids"].tolist(),
        "class_names": [n.decode("utf-8") for n in outputs["class_names"]],
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Exports a multiclass and a binary model, serves each in a fresh TensorFlow-only process."""
    keras.utils.set_random_seed(1234)
    folder = tmp_path_factory.mktemp("served")
    jpegs = [_jpeg((20, 30, 3), 0), _jpeg((64, 50, 3), 1), _jpeg((37, 41, 3), 2), _jpeg((HEIGHT, WIDTH, 3), 3)]
    pngs = [_png((17, 90, 3), 4), _png((48, 32, 1), 5), _png((40, 40, 4), 6)]  # RGB, grayscale, RGBA
    images = np.stack([_pixels((HEIGHT, WIDTH, 3), seed) for seed in range(7, 11)]).astype("float32")
    jobs = {
        "jpeg": ("serving_default", {"image_bytes": np.array(jpegs, dtype=object)}),
        "png": ("serving_default", {"image_bytes": np.array(pngs, dtype=object)}),
        "images": ("serving_images", {"images": images}),
    }

    expected, reply, export_dirs = {}, {}, {}
    tfxfer_modules, keras_imported_by_serving = set(), set()
    for name, num_classes, class_names in (("multiclass", 3, CLASS_NAMES), ("binary", 2, BINARY_NAMES)):
        model = _classifier(num_classes, spread_over=images)
        export_dirs[name] = tfxfer.export_saved_model(model, folder / name, class_names=class_names)
        expected[name] = {
            "jpeg": model.predict(_decoded(jpegs), verbose=0),
            "png": model.predict(_decoded(pngs), verbose=0),
            "images": model.predict(images, verbose=0),
        }
        (folder / f"child-{name}").mkdir()
        child = run_child(folder / f"child-{name}", path=export_dirs[name], jobs=jobs, timeout=120)
        reply[name] = {kind: _as_lists(outputs) for kind, outputs in child["results"].items()}
        reply[name]["input_specs"] = child["input_specs"]
        keras_imported_by_serving.update(_keras_modules(child["modules"]))  # beyond `import tensorflow`
        loaded = child["tensorflow_modules"] + child["modules"]  # all of the child's modules
        tfxfer_modules.update(m for m in loaded if m.split(".")[0] == "tfxfer")
    reply["modules"] = {"tfxfer": sorted(tfxfer_modules), "keras_imported_by_serving": sorted(keras_imported_by_serving)}
    return dict(expected=expected, reply=reply, export_dirs=export_dirs)


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_served_image_bytes_match_the_keras_model(served, kind):
    probabilities = np.array(served["reply"]["multiclass"][kind]["probabilities"])
    expected = served["expected"]["multiclass"][kind]
    assert probabilities.shape == expected.shape == (len(expected), 3)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4, rtol=0)


def test_served_float_images_match_the_keras_model(served):
    probabilities = np.array(served["reply"]["multiclass"]["images"]["probabilities"])
    np.testing.assert_allclose(probabilities, served["expected"]["multiclass"]["images"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["jpeg", "png", "images"])
def test_served_class_ids_are_the_argmax_and_names_follow_them(served, kind):
    outputs = served["reply"]["multiclass"][kind]
    class_ids = outputs["class_ids"]
    assert class_ids == np.argmax(outputs["probabilities"], axis=-1).tolist()
    assert class_ids == np.argmax(served["expected"]["multiclass"][kind], axis=-1).tolist()
    assert outputs["class_names"] == [CLASS_NAMES[i] for i in class_ids]


def test_served_images_fall_in_several_classes(served):
    # Otherwise the class-name checks above would prove little.
    outputs = served["reply"]["multiclass"]
    assert len({*outputs["jpeg"]["class_ids"], *outputs["png"]["class_ids"], *outputs["images"]["class_ids"]}) >= 2


@pytest.mark.parametrize("kind", ["jpeg", "png", "images"])
def test_served_binary_model_gives_two_columns_summing_to_one(served, kind):
    outputs = served["reply"]["binary"][kind]
    probabilities = np.array(outputs["probabilities"])
    p_yes = served["expected"]["binary"][kind]  # the model's one sigmoid unit
    assert probabilities.shape == (len(p_yes), 2)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(probabilities[:, 1:], p_yes, atol=1e-4, rtol=0)
    assert outputs["class_names"] == [BINARY_NAMES[i] for i in np.argmax(probabilities, axis=-1)]


def test_served_signatures_take_bytes_and_height_by_width_images(served):
    specs = served["reply"]["multiclass"]["input_specs"]
    assert specs == {"serving_default": {"image_bytes": ("string", [None])},
                     "serving_images": {"images": ("float32", [None, HEIGHT, WIDTH, 3])}}


def test_serving_needs_neither_keras_nor_tfxfer(served):
    # `import tensorflow` may bring keras along (tf.keras); loading and running
    # the SavedModel must not import any more of it, nor any tfxfer code.
    modules = served["reply"]["modules"]
    assert modules == {"tfxfer": [], "keras_imported_by_serving": []}


def test_bytes_that_are_not_an_image_are_an_invalid_argument(served):
    serve = tf.saved_model.load(served["export_dirs"]["multiclass"]).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError):
        serve(image_bytes=tf.constant([b"not an image at all"]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        serve(image_bytes=tf.constant([_jpeg((8, 8, 3), 0), b""]))


def test_png_declaring_sides_near_2_to_the_32_is_refused_before_decoding(served):
    # width x height = (2^32 - 1)^2 wraps int64 to a negative count, which would pass the pixel cap.
    png = bytearray(_png((8, 8, 3), 0))
    png[16:24] = struct.pack(">II", 2 ** 32 - 1, 2 ** 32 - 1)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))  # a valid IHDR: only its size is wrong
    serve = tf.saved_model.load(served["export_dirs"]["multiclass"]).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"declares an impossible size: its width x height "
                                                             r"overflows 64 bits"):
        serve(image_bytes=tf.constant([bytes(png)]))


def test_serving_an_empty_batch_gives_empty_outputs(served):
    serve = tf.saved_model.load(served["export_dirs"]["multiclass"]).signatures["serving_default"]
    outputs = serve(image_bytes=tf.constant([], tf.string))
    assert outputs["probabilities"].shape == (0, 3)
    assert outputs["class_names"].shape == (0,)


# Folder layout and files.

def _tree_digest(folder):
    digest = hashlib.sha256()
    for root, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            digest.update(name.encode())
            with open(os.path.join(root, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def two_exports(tmp_path_factory):
    """Exports the same model twice into one folder; returns (base, first, second, digest of first)."""
    keras.utils.set_random_seed(1234)
    base = tmp_path_factory.mktemp("exports") / "flowers"
    model = _classifier()
    first = tfxfer.export_saved_model(model, base, class_names=CLASS_NAMES, metadata={"val_accuracy": 0.5})
    digest = _tree_digest(first)
    second = tfxfer.export_saved_model(model, base, class_names=CLASS_NAMES)
    return base, first, second, digest


def test_export_writes_version_1_then_2(two_exports):
    base, first, second, _ = two_exports
    assert first == os.path.join(base, "1")
    assert second == os.path.join(base, "2")
    for path in (first, second):
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        assert os.path.isdir(os.path.join(path, "variables"))


def test_export_never_overwrites_an_earlier_version(two_exports):
    _, first, _, digest = two_exports
    assert _tree_digest(first) == digest


def test_export_leaves_no_staging_folders(two_exports):
    base = two_exports[0]
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_export_writes_labels_asset(two_exports):
    with open(os.path.join(two_exports[1], "assets", "labels.txt"), encoding="utf-8") as f:
        assert f.read().splitlines() == CLASS_NAMES


def test_export_writes_metadata(two_exports):
    with open(os.path.join(two_exports[1], "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert metadata["class_names"] == CLASS_NAMES
    assert metadata["head"] == "multiclass"
    assert metadata["input_shape"] == [HEIGHT, WIDTH, 3]
    assert metadata["signatures"] == ["serving_default", "serving_images"]
    assert metadata["versions"]["tfxfer"] == tfxfer.__version__
    assert metadata["versions"]["tensorflow"] == tf.__version__
    assert metadata["backbone"] == "custom"
    assert metadata["backbone_preprocessing"] == "tf"
    assert metadata["resize"] == "bilinear" and metadata["pixel_range"] == [0, 255]
    assert metadata["versions"]["keras"] == keras.__version__
    assert metadata["val_accuracy"] == 0.5  # the caller's extra facts


def test_latest_version_dir_picks_the_highest_version(two_exports):
    base, first, second, _ = two_exports
    assert tfxfer.latest_version_dir(str(base)) == second
    assert tfxfer.latest_version_dir(first) == first  # a SavedModel folder itself


def test_export_without_class_names_uses_indices(tmp_path):
    path = tfxfer.export_saved_model(_classifier(num_classes=2), tmp_path / "binary")
    with open(os.path.join(path, "assets", "labels.txt"), encoding="utf-8") as f:
        assert f.read().splitlines() == ["0", "1"]
    with open(os.path.join(path, "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
        assert json.load(f)["head"] == "binary"


def test_class_names_of_the_wrong_length_are_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"predicts 3 classes but 2 class names were given\. "
                                         r"Received: class_names=\['a', 'b'\]"):
        tfxfer.export_saved_model(_classifier(), tmp_path / "model", class_names=["a", "b"])
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("bad", ["two\nlines", "carriage\rreturn", ""])
def test_class_names_must_be_non_empty_single_lines(tmp_path, bad):
    with pytest.raises(ValueError, match=r"non-empty single lines\. Received: \["):
        tfxfer.export_saved_model(_classifier(), tmp_path / "model", class_names=["ok", bad, "fine"])
    assert not (tmp_path / "model").exists()


def test_latest_version_dir_of_a_folder_without_versions_is_an_error(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(FileNotFoundError, match=r"No SavedModel in .*expected saved_model\.pb there or integer"):
        tfxfer.latest_version_dir(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="No SavedModel in"):
        tfxfer.latest_version_dir(str(tmp_path / "missing"))


# Versioning without a model.

def test_existing_versions_are_integer_folders_only(tmp_path):
    for name in ("3", "10", "1", ".tmp-export-x", "latest", "²"):  # "²".isdigit() is True
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert versioning.existing_versions(str(tmp_path)) == [1, 3, 10]


def test_publish_takes_the_next_free_version(tmp_path):
    (tmp_path / "4").mkdir()
    with versioning.staging_dir(str(tmp_path)) as staging:
        (tmp_path / staging / "saved_model.pb").write_bytes(b"x")
        target = versioning.publish(staging, str(tmp_path))
    assert target == str(tmp_path / "5")
    assert (tmp_path / "5" / "saved_model.pb").read_bytes() == b"x"
    assert sorted(os.listdir(tmp_path)) == ["4", "5"]


def test_publish_skips_a_file_that_takes_the_version_name(tmp_path):
    (tmp_path / "1").write_text("not a version folder")
    published = []

    def publish():
        with versioning.staging_dir(str(tmp_path)) as staging:
            published.append(versioning.publish(staging, str(tmp_path)))

    # A daemon thread, so that a regression (retrying "1" forever) fails instead of hanging.
    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "publish kept retrying a taken version name"
    assert published == [str(tmp_path / "2")]


def _variable_names(path):
    return sorted(variable.name for variable in tf.saved_model.load(path).variables)


def test_export_folds_batch_norms_into_the_convolution_and_predicts_as_the_model(tmp_path):
    keras.utils.set_random_seed(1234)
    model = _classifier()
    images = np.stack([_pixels((HEIGHT, WIDTH, 3), seed) for seed in range(4)]).astype("float32")
    expected = model.predict(images, verbose=0)
    weights = [np.array(weight) for weight in model.get_weights()]
    folded = tfxfer.export_saved_model(model, tmp_path / "folded", class_names=CLASS_NAMES)
    unfolded = tfxfer.export_saved_model(model, tmp_path / "unfolded", class_names=CLASS_NAMES,
                                         fold_batch_norms=False)
    for path in (folded, unfolded):
        served = tf.saved_model.load(path).signatures["serving_images"](images=tf.constant(images))
        np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5, rtol=0)
    # The folded export holds the BatchNorm's four variables fewer (the convolution has its bias already).
    batch_norm = {"bn/gamma:0", "bn/beta:0", "bn/moving_mean:0", "bn/moving_variance:0"}
    assert batch_norm <= set(_variable_names(unfolded))
    assert _variable_names(folded) == sorted(set(_variable_names(unfolded)) - batch_norm)
    for path, count in ((folded, 1), (unfolded, 0)):
        with open(os.path.join(path, "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
            assert json.load(f)["batch_norms_folded"] == count
    # The model itself keeps its BatchNorm and every weight.
    assert isinstance(model.backbone.get_layer("bn"), keras.layers.BatchNormalization)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_failed_export_removes_its_staging_folder(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with versioning.staging_dir(str(tmp_path)) as staging:
            assert os.path.basename(staging).startswith(".tmp-export-")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
