"""Multi-task exports: per-task serving outputs, labels files and metadata, warmup, REST, predict.py.

A tiny image classifier (32x48 input, so a height/width mix-up shows) and a tiny
word-vector text classifier each get three tasks: a multiclass one, a binary
one (one sigmoid unit, served as two columns) and a multi-label one. Every
signature must answer `<output>_<task>` for each task, as the Keras model does.
REST bodies are decoded here by `recipes/rest_requests.py` and run, with the
warmup requests, in a fresh process that imports only TensorFlow.
"""

import base64
import json
import logging
import os

import keras
import numpy as np
import pytest
import rest_requests as rest  # recipes/rest_requests.py
import tensorflow as tf
from _serving_child import run_in_tensorflow_only
from _text_helpers import NEGATIVE, POSITIVE, save_tiny_bert_preset, write_word_vectors

import tfxfer
from tfxfer import prediction
from tfxfer.data import image_ops
from tfxfer.errors import ConfigError
from tfxfer.export import text_serving, tflite, warmup

HEIGHT, WIDTH = 32, 48
TASKS = {"species": 3, "grade": 2, "tags": tfxfer.Task(4, multi_label=True)}
CLASS_NAMES = {"species": ["cat", "dog", "café au lait"], "grade": ["poor", "fine"],
               "tags": ["red", "round", "small", "striped"]}
KINDS = {"species": "multiclass", "grade": "binary", "tags": "multilabel"}
TOP_K = 3
OUTPUTS = ("probabilities", "class_ids", "class_names", "top_k_scores", "top_k_class_names")
TEXT_TASKS = {"sentiment": 3, "spam": 2, "topics": tfxfer.Task(3, multi_label=True)}
TEXT_NAMES = {"sentiment": ["negative", "neutral", "positive ✓"], "spam": ["ham", "spam"],
              "topics": ["plot", "acting", "music"]}
TEXTS = ["the movie was good", "awful plot, I hated it", "café crème unknown words", ""]


def _sharpen(model, tasks):
    # Sharper heads than the random init, so that inputs land in different classes.
    for task in tasks:
        kernel = model.get_layer(f"predictions_{task}").kernel
        kernel.assign(kernel * 5.0)


