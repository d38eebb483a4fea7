"""Exports, runs, metrics and predictions on any filesystem TensorFlow supports, tested on `ram://`.

`ram://` is TensorFlow's in-memory filesystem: like `gs://` it is reached only
through `tf.io.gfile`, so an `os` call left on the way fails here (or writes a
local folder named `ram:`) just as it would on a bucket.
"""

import json
import os
import uuid

import keras
import metrics_file  # recipes/metrics_file.py
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer import prediction
from tfxfer.data import image_ops
from tfxfer.export import layout, versioning, warmup

HEIGHT, WIDTH = 24, 32
CLASS_NAMES = ["cat", "dog", "café au lait"]


def _ram(name):
    """A fresh `ram://` folder: the filesystem lives as long as the process, so each test takes its own."""
    return f"ram://{name}-{uuid.uuid4().hex}"


def _write(path, contents):
    # ram:// lists only folders made as such, as TensorFlow's own writers make them.
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(contents)


def _classifier():
    inputs = keras.Input((HEIGHT, WIDTH, 3))
    features = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
    model = tfxfer.build_image_classifier(keras.Model(inputs, features, name="tiny"), num_classes=3,
                                          preprocessing="tf", augmentation=False)
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 5.0)  # sharper than the random init: images land in different classes
    return model


def _png(seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return tf.io.encode_png(pixels).numpy()


@pytest.fixture(scope="module")
def ram_export():
    """A model exported twice to `ram://`, with warmup requests, and images stored there too."""
    model = _classifier()
    base = _ram("exports") + "/pets"
    images = [_png(seed) for seed in range(3)]
    photos = _ram("photos")
    files = [f"{photos}/{index}.png" for index in range(len(images))]
    for path, contents in zip(files, images):
        _write(path, contents)
    first = tfxfer.export_saved_model(model, base, class_names=CLASS_NAMES, warmup_examples=images[:2])
    second = tfxfer.export_saved_model(model, base, class_names=CLASS_NAMES, top_k=2)
    decoded = np.stack([image_ops.decode_and_resize(tf.constant(c), (HEIGHT, WIDTH)).numpy() for c in images])
    return dict(base=base, first=first, second=second, photos=photos, files=files, images=images,
                expected=model.predict(decoded, verbose=0))


def test_exports_to_ram_get_the_next_versions_and_leave_no_staging_folder(ram_export):
    assert ram_export["first"] == f"{ram_export['base']}/1"
    assert ram_export["second"] == f"{ram_export['base']}/2"
    assert versioning.existing_versions(ram_export["base"]) == [1, 2]
    assert tfxfer.latest_version_dir(ram_export["base"]) == ram_export["second"]
    assert [name for name in tf.io.gfile.listdir(ram_export["base"]) if name.startswith(versioning.STAGING_PREFIX)] == []
    assert not os.path.exists("ram:")  # no os call made a local folder of the URL


def test_a_ram_export_holds_every_file_and_loads(ram_export):
    version = ram_export["first"]
    for name in (layout.SAVED_MODEL_FILE, os.path.join(layout.ASSETS_DIR, "labels.txt"),
                 os.path.join(layout.EXTRA_ASSETS_DIR, layout.METADATA_FILE),
                 os.path.join(layout.EXTRA_ASSETS_DIR, layout.WARMUP_FILE)):
        assert tf.io.gfile.exists(os.path.join(version, name)), name
    with tf.io.gfile.GFile(os.path.join(version, layout.EXTRA_ASSETS_DIR, layout.METADATA_FILE)) as f:
        assert json.load(f)["class_names"] == CLASS_NAMES
    requests = warmup.read_warmup_requests(os.path.join(version, layout.EXTRA_ASSETS_DIR, layout.WARMUP_FILE))
    assert [name for name, _ in requests] == ["serving_default", "serving_images"]
    outputs = tf.saved_model.load(version).signatures["serving_default"](image_bytes=tf.constant(ram_export["images"]))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), ram_export["expected"], atol=1e-4)


