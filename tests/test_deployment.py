"""Tests for deployment: top-k outputs, TF Serving warmup, REST bodies, saved_model_cli, predict.py.

One tiny multiclass model (32x48 input, so a height/width mix-up shows) is
exported once with `top_k=2` and warmup examples. REST bodies are decoded in
this process by `recipes/rest_requests.py` (our reading of TF Serving's documented
JSON mapping: in production TF Serving does that part) and the resulting
tensors run in a fresh process that imports only TensorFlow, as TF Serving would.
"""

import base64
import json
import logging
import os
import re
import struct
import subprocess
import sys

import keras
import numpy as np
import pytest
import rest_requests as rest  # recipes/rest_requests.py
import tensorflow as tf
from _serving_child import (
    ENV,
    heavy_modules,
    model_code_modules,
    run_child,
    run_in_tensorflow_only,
)

import tfxfer
from tfxfer import prediction
from tfxfer.data import exif, image_ops
from tfxfer.errors import ConfigError
from tfxfer.export import warmup

HEIGHT, WIDTH = 32, 48
CLASS_NAMES = ["cat", "dog", "café au lait"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _classifier(num_classes=3):
    inputs = keras.Input((HEIGHT, WIDTH, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    backbone = keras.Model(inputs, x, name="tiny")
    model = tfxfer.build_image_classifier(backbone, num_classes=num_classes, preprocessing="tf", augmentation=False)
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 5.0)  # sharper than the random init: images land in different classes
    return model


def _image(shape, seed, encode):
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.uniform(0, 255, shape[-1]) + rng.normal(0, 40, shape), 0, 255).astype(np.uint8)
    return encode(pixels).numpy()


def _decoded(encoded):
    return np.stack([image_ops.decode_and_resize(tf.constant(e), (HEIGHT, WIDTH)).numpy() for e in encoded])


# Loads the SavedModels with TensorFlow only and runs each job's signature on its tensors.
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(1234)
    folder = tmp_path_factory.mktemp("deploy")
    model = _classifier()
    images = [_image((20, 30, 3), 0, tf.io.encode_jpeg), _image((64, 50, 3), 1, tf.io.encode_jpeg),
              _image((40, 40, 3), 2, tf.io.encode_png)]
    files = []
    for index, contents in enumerate(images):
        files.append(folder / "photos" / f"{index}.{'png' if index == 2 else 'jpg'}")
        files[-1].parent.mkdir(exist_ok=True)
        files[-1].write_bytes(contents)
    warmup_examples = [_image((HEIGHT, WIDTH, 3), seed, tf.io.encode_png) for seed in (10, 11)]
    path = tfxfer.export_saved_model(model, folder / "pets", class_names=CLASS_NAMES, top_k=2,
                                     warmup_examples=warmup_examples)
    return dict(folder=folder, path=path, images=images, files=[str(f) for f in files],
                warmup_examples=warmup_examples, expected=model.predict(_decoded(images), verbose=0),
                expected_warmup=model.predict(_decoded(warmup_examples), verbose=0))


# top_k outputs.

@pytest.fixture(scope="module")
def served_outputs(exported):
    signatures = tf.saved_model.load(exported["path"]).signatures
    return {
        "bytes": signatures["serving_default"](image_bytes=tf.constant(exported["images"])),
        "images": signatures["serving_images"](images=tf.constant(_decoded(exported["images"]))),
        "empty": signatures["serving_default"](image_bytes=tf.constant([], tf.string)),
    }


@pytest.mark.parametrize("kind", ["bytes", "images"])
def test_top_k_outputs_are_the_best_classes_best_first(exported, served_outputs, kind):
    outputs = served_outputs[kind]
    probabilities = outputs["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, exported["expected"], atol=1e-4)
    best = np.argsort(-probabilities, axis=-1)[:, :2]
    assert outputs["top_k_scores"].shape == outputs["top_k_class_names"].shape == (3, 2)
    np.testing.assert_allclose(outputs["top_k_scores"].numpy(), np.take_along_axis(probabilities, best, -1))
    names = [[n.decode() for n in row] for row in outputs["top_k_class_names"].numpy()]
    assert names == [[CLASS_NAMES[i] for i in row] for row in best]
    assert [row[0] for row in names] == [n.decode() for n in outputs["class_names"].numpy()]


def test_top_k_of_an_empty_batch_is_empty(served_outputs):
    assert served_outputs["empty"]["top_k_scores"].shape == (0, 2)
    assert served_outputs["empty"]["top_k_class_names"].shape == (0, 2)


def test_top_k_is_capped_at_the_number_of_classes(tmp_path):
    path = tfxfer.export_saved_model(_classifier(num_classes=2), tmp_path / "binary", class_names=["no", "yes"],
                                     top_k=5)
    outputs = tf.saved_model.load(path).signatures["serving_images"](images=tf.zeros([4, HEIGHT, WIDTH, 3]))
    assert outputs["top_k_scores"].shape == (4, 2)
    assert sorted(n.decode() for n in outputs["top_k_class_names"].numpy()[0]) == ["no", "yes"]
    np.testing.assert_allclose(outputs["top_k_scores"].numpy().sum(-1), 1.0, atol=1e-6)


def test_export_without_top_k_has_no_top_k_outputs(tmp_path):
    path = tfxfer.export_saved_model(_classifier(), tmp_path / "plain", class_names=CLASS_NAMES)
    outputs = tf.saved_model.load(path).signatures["serving_default"].structured_outputs
    assert sorted(outputs) == ["class_ids", "class_names", "probabilities"]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_top_k_must_be_a_positive_integer(tmp_path, bad):
    with pytest.raises(ValueError, match=r"top_k must be a positive integer .* Received: top_k="):
        tfxfer.export_saved_model(_classifier(), tmp_path / "model", class_names=CLASS_NAMES, top_k=bad)
    assert not (tmp_path / "model").exists()


def test_metadata_records_top_k_and_warmup(exported):
    with open(os.path.join(exported["path"], "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert metadata["top_k"] == 2
    assert metadata["warmup_requests"] is True


# Warmup.

def test_warmup_file_holds_one_predict_log_per_signature(exported):
    path = os.path.join(exported["path"], "assets.extra", "tf_serving_warmup_requests")
    requests = warmup.read_warmup_requests(path)
    assert [name for name, _ in requests] == ["serving_default", "serving_images"]
    (_, by_bytes), (_, by_images) = requests
    assert sorted(by_bytes) == ["image_bytes"] and sorted(by_images) == ["images"]
    assert list(by_bytes["image_bytes"]) == exported["warmup_examples"]
    assert by_images["images"].dtype == np.float32
    np.testing.assert_array_equal(by_images["images"], _decoded(exported["warmup_examples"]))


def test_warmup_requests_run_through_the_saved_model(exported, tensorflow_only):
    warmup_outputs = [outputs for name, outputs in tensorflow_only.items() if name.startswith("warmup/")]
    assert len(warmup_outputs) == 2
    for outputs in warmup_outputs:
        np.testing.assert_allclose(outputs["probabilities"], exported["expected_warmup"], atol=1e-4)


def test_warmup_examples_that_are_not_images_are_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"Warmup example 1 is not a JPEG/PNG/GIF/BMP image.*Received: 5 bytes"):
        tfxfer.export_saved_model(_classifier(), tmp_path / "model", class_names=CLASS_NAMES,
                                  warmup_examples=[_image((8, 8, 3), 0, tf.io.encode_png), b"hello"])
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("bad", [[], b"\x89PNG", ["a.png"]])
def test_warmup_examples_must_be_a_list_of_bytes(tmp_path, bad):
    with pytest.raises(ValueError, match=r"(non-empty list of encoded images|bytes of an encoded image)\b.*Received"):
        tfxfer.export_saved_model(_classifier(), tmp_path / "model", class_names=CLASS_NAMES, warmup_examples=bad)


def test_warmup_without_the_serving_api_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'need the tensorflow-serving-api package .* '
                                          r'pip install "tensorflow-serving-api~=2\.21\.0", or export without'):
        tfxfer.export_saved_model(_classifier(), tmp_path / "model", class_names=CLASS_NAMES,
                                  warmup_examples=[_image((8, 8, 3), 0, tf.io.encode_png)])
    assert not (tmp_path / "model").exists()


def test_encode_images_gives_lossless_pngs_of_the_first_images():
    images = np.random.default_rng(0).uniform(0, 255, (5, 6, 7, 3)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(5, np.int32))).batch(2)
    encoded = warmup.encode_images(dataset, count=3)
    assert len(encoded) == 3
    decoded = np.stack([tf.io.decode_png(e).numpy() for e in encoded])
    np.testing.assert_array_equal(decoded, np.round(images[:3]).astype(np.uint8))
    with pytest.raises(ValueError, match="count must be at least 1. Received: count=0"):
        warmup.encode_images(dataset, count=0)


# REST bodies, as users POST them to TF Serving.

def _b64(contents):
    return base64.b64encode(contents).decode("ascii")


def _bodies(images):
    b64 = [{"b64": _b64(c)} for c in images]
    pixels = _decoded(images).tolist()
    return {
        "row_b64": {"instances": b64},
        "row_named": {"instances": [{"image_bytes": item} for item in b64]},
        "row_with_signature_name": {"signature_name": "serving_default", "instances": b64},
        "columnar": {"inputs": b64},
        "columnar_named": {"signature_name": "serving_default", "inputs": {"image_bytes": b64}},
        "row_float_images": {"signature_name": "serving_images", "instances": pixels},
        "columnar_float_images": {"signature_name": "serving_images", "inputs": {"images": pixels}},
    }


@pytest.fixture(scope="module")
def rest_requests(exported):
    signatures = rest.signature_inputs(exported["path"])
    return {name: rest.decode_request(json.dumps(body), signatures)
            for name, body in _bodies(exported["images"]).items()}


@pytest.fixture(scope="module")
def tensorflow_only(exported, rest_requests, tmp_path_factory):
    """`{job name: outputs}` of the REST requests and warmup requests, run in one TensorFlow-only process."""
    path = os.path.join(exported["path"], "assets.extra", warmup.WARMUP_FILE)
    jobs = {f"warmup/{name}": (name, inputs) for name, inputs in warmup.read_warmup_requests(path)}
    jobs.update({name: (r.signature_name, r.inputs) for name, r in rest_requests.items()})
    return run_in_tensorflow_only(tmp_path_factory.mktemp("child"), exported["path"], jobs)


@pytest.fixture(scope="module")
def rest_replies(rest_requests, tensorflow_only):
    # What TF Serving sends back: JSON text.
    return {name: (request, json.loads(json.dumps(rest.format_response(tensorflow_only[name], request.format))))
            for name, request in rest_requests.items()}


def test_rest_bodies_decode_to_the_signature_inputs(exported, rest_replies):
    for name, (request, _) in rest_replies.items():
        if "float" in name:
            assert request.signature_name == "serving_images"
            assert request.inputs["images"].shape == (3, HEIGHT, WIDTH, 3)
            assert request.inputs["images"].dtype == np.float32
        else:
            assert request.signature_name == "serving_default"
            assert list(request.inputs["image_bytes"]) == exported["images"]
        assert request.format == ("row" if name.startswith("row") else "columnar")


@pytest.mark.parametrize("name", ["row_b64", "row_named", "row_with_signature_name", "row_float_images"])
def test_row_format_replies_with_one_prediction_per_instance(exported, rest_replies, name):
    predictions = rest_replies[name][1]["predictions"]
    assert len(predictions) == 3
    np.testing.assert_allclose([p["probabilities"] for p in predictions], exported["expected"], atol=1e-4)
    expected_ids = np.argmax(exported["expected"], -1).tolist()
    assert [p["class_ids"] for p in predictions] == expected_ids
    assert [p["class_names"] for p in predictions] == [CLASS_NAMES[i] for i in expected_ids]
    assert [len(p["top_k_scores"]) for p in predictions] == [2, 2, 2]
    assert [p["top_k_class_names"][0] for p in predictions] == [CLASS_NAMES[i] for i in expected_ids]


@pytest.mark.parametrize("name", ["columnar", "columnar_named", "columnar_float_images"])
def test_columnar_format_replies_with_named_outputs(exported, rest_replies, name):
    outputs = rest_replies[name][1]["outputs"]
    assert sorted(outputs) == ["class_ids", "class_names", "probabilities", "top_k_class_names", "top_k_scores"]
    np.testing.assert_allclose(outputs["probabilities"], exported["expected"], atol=1e-4)
    assert np.shape(outputs["top_k_class_names"]) == (3, 2)


def test_rest_string_outputs_named_bytes_come_back_as_b64():
    reply = rest.format_response({"thumbnail_bytes": np.array([b"\xff\x00"], object)}, "row")
    assert reply == {"predictions": [{"b64": "/wA="}]}


SIGNATURES = {"serving_default": {"image_bytes": tf.string}, "serving_images": {"images": tf.float32}}


@pytest.mark.parametrize("body, match", [
    ({}, r'exactly one of "instances" \(row format\) or "inputs" \(columnar format\)\. Received keys: \[\]'),
    ({"instances": [], "inputs": []}, r"exactly one of .*Received keys: \['inputs', 'instances'\]"),
    ({"instances": {"b64": "AA=="}}, r'"instances" must be a non-empty list .*Received: dict'),
    ({"signature_name": "predict", "inputs": []}, r"Unknown signature_name; the model has \['serving_default', "),
    ({"instances": [{"images": {"b64": "AA=="}}]}, r"inputs are \['image_bytes'\]\. Received: inputs \['images'\]"),
    ({"instances": [{"b64": "not base64!"}]}, r"'image_bytes' has a \"b64\" value that is not base64"),
    ({"instances": [1.5]}, r"'image_bytes' takes strings or \{\"b64\": \.\.\.\} objects\. Received: float"),
    ({"signature_name": "serving_images", "instances": [[1, 2], [3]]},
     r"'images' must be a \(nested\) list of numbers"),
    ([1, 2], r"must be a JSON object\. Received: list"),
])
def test_bad_rest_bodies_are_errors(body, match):
    with pytest.raises(ValueError, match=match):
        rest.decode_request(body, SIGNATURES)


def test_format_response_needs_a_known_format():
    with pytest.raises(ValueError, match=r'request_format must be "row" or "columnar"\. Received: \'rows\''):
        rest.format_response({"probabilities": np.zeros((1, 2))}, "rows")


def test_saved_model_cli_lists_the_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--all", "--dir", exported["path"]], capture_output=True, text=True,
                           env=ENV, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    text = shown.stdout
    default = text.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    images = text.split("signature_def['serving_images']")[1].split("signature_def[")[0]
    assert "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in default
    assert "inputs['images'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 32, 48, 3)" in images
    for block in (default, images):
        for name, dtype, shape in (("probabilities", "DT_FLOAT", "(-1, 3)"), ("class_ids", "DT_INT64", "(-1)"),
                                   ("class_names", "DT_STRING", "(-1)"), ("top_k_scores", "DT_FLOAT", "(-1, 2)"),
                                   ("top_k_class_names", "DT_STRING", "(-1, 2)")):
            assert f"outputs['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" in block


# predict.py and tfxfer.prediction.

def _predict(script_server, *args):
    return script_server.run_recipe("predict.py", *args, timeout=120)


@pytest.mark.slow  # a whole recipe in a process of its own, as in tests/test_recipes.py
def test_predict_recipe_prints_top_k_class_names(exported, script_server):
    base = os.path.dirname(exported["path"])  # the model's base folder: its latest version
    run = _predict(script_server, f"--model_dir={base}", "--top_k=2", os.path.dirname(exported["files"][0]))
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0::3] == sorted(exported["files"])  # 0.jpg, 1.jpg, 2.png
    for index, expected in enumerate(exported["expected"]):
        best = np.argsort(-expected)[:2]
        for line, class_id in zip(lines[3 * index + 1:3 * index + 3], best):
            probability, name = line.split(maxsplit=1)
            assert name == CLASS_NAMES[class_id]
            assert float(probability) == pytest.approx(expected[class_id], abs=1e-3)