def _image_model():
    """With a BatchNorm of non-trivial statistics, which the export folds into the convolution."""
    inputs = keras.Input((HEIGHT, WIDTH, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv")(inputs)
    batch_norm = keras.layers.BatchNormalization(name="bn")
    x = keras.layers.ReLU(name="relu")(batch_norm(x))
    rng = np.random.default_rng(3)
    batch_norm.set_weights([rng.uniform(0.8, 1.25, 8), rng.uniform(-0.2, 0.2, 8), rng.uniform(-0.2, 0.2, 8),
                            rng.uniform(0.5, 2.0, 8)])  # gamma, beta, moving mean and variance
    model = tfxfer.build_image_classifier(keras.Model(inputs, x, name="tiny"), tasks=TASKS, preprocessing="tf",
                                          augmentation=False)
    _sharpen(model, TASKS)
    return model


def _image(shape, seed, encode=tf.io.encode_png):
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.uniform(0, 255, shape[-1]) + rng.normal(0, 40, shape), 0, 255).astype(np.uint8)
    return encode(pixels).numpy()


def _decoded(encoded):
    return np.stack([image_ops.decode_and_resize(tf.constant(e), (HEIGHT, WIDTH)).numpy() for e in encoded])


def _served_probabilities(keras_outputs):
    """What the export serves as `probabilities_<task>`: a binary task's P(1) as [1 - p, p]."""
    return {task: np.concatenate([1 - p, p], axis=-1) if p.shape[-1] == 1 else p for task, p in keras_outputs.items()}


def _expected_keys(tasks, top_k=True):
    outputs = OUTPUTS if top_k else OUTPUTS[:3]
    return sorted(f"{output}_{task}" for output in outputs for task in tasks)


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    keras.utils.set_random_seed(1234)
    folder = tmp_path_factory.mktemp("multitask_images")
    model = _image_model()
    images = [_image((20, 30, 3), 0, tf.io.encode_jpeg), _image((64, 50, 3), 1), _image((40, 40, 3), 2),
              _image((HEIGHT, WIDTH, 3), 3, tf.io.encode_jpeg)]
    files = []
    for index, contents in enumerate(images):
        files.append(str(folder / "photos" / f"{index}.png"))
        os.makedirs(os.path.dirname(files[-1]), exist_ok=True)
        with open(files[-1], "wb") as f:
            f.write(contents)
    warmup_examples = [_image((HEIGHT, WIDTH, 3), seed) for seed in (10, 11)]
    # A NumPy k, as from a computation on arrays: the metadata must still record the int.
    path = tfxfer.export_saved_model(model, folder / "products", class_names=CLASS_NAMES, top_k=np.int64(TOP_K),
                                     warmup_examples=warmup_examples)
    return dict(folder=folder, model=model, path=path, images=images, files=files,
                expected=_served_probabilities(model.predict(_decoded(images), verbose=0)),
                expected_warmup=_served_probabilities(model.predict(_decoded(warmup_examples), verbose=0)),
                warmup_examples=warmup_examples)


@pytest.fixture(scope="module")
def image_outputs(image_export):
    signatures = tf.saved_model.load(image_export["path"]).signatures
    decoded = tf.constant(_decoded(image_export["images"]))
    return {
        "bytes": signatures["serving_default"](image_bytes=tf.constant(image_export["images"])),
        "images": signatures["serving_images"](images=decoded),
        "empty_bytes": signatures["serving_default"](image_bytes=tf.constant([], tf.string)),
        "empty_images": signatures["serving_images"](images=tf.zeros([0, HEIGHT, WIDTH, 3])),
    }


# The signatures' outputs.

@pytest.mark.parametrize("signature", ["bytes", "images"])
def test_image_signatures_answer_every_output_per_task(image_export, image_outputs, signature):
    outputs = image_outputs[signature]
    assert sorted(outputs) == _expected_keys(TASKS)
    count = len(image_export["images"])
    for task, num_classes in {"species": 3, "grade": 2, "tags": 4}.items():
        k = min(TOP_K, num_classes)
        assert outputs[f"probabilities_{task}"].shape == (count, num_classes)
        assert outputs[f"probabilities_{task}"].dtype == tf.float32
        assert outputs[f"class_ids_{task}"].shape == (count,) and outputs[f"class_ids_{task}"].dtype == tf.int64
        assert outputs[f"class_names_{task}"].shape == (count,) and outputs[f"class_names_{task}"].dtype == tf.string
        assert outputs[f"top_k_scores_{task}"].shape == (count, k)
        assert outputs[f"top_k_scores_{task}"].dtype == tf.float32
        assert outputs[f"top_k_class_names_{task}"].shape == (count, k)
        assert outputs[f"top_k_class_names_{task}"].dtype == tf.string


@pytest.mark.parametrize("signature", ["bytes", "images"])
def test_image_probabilities_match_the_keras_model(image_export, image_outputs, signature):
    for task, expected in image_export["expected"].items():
        np.testing.assert_allclose(image_outputs[signature][f"probabilities_{task}"].numpy(), expected,
                                   atol=1e-5, rtol=0)
    grade = image_outputs[signature]["probabilities_grade"].numpy()
    np.testing.assert_allclose(grade.sum(-1), 1.0, atol=1e-6)  # one sigmoid unit, served as [1 - p, p]


def test_class_ids_names_and_top_k_follow_each_tasks_probabilities(image_outputs):
    outputs = image_outputs["bytes"]
    for task, names in CLASS_NAMES.items():
        probabilities = outputs[f"probabilities_{task}"].numpy()
        class_ids = outputs[f"class_ids_{task}"].numpy().tolist()
        assert class_ids == probabilities.argmax(-1).tolist()
        assert [n.decode() for n in outputs[f"class_names_{task}"].numpy()] == [names[i] for i in class_ids]
        best = np.argsort(-probabilities, axis=-1, kind="stable")[:, :min(TOP_K, len(names))]
        np.testing.assert_allclose(outputs[f"top_k_scores_{task}"].numpy(),
                                   np.take_along_axis(probabilities, best, -1))
        assert ([[n.decode() for n in row] for row in outputs[f"top_k_class_names_{task}"].numpy()]
                == [[names[i] for i in row] for row in best])
    # Otherwise the name checks above would prove little.
    assert max(len(set(outputs[f"class_ids_{task}"].numpy().tolist())) for task in CLASS_NAMES) >= 2


@pytest.mark.parametrize("signature", ["empty_bytes", "empty_images"])
def test_an_empty_batch_gives_empty_outputs_for_every_task(image_outputs, signature):
    outputs = image_outputs[signature]
    assert sorted(outputs) == _expected_keys(TASKS)
    for task, num_classes in {"species": 3, "grade": 2, "tags": 4}.items():
        assert outputs[f"probabilities_{task}"].shape == (0, num_classes)
        assert outputs[f"class_names_{task}"].shape == (0,)
        assert outputs[f"top_k_class_names_{task}"].shape == (0, min(TOP_K, num_classes))


def test_export_without_top_k_has_no_top_k_outputs(tmp_path):
    path = tfxfer.export_saved_model(_image_model(), tmp_path / "plain", class_names=CLASS_NAMES)
    outputs = tf.saved_model.load(path).signatures["serving_default"].structured_outputs
    assert sorted(outputs) == _expected_keys(TASKS, top_k=False)


# Files and metadata.

def test_one_labels_file_per_task_and_no_labels_txt(image_export):
    assets = os.path.join(image_export["path"], "assets")
    assert sorted(os.listdir(assets)) == ["labels_grade.txt", "labels_species.txt", "labels_tags.txt"]
    for task, names in CLASS_NAMES.items():
        with open(os.path.join(assets, f"labels_{task}.txt"), encoding="utf-8") as f:
            assert f.read().splitlines() == names


def test_metadata_has_a_tasks_entry_instead_of_head_and_class_names(image_export):
    with open(os.path.join(image_export["path"], "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert metadata["tasks"] == {task: {"head": KINDS[task], "class_names": names}
                                 for task, names in CLASS_NAMES.items()}
    assert list(metadata["tasks"]) == list(TASKS)  # the model's order, not sorted
    assert "class_names" not in metadata and "head" not in metadata
    assert metadata["top_k"] == TOP_K and type(metadata["top_k"]) is int and metadata["warmup_requests"] is True
    assert metadata["signatures"] == ["serving_default", "serving_images"]
    assert metadata["batch_norms_folded"] == 1
    assert metadata["input_shape"] == [HEIGHT, WIDTH, 3]


def test_without_class_names_every_task_is_named_by_indices(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        path = tfxfer.export_saved_model(_image_model(), tmp_path / "indices", top_k=10)
    assert "No class_names given; exporting class indices as names." in caplog.text
    for task, count in {"species": 3, "grade": 2, "tags": 4}.items():
        with open(os.path.join(path, "assets", f"labels_{task}.txt"), encoding="utf-8") as f:
            assert f.read().splitlines() == [str(i) for i in range(count)]
    outputs = tf.saved_model.load(path).signatures["serving_images"](images=tf.zeros([2, HEIGHT, WIDTH, 3]))
    assert outputs["top_k_class_names_tags"].shape == (2, 4)  # top_k=10, capped at each task's classes
    assert outputs["top_k_class_names_grade"].shape == (2, 2)


@pytest.mark.parametrize("class_names, match", [
    (["cat", "dog", "café au lait"], r"has a head per task \(species, grade, tags\): pass class_names as a dict "
                                     r".*Received: class_names of type list"),
    ({"species": CLASS_NAMES["species"], "grade": CLASS_NAMES["grade"]},
     r"must name exactly the model's tasks \['species', 'grade', 'tags'\].*missing \['tags'\], unknown \[\]\)"),
    ({**CLASS_NAMES, "colour": ["red"]}, r"exactly the model's tasks .*missing \[\], unknown \['colour'\]\)"),
    ({**CLASS_NAMES, "grade": ["poor", "fine", "great"]},
     r"The task 'grade' predicts 2 classes but 3 class names were given\. "
     r"Received: class_names\['grade'\]=\['poor', 'fine', 'great'\]"),
    ({**CLASS_NAMES, "grade": "pf"}, r"class names of task 'grade' must be a list .*Received: .*of type str"),
    ({**CLASS_NAMES, "tags": ["red", "two\nlines", "small", "striped"]}, r"non-empty single lines\. Received: \["),
])
def test_class_names_must_be_a_dict_of_exactly_the_tasks(tmp_path, class_names, match):
    with pytest.raises(ConfigError, match=match):
        tfxfer.export_saved_model(_image_model(), tmp_path / "model", class_names=class_names)
    assert not (tmp_path / "model").exists()


def test_a_dict_of_class_names_for_a_one_head_model_is_an_error(tmp_path):
    inputs = keras.Input((HEIGHT, WIDTH, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs), name="tiny")
    model = tfxfer.build_image_classifier(backbone, num_classes=3, preprocessing="tf", augmentation=False)
    with pytest.raises(ConfigError, match=r"model has one head: pass its class names as a list.*"
                                          r"Received: class_names with keys \['species'\]"):
        tfxfer.export_saved_model(model, tmp_path / "model", class_names={"species": CLASS_NAMES["species"]})
    assert not (tmp_path / "model").exists()


def test_tflite_refuses_a_multi_task_model_before_any_work(tmp_path):
    match = r"TFLite export supports one-head classifiers only.*Received: the multi-task classifier .*'species'"
    with pytest.raises(ConfigError, match=match) as info:
        tflite.export_tflite(_image_model(), tmp_path / "tflite", train=None, validation=None, class_names=[])
    assert isinstance(info.value, NotImplementedError)
    with pytest.raises(ConfigError, match=match):
        tflite.convert_tflite(_image_model(), "float32")
    assert not (tmp_path / "tflite").exists()


# Warmup and REST, in a TensorFlow-only process.

def test_warmup_file_holds_one_request_per_signature(image_export):
    requests = warmup.read_warmup_requests(os.path.join(image_export["path"], "assets.extra", warmup.WARMUP_FILE))
    assert [name for name, _ in requests] == ["serving_default", "serving_images"]
    (_, by_bytes), (_, by_images) = requests
    assert list(by_bytes["image_bytes"]) == image_export["warmup_examples"]
    np.testing.assert_array_equal(by_images["images"], _decoded(image_export["warmup_examples"]))


def _b64(contents):
    return base64.b64encode(contents).decode("ascii")


@pytest.fixture(scope="module")
def rest_served(image_export, tmp_path_factory):
    """REST bodies decoded here, run with the warmup requests in one TensorFlow-only process; TF Serving's replies."""
    b64 = [{"b64": _b64(c)} for c in image_export["images"]]
    bodies = {"row": {"instances": b64}, "columnar": {"inputs": {"image_bytes": b64}},
              "row_float_images": {"signature_name": "serving_images",
                                   "instances": _decoded(image_export["images"]).tolist()}}
    signatures = rest.signature_inputs(image_export["path"])
    requests = {name: rest.decode_request(json.dumps(body), signatures) for name, body in bodies.items()}
    jobs = {name: (r.signature_name, r.inputs) for name, r in requests.items()}
    path = os.path.join(image_export["path"], "assets.extra", warmup.WARMUP_FILE)
    jobs.update({f"warmup/{name}": (name, inputs) for name, inputs in warmup.read_warmup_requests(path)})
    results = run_in_tensorflow_only(tmp_path_factory.mktemp("child"), image_export["path"], jobs)
    replies = {name: json.loads(json.dumps(rest.format_response(results[name], r.format)))
               for name, r in requests.items()}
    return dict(results=results, replies=replies)


@pytest.mark.parametrize("signature", ["serving_default", "serving_images"])
def test_warmup_requests_replay_through_the_saved_model(image_export, rest_served, signature):
    outputs = rest_served["results"][f"warmup/{signature}"]
    assert sorted(outputs) == _expected_keys(TASKS)
    for task, expected in image_export["expected_warmup"].items():
        np.testing.assert_allclose(outputs[f"probabilities_{task}"], expected, atol=1e-5)


@pytest.mark.parametrize("name", ["row", "row_float_images"])
def test_rest_row_replies_carry_every_tasks_outputs_per_instance(image_export, rest_served, name):
    predictions = rest_served["replies"][name]["predictions"]
    assert len(predictions) == len(image_export["images"])
    assert all(sorted(p) == _expected_keys(TASKS) for p in predictions)
    for task, expected in image_export["expected"].items():
        np.testing.assert_allclose([p[f"probabilities_{task}"] for p in predictions], expected, atol=1e-5)
        assert ([p[f"class_names_{task}"] for p in predictions]
                == [CLASS_NAMES[task][i] for i in expected.argmax(-1)])
        assert [len(p[f"top_k_class_names_{task}"]) for p in predictions] == [min(TOP_K, expected.shape[-1])] * 4


def test_rest_columnar_reply_names_every_tasks_outputs(image_export, rest_served):
    outputs = rest_served["replies"]["columnar"]["outputs"]
    assert sorted(outputs) == _expected_keys(TASKS)
    for task, expected in image_export["expected"].items():
        np.testing.assert_allclose(outputs[f"probabilities_{task}"], expected, atol=1e-5)
        assert outputs[f"class_ids_{task}"] == expected.argmax(-1).tolist()


# tfxfer.prediction and recipes/predict.py.

def _answer(probabilities, names, top_k, threshold=None):
    best = np.argsort(-probabilities, kind="stable")[:top_k]
    return [names[i] for i in best if threshold is None or probabilities[i] > threshold]


def test_predict_image_files_answers_every_task(image_export):
    results = prediction.predict_image_files(image_export["path"], image_export["files"], top_k=2, batch_size=3)
    assert [r.source for r in results] == image_export["files"]
    for index, result in enumerate(results):
        assert result.top_k == [] and list(result.tasks) == list(TASKS)  # the metadata's order
        for task, classes in result.tasks.items():
            probabilities = image_export["expected"][task][index]
            threshold = 0.5 if task == "tags" else None
            assert [name for name, _ in classes] == _answer(probabilities, CLASS_NAMES[task], 2, threshold)
            assert [p for _, p in classes] == pytest.approx(
                [probabilities[CLASS_NAMES[task].index(name)] for name, _ in classes], abs=1e-5)


def test_the_threshold_decides_a_multi_label_tasks_answer(image_export):
    files = image_export["files"]
    everything = prediction.predict_image_files(image_export["path"], files, top_k=4, threshold=0.0)
    nothing = prediction.predict_image_files(image_export["path"], files, top_k=4, threshold=1.0)
    assert [len(r.tasks["tags"]) for r in everything] == [4] * len(files)
    assert [r.tasks["tags"] for r in nothing] == [[]] * len(files)
    assert [r.tasks["species"] for r in nothing] == [r.tasks["species"] for r in everything]  # one-label: top-k
    with pytest.raises(ConfigError, match=r"threshold must be a probability in \[0, 1\]\. Received: threshold=1\.5"):
        prediction.predict_image_files(image_export["path"], files, threshold=1.5)


def test_load_serving_model_reads_the_tasks_and_serves_probabilities_per_task(image_export):
    model = prediction.load_serving_model(os.path.dirname(image_export["path"]))
    assert model.class_names is None
    assert model.tasks == {task: prediction.ServedTask(KINDS[task], names) for task, names in CLASS_NAMES.items()}
    probabilities, refused = prediction.serving_probabilities(model, [image_export["images"][0], b"not an image",
                                                                      image_export["images"][2]])
    assert list(refused) == [1]
    for task, expected in image_export["expected"].items():
        np.testing.assert_allclose(probabilities[task], expected[[0, 2]], atol=1e-5)


def _parse_predict_output(stdout):
    """`{source: {task: [(name, probability)]}}` from predict.py's multi-task output."""
    parsed, source, task = {}, None, None
    for line in stdout.splitlines():
        if not line.startswith(" "):
            source = line
            parsed[source] = {}
        elif not line.startswith("    "):
            task = line.strip()
            parsed[source][task] = []
        elif not line.strip().startswith("(no class above"):
            probability, name = line.split(maxsplit=1)
            parsed[source][task].append((name, float(probability)))
    return parsed


@pytest.mark.slow  # a whole recipe in a process of its own, as in tests/test_recipes.py
def test_predict_recipe_prints_every_tasks_answer(image_export, script_server):
    run = script_server.run_recipe("predict.py", f"--model_dir={os.path.dirname(image_export['path'])}",
                                   "--top_k=2", "--threshold=0.5", *image_export["files"], timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    parsed = _parse_predict_output(run.stdout)
    assert list(parsed) == image_export["files"]
    for index, source in enumerate(image_export["files"]):
        assert list(parsed[source]) == list(TASKS)  # the model's order
        for task, classes in parsed[source].items():
            probabilities = image_export["expected"][task][index]
            threshold = 0.5 if task == "tags" else None
            assert [name for name, _ in classes] == _answer(probabilities, CLASS_NAMES[task], 2, threshold)
            for name, probability in classes:
                assert probability == pytest.approx(probabilities[CLASS_NAMES[task].index(name)], abs=1e-3)


# A multi-task text classifier.

@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    keras.utils.set_random_seed(1234)
    folder = tmp_path_factory.mktemp("multitask_texts")
    write_word_vectors(folder / "vectors.txt", POSITIVE + NEGATIVE, dim=4)
    backbone = tfxfer.load_word_vector_backbone(folder / "vectors.txt", ["good film", "bad plot", "the movie"],
                                                sequence_length=8, encoder="mean", seed=0)
    model = tfxfer.build_text_classifier(backbone, tasks=TEXT_TASKS)
    _sharpen(model, TEXT_TASKS)
    path = tfxfer.export_saved_model(model, folder / "reviews", class_names=TEXT_NAMES, top_k=2,
                                     warmup_examples=["i liked the film", "boring plot"])
    expected = model.predict(model.preprocessor(tf.constant(TEXTS)), verbose=0)
    return dict(model=model, path=path, expected=_served_probabilities(expected))


def test_text_signatures_answer_every_output_per_task(text_export):
    signatures = tf.saved_model.load(text_export["path"]).signatures
    by_text = signatures["serving_default"](texts=tf.constant(TEXTS))
    by_ids = signatures["serving_token_ids"](**text_serving.tokenize(text_export["model"], TEXTS))
    for outputs in (by_text, by_ids):
        assert sorted(outputs) == _expected_keys(TEXT_TASKS)
        for task, expected in text_export["expected"].items():
            np.testing.assert_allclose(outputs[f"probabilities_{task}"].numpy(), expected, atol=1e-5, rtol=0)
            assert outputs[f"probabilities_{task}"].dtype == tf.float32
            assert outputs[f"class_ids_{task}"].numpy().tolist() == expected.argmax(-1).tolist()
            assert outputs[f"class_ids_{task}"].dtype == tf.int64
            assert ([n.decode() for n in outputs[f"class_names_{task}"].numpy()]
                    == [TEXT_NAMES[task][i] for i in expected.argmax(-1)])
            assert outputs[f"top_k_class_names_{task}"].shape == (len(TEXTS), 2)
    empty = signatures["serving_default"](texts=tf.constant([], tf.string))
    assert {name: value.shape[0] for name, value in empty.items()} == {name: 0 for name in _expected_keys(TEXT_TASKS)}
    assert empty["probabilities_topics"].shape == (0, 3) and empty["probabilities_spam"].shape == (0, 2)


def test_text_labels_files_metadata_and_warmup(text_export):
    assets = os.path.join(text_export["path"], "assets")
    assert sorted(name for name in os.listdir(assets) if name.startswith("labels")) == [
        "labels_sentiment.txt", "labels_spam.txt", "labels_topics.txt"]
    with open(os.path.join(text_export["path"], "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert metadata["tasks"] == {
        "sentiment": {"head": "multiclass", "class_names": TEXT_NAMES["sentiment"]},
        "spam": {"head": "binary", "class_names": TEXT_NAMES["spam"]},
        "topics": {"head": "multilabel", "class_names": TEXT_NAMES["topics"]}}
    assert metadata["signatures"] == ["serving_default", "serving_token_ids"]
    requests = warmup.read_warmup_requests(os.path.join(text_export["path"], "assets.extra", warmup.WARMUP_FILE))
    assert [name for name, _ in requests] == ["serving_default", "serving_token_ids"]
    signatures = tf.saved_model.load(text_export["path"]).signatures
    for name, inputs in requests:  # what TF Serving replays on load
        outputs = signatures[name](**{key: tf.constant(value) for key, value in inputs.items()})
        assert sorted(outputs) == _expected_keys(TEXT_TASKS)


def test_predict_texts_answers_every_task(text_export):
    results = prediction.predict_texts(text_export["path"], TEXTS, top_k=1, threshold=0.3)
    for index, result in enumerate(results):
        for task, classes in result.tasks.items():
            probabilities = text_export["expected"][task][index]
            threshold = 0.3 if task == "topics" else None
            assert [name for name, _ in classes] == _answer(probabilities, TEXT_NAMES[task], 1, threshold)


@pytest.mark.slow  # a whole recipe in a process of its own, as in tests/test_recipes.py
def test_predict_recipe_prints_every_tasks_answer_for_texts(text_export, script_server):
    run = script_server.run_recipe("predict.py", f"--model_dir={text_export['path']}", "--top_k=2",
                                   "--threshold=0", f"--text={TEXTS[0]}", TEXTS[1], timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    parsed = _parse_predict_output(run.stdout)
    assert list(parsed) == TEXTS[:2]
    for index, text in enumerate(TEXTS[:2]):
        for task, classes in parsed[text].items():
            assert [name for name, _ in classes] == _answer(text_export["expected"][task][index], TEXT_NAMES[task], 2)


def test_bert_multi_task_export_serves_texts_and_token_ids_alike(tmp_path):
    # A keras-hub encoder takes a dict of token inputs: serving_token_ids must pass them on whole.
    keras.utils.set_random_seed(1234)
    model = tfxfer.build_text_classifier(save_tiny_bert_preset(tmp_path / "preset", num_layers=1), tasks=TEXT_TASKS,
                                         sequence_length=16, pooling="mean")
    _sharpen(model, TEXT_TASKS)
    path = tfxfer.export_saved_model(model, tmp_path / "bert", class_names=TEXT_NAMES, top_k=5)
    signatures = tf.saved_model.load(path).signatures
    tokens = text_serving.tokenize(model, TEXTS)
    by_text = signatures["serving_default"](texts=tf.constant(TEXTS))
    by_ids = signatures["serving_token_ids"](**tokens)
    expected = _served_probabilities(model.predict(model.preprocessor(tf.constant(TEXTS)), verbose=0))
    for outputs in (by_text, by_ids):
        assert sorted(outputs) == _expected_keys(TEXT_TASKS)
        for task, probabilities in expected.items():
            np.testing.assert_allclose(outputs[f"probabilities_{task}"].numpy(), probabilities, atol=1e-5, rtol=0)
            assert outputs[f"top_k_scores_{task}"].shape == (len(TEXTS), probabilities.shape[-1])  # 5, capped
    empty = signatures["serving_token_ids"](**{name: tf.zeros([0, 16], tf.int32) for name in tokens})
    assert empty["probabilities_sentiment"].shape == (0, 3) and empty["class_names_spam"].shape == (0,)