def test_prediction_reads_models_and_images_from_ram(ram_export):
    assert prediction.class_names(ram_export["second"]) == CLASS_NAMES
    assert prediction.input_kind(ram_export["base"]) == "image"
    files = prediction.image_files([ram_export["photos"]])
    assert files == ram_export["files"]
    assert prediction.read_files(files[:1]) == ram_export["images"][:1]
    results = prediction.predict_image_files(ram_export["base"], files, top_k=3)
    assert [r.source for r in results] == files
    for result, expected in zip(results, ram_export["expected"]):
        assert [CLASS_NAMES.index(name) for name, _ in result.top_k] == np.argsort(-expected).tolist()
        assert [p for _, p in result.top_k] == pytest.approx(sorted(expected, reverse=True), abs=1e-4)
    assert prediction.serving_model_name(ram_export["second"]) == "pets"


def test_prediction_reads_text_files_from_ram():
    path = _ram("texts") + "/texts.txt"
    _write(path, "first text\n\n  \nsecond, ç\r\nthird\rfourth\n".encode("utf-8"))
    assert prediction.read_text_lines(path) == ["first text", "second, ç", "third", "fourth"]
    with pytest.raises(FileNotFoundError, match=r"one text per line\. Received: 'ram://.*nope\.txt'"):
        prediction.read_text_lines(_ram("texts") + "/nope.txt")


def test_a_failed_export_to_ram_leaves_nothing(tmp_path):
    base = _ram("failed")
    with pytest.raises(RuntimeError, match="boom"):
        with versioning.staging_dir(base) as staging:
            assert staging.startswith(f"{base}/{versioning.STAGING_PREFIX}")
            _write(f"{staging}/variables/data", b"weights")
            raise RuntimeError("boom")
    assert tf.io.gfile.listdir(base) == []


def test_publish_on_ram_skips_taken_versions_and_moves_every_file():
    base = _ram("publish")
    tf.io.gfile.makedirs(f"{base}/4")
    _write(f"{base}/5", b"a file that takes the next number")
    with versioning.staging_dir(base) as staging:
        _write(f"{staging}/{layout.SAVED_MODEL_FILE}", b"graph")
        _write(f"{staging}/variables/variables.index", b"index")
        target = versioning.publish(staging, base)
    assert target == f"{base}/6"
    with tf.io.gfile.GFile(f"{target}/variables/variables.index", "rb") as f:
        assert f.read() == b"index"
    with tf.io.gfile.GFile(f"{target}/{layout.SAVED_MODEL_FILE}", "rb") as f:
        assert f.read() == b"graph"
    assert sorted(tf.io.gfile.listdir(base)) == ["4", "5", "6"]


def test_metrics_are_written_to_ram():
    run_dir = _ram("runs") + "/flowers"
    path = metrics_file.write_metrics(run_dir, {"accuracy": 0.5, "shape": (2, 3)})
    assert path == f"{run_dir}/metrics.json"
    path = metrics_file.write_metrics(run_dir, {"accuracy": 0.75})  # replaces the earlier file
    with tf.io.gfile.GFile(path) as f:
        assert json.load(f) == {"accuracy": 0.75}
    assert tf.io.gfile.listdir(run_dir) == ["metrics.json"]


def test_the_chief_keeps_a_ram_path_and_other_workers_write_locally():
    run_dir = _ram("runs") + "/flowers"
    assert tfxfer.chief_or_temp_dir(run_dir, json.dumps({"task": {"type": "chief", "index": 0}})) == run_dir
    other = tfxfer.chief_or_temp_dir(run_dir, json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                          "task": {"type": "worker", "index": 1}}))
    assert versioning.is_local(other) and os.path.isdir(other)
    assert not tf.io.gfile.exists(run_dir)  # nothing written on the chief's filesystem
    os.rmdir(other)