@pytest.mark.slow  # a whole recipe in a process of its own, as in tests/test_recipes.py
def test_predict_recipe_prints_a_ready_rest_request(exported, script_server):
    run = _predict(script_server, f"--model_dir={exported['path']}", "--print_request", "--host=serving:8501",
                   *exported["files"][:2])
    assert run.returncode == 0, run.stderr[-2000:]
    body_line, curl_line = run.stdout.splitlines()
    body = json.loads(body_line)
    assert body == {"instances": [{"b64": _b64(c)} for c in exported["images"][:2]]}
    assert curl_line.startswith("curl -X POST -H 'Content-Type: application/json' -d '{\"instances\"")
    assert curl_line.endswith(" http://serving:8501/v1/models/pets:predict")


def test_predict_image_files_caps_top_k_and_batches(exported):
    results = prediction.predict_image_files(exported["path"], exported["files"], top_k=10, batch_size=2)
    assert [r.source for r in results] == exported["files"]
    assert [len(r.top_k) for r in results] == [3, 3, 3]
    for result, expected in zip(results, exported["expected"]):
        assert [p for _, p in result.top_k] == pytest.approx(sorted(expected, reverse=True), abs=1e-4)


def _with_exif_orientation(jpeg, orientation):
    """`jpeg` with an Exif APP1 segment (little-endian TIFF, one Orientation entry) after its start marker."""
    tiff = b"II" + struct.pack("<HIH", 42, 8, 1) + struct.pack("<HHIH2x", exif.ORIENTATION_TAG, 3, 1, orientation)
    payload = b"Exif\0\0" + tiff + b"\0\0\0\0"
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", 2 + len(payload)) + payload + jpeg[2:]


def test_an_exif_rotated_photo_is_predicted_upright_as_the_serving_signature_does(exported, tmp_path):
    # Stored landscape (32x48), vertical stripes, tagged "turn 90 degrees clockwise": upright it is
    # portrait with horizontal stripes, so a path that ignored the tag would feed the model other pixels.
    stripes = np.where(np.arange(WIDTH) // 4 % 2 == 0, 230, 20).astype(np.uint8)
    stored = tf.io.encode_jpeg(np.stack([np.tile(stripes, (HEIGHT, 1))] * 3, axis=-1), quality=95).numpy()
    photo = _with_exif_orientation(stored, 6)
    assert int(exif.jpeg_orientation(tf.constant(photo))) == 6
    (tmp_path / "phone.jpg").write_bytes(photo)
    signatures = tf.saved_model.load(exported["path"]).signatures

    [result] = prediction.predict_image_files(exported["path"], [str(tmp_path / "phone.jpg")], top_k=3)

    predicted = np.zeros(len(CLASS_NAMES))
    for name, probability in result.top_k:
        predicted[CLASS_NAMES.index(name)] = probability
    served = signatures["serving_default"](image_bytes=tf.constant([photo]))["probabilities"].numpy()[0]
    np.testing.assert_allclose(predicted, served, atol=1e-6)
    # Both are the model's answer for the upright pixels (turned here with numpy, not tfxfer's EXIF code) ...
    pixels = tf.io.decode_jpeg(stored).numpy()
    upright = image_ops.resize_image(np.rot90(pixels, k=-1).copy(), (HEIGHT, WIDTH))
    expected = signatures["serving_images"](images=upright[None])["probabilities"].numpy()[0]
    np.testing.assert_allclose(predicted, expected, atol=1e-4)
    # ... not for the pixels as stored.
    as_stored = signatures["serving_images"](images=image_ops.resize_image(pixels, (HEIGHT, WIDTH))[None])
    assert np.abs(as_stored["probabilities"].numpy()[0] - expected).max() > 1e-3


def test_predicting_a_file_that_is_not_an_image_names_it(exported, tmp_path):
    (tmp_path / "notes.png").write_bytes(b"just some text")
    with pytest.raises(ValueError, match=r"cannot be decoded, leave them out\. Received: \['.*notes\.png'\]"):
        prediction.predict_image_files(exported["path"], [exported["files"][0], str(tmp_path / "notes.png")])


@pytest.fixture
def mixed_folder(exported, tmp_path):
    """A folder of the exported images, a broken PNG, files of other extensions and hidden clutter."""
    folder = tmp_path / "mixed"
    (folder / "more").mkdir(parents=True)
    (folder / ".thumbnails").mkdir()
    good = [folder / "0.jpg", folder / "more" / "1.jpg", folder / "more" / "2.PNG"]
    for path, contents in zip(good, exported["images"]):
        path.write_bytes(contents)
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "scan.tiff").write_bytes(b"II*\0")
    (folder / "more" / "notes.txt").write_text("not an image")
    (folder / "._0.jpg").write_bytes(b"macOS clutter")  # hidden: left out without a word, as training does
    (folder / ".DS_Store").write_bytes(b"macOS clutter")
    (folder / ".thumbnails" / "0.jpg").write_bytes(b"clutter")
    return {"folder": str(folder), "good": [str(path) for path in good], "broken": str(folder / "broken.png"),
            "others": [str(folder / "more" / "notes.txt"), str(folder / "scan.tiff")]}


def test_a_folders_undecodable_images_are_skipped_and_named(exported, mixed_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="absl"):
        results = prediction.predict_image_files(exported["path"], [mixed_folder["folder"]], top_k=3, batch_size=2)
    assert [r.source for r in results] == sorted(mixed_folder["good"])  # 0.jpg, more/1.jpg, more/2.PNG
    for result, expected in zip(results, exported["expected"]):
        assert [p for _, p in result.top_k] == pytest.approx(sorted(expected, reverse=True), abs=1e-4)
    assert results.skipped_files == [mixed_folder["broken"]]
    assert (f"Skipped 1 of 4 image files the model cannot decode (truncated, corrupt, or not an image despite the "
            f"extension; listed in the result's skipped_files), e.g. {mixed_folder['broken']} (Unknown image file "
            "format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP required.)") in caplog.text
    assert (f"Skipping 2 files of {mixed_folder['folder']} that are not read as images: only names ending in .jpg, "
            ".jpeg, .png, .gif, .bmp, .webp (any case) are. Convert images in other formats to one of these. "
            f"Skipped e.g. {'; '.join(mixed_folder['others'])}") in caplog.text
    assert "._0.jpg" not in caplog.text and "DS_Store" not in caplog.text and "thumbnails" not in caplog.text
    assert prediction.image_files([mixed_folder["folder"]]) == sorted(mixed_folder["good"] + [mixed_folder["broken"]])


def test_a_folders_broken_link_is_skipped_and_named_with_why(exported, mixed_folder, tmp_path, caplog):
    # Listed by its name, a link whose target is gone cannot be read: it gets no answer, as an undecodable file.
    link = os.path.join(mixed_folder["folder"], "more", "gone.jpg")
    os.symlink(tmp_path / "deleted.jpg", link)
    with caplog.at_level(logging.WARNING, logger="absl"):
        results = prediction.predict_image_files(exported["path"], [mixed_folder["folder"]], top_k=3, batch_size=2)
    assert [r.source for r in results] == sorted(mixed_folder["good"])
    assert results.skipped_files == [mixed_folder["broken"], link]
    assert f"{link} (cannot be read: {link}; No such file or directory)" in caplog.text


def test_an_undecodable_image_named_itself_is_an_error_beside_a_folder(exported, mixed_folder, tmp_path):
    (tmp_path / "asked.jpg").write_bytes(b"truncated")
    # The folder's broken.png is in the same batch: skipped, while the file the user named is refused.
    with pytest.raises(ConfigError, match=r"^Expected JPEG/PNG/GIF/BMP images; these files cannot be decoded, leave "
                                          rf"them out\. Received: \[{re.escape(repr(str(tmp_path / 'asked.jpg')))}\]\. "
                                          r"The model said about '.*asked\.jpg': Unknown image file format\. One of "
                                          r"JPEG, JPEG XL, PNG, GIF, BMP, WebP required\.$"):
        prediction.predict_image_files(exported["path"], [mixed_folder["folder"], str(tmp_path / "asked.jpg")])


def test_a_folder_of_which_no_image_decodes_is_an_error(exported, tmp_path):
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"not an image")
    with pytest.raises(ConfigError, match=r"^The model could decode none of the 2 image files of the folders given; "
                                          r"expected JPEG/PNG/GIF/BMP/WebP images\. Received: e\.g\. .*a\.png "
                                          r"\(Unknown image file format.*\); .*b\.jpg \(Unknown image file format"):
        prediction.predict_image_files(exported["path"], [str(tmp_path)])


@pytest.mark.slow  # a whole recipe in a process of its own, as in tests/test_recipes.py
def test_predict_recipe_ends_by_naming_the_images_it_skipped(exported, mixed_folder, script_server):
    run = _predict(script_server, f"--model_dir={exported['path']}", "--top_k=1", mixed_folder["folder"])
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0:-1:2] == sorted(mixed_folder["good"])
    assert lines[-1] == f"Skipped 1 file that is not a decodable image: {mixed_folder['broken']}"
    assert "Skipped 1 of 4 image files the model cannot decode" in run.stderr
    assert f"Skipping 2 files of {mixed_folder['folder']} that are not read as images" in run.stderr


@pytest.mark.slow  # a whole recipe in a process of its own, as in tests/test_recipes.py
def test_predict_recipes_request_leaves_out_and_names_the_images_prediction_skips(exported, mixed_folder, tmp_path,
                                                                                  script_server):
    run = _predict(script_server, f"--model_dir={exported['path']}", "--print_request", mixed_folder["folder"])
    assert run.returncode == 0, run.stderr[-2000:]
    body_line, curl_line, skipped_line = run.stdout.splitlines()
    # The images prediction answers, in its order (0.jpg, more/1.jpg, more/2.PNG): not broken.png.
    assert json.loads(body_line) == {"instances": [{"b64": _b64(c)} for c in exported["images"]]}
    assert curl_line.endswith(" http://localhost:8501/v1/models/pets:predict")
    assert skipped_line == (f"Skipped 1 file that is not a decodable image (left out of the request): "
                            f"{mixed_folder['broken']}")
    # An image named itself must decode, for a request as for a prediction.
    (tmp_path / "asked.jpg").write_bytes(b"truncated")
    stderr = script_server.usage_error("predict.py", f"--model_dir={exported['path']}", "--print_request",
                                       mixed_folder["folder"], str(tmp_path / "asked.jpg"))
    assert (f"predict.py: error: Expected JPEG/PNG/GIF/BMP images; these files cannot be decoded, leave them out. "
            f"Received: [{str(tmp_path / 'asked.jpg')!r}]") in stderr


def test_image_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Expected an image file or a folder of images\. Received: '.*nope'"):
        prediction.image_files([str(tmp_path / "nope")])
    with pytest.raises(FileNotFoundError, match=r"No \.jpg/\.jpeg/\.png/\.gif/\.bmp/\.webp files in folder\. Received"):
        prediction.image_files([str(tmp_path)])
    with pytest.raises(ValueError, match="Pass at least one image file or folder"):
        prediction.image_files([])


def test_class_names_need_the_labels_asset(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Expected the class names in .*labels\.txt.*Received: a SavedModel"):
        prediction.class_names(str(tmp_path))


def test_serving_model_name_is_the_base_folder_name():
    assert prediction.serving_model_name("saved_models/pets/12") == "pets"
    assert prediction.serving_model_name("saved_models/pets/") == "pets"


@pytest.mark.slow  # a whole recipe in a fresh process
def test_prediction_and_predict_recipe_need_tensorflow_only(exported, tmp_path):
    # What a user without Keras, keras-hub or TFDS runs: tfxfer.prediction, then recipes/predict.py, in a
    # fresh process. Nothing beyond what `import tensorflow` loads may come in, and of tfxfer only the
    # TensorFlow-free constants and helpers prediction reads.
    base = os.path.dirname(exported["path"])
    reply = run_child(tmp_path, calls={"predicted": ("tfxfer.prediction:predict_image_files",
                                                     (base, exported["files"]), {"top_k": 2})},
                      script=[os.path.join(REPO, "recipes", "predict.py"), f"--model_dir={base}", "--top_k=2",
                              exported["files"][0]])
    assert reply["exit_code"] in (0, None), reply["stderr"][-2000:]
    predicted = reply["results"]["predicted"]
    assert [r.source for r in predicted] == exported["files"]
    for result, expected in zip(predicted, exported["expected"]):
        assert [p for _, p in result.top_k] == pytest.approx(sorted(expected, reverse=True)[:2], abs=1e-4)
    assert reply["stdout"].splitlines()[0] == exported["files"][0]
    tfxfer_modules = [m for m in reply["modules"] if m.split(".")[0] == "tfxfer"]
    assert "tfxfer.prediction" in tfxfer_modules  # the check below saw the real thing
    assert heavy_modules(set(reply["modules"]) - set(tfxfer_modules)) == []
    assert model_code_modules(tfxfer_modules) == []
