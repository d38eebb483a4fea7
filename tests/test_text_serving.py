"""Text models in TF Serving: warmup requests of raw strings, the `serving_token_ids`
signature, REST bodies of texts, predict.py on texts, and TFLite's refusal.

REST bodies are decoded in this process by `recipes/rest_requests.py`; the tensors then
run in a fresh process that imports only tensorflow and tensorflow_text.
"""

import json
import os

import numpy as np
import pytest
import rest_requests as rest  # recipes/rest_requests.py
import tensorflow as tf
from _serving_child import (
    heavy_modules,
    model_code_modules,
    run_child,
    run_in_tensorflow_only,
)
from _text_helpers import NEGATIVE, POSITIVE, save_tiny_bert_preset, write_word_vectors

import tfxfer
from tfxfer import prediction
from tfxfer.errors import ConfigError, UserError
from tfxfer.export import text_serving, tflite, warmup

NAMES = ["negative", "neutral", "positive ✓"]
TEXTS = ["the movie was good", "awful plot, I hated it", "café crème unknown words", ""]
WARMUP_TEXTS = ["i liked the film", "boring plot"]
WV_TEXTS = TEXTS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def _keras(model, texts):
    return model.predict(model.preprocessor(tf.constant(texts)), verbose=0)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert")
    model = tfxfer.build_text_classifier(save_tiny_bert_preset(folder / "preset"), num_classes=3,
                                         sequence_length=16, pooling="mean")
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 20.0)  # A sharper head, so texts land in different classes.
    path = tfxfer.export_saved_model(model, folder / "reviews", class_names=NAMES, top_k=2,
                                     warmup_examples=WARMUP_TEXTS)
    return dict(folder=folder, model=model, path=path, expected=_keras(model, TEXTS),
                expected_warmup=_keras(model, WARMUP_TEXTS))


@pytest.fixture(scope="module")
def word_vectors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("word_vectors")
    write_word_vectors(folder / "vectors.txt", POSITIVE + NEGATIVE, dim=4)
    backbone = tfxfer.load_word_vector_backbone(folder / "vectors.txt", ["good film", "bad plot", "the movie"],
                                                sequence_length=8, encoder="mean", seed=0)
    model = tfxfer.build_text_classifier(backbone, num_classes=3)
    kernel = model.get_layer("predictions").kernel
    kernel.assign(kernel * 20.0)
    path = tfxfer.export_saved_model(model, folder / "wv", class_names=NAMES)
    return dict(folder=folder, model=model, path=path, expected=_keras(model, WV_TEXTS))


# Item 2: the token-id signature.

def test_token_ids_signature_takes_the_model_inputs_and_matches_serving_default(bert):
    signatures = tf.saved_model.load(bert["path"]).signatures
    assert sorted(signatures) == ["serving_default", "serving_token_ids"]
    specs = signatures["serving_token_ids"].structured_input_signature[1]
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in specs.items()} == {
        name: (tf.int32, [None, None]) for name in ("padding_mask", "segment_ids", "token_ids")}
    by_text = signatures["serving_default"](texts=tf.constant(TEXTS))
    by_ids = signatures["serving_token_ids"](**text_serving.tokenize(bert["model"], TEXTS))
    assert sorted(by_ids) == sorted(by_text) == [
        "class_ids", "class_names", "probabilities", "top_k_class_names", "top_k_scores"]
    np.testing.assert_allclose(by_ids["probabilities"].numpy(), bert["expected"], atol=1e-5)
    for name in by_text:
        np.testing.assert_array_equal(by_ids[name].numpy(), by_text[name].numpy()) if "names" in name or \
            "ids" in name else np.testing.assert_allclose(by_ids[name].numpy(), by_text[name].numpy(), atol=1e-6)
    empty = signatures["serving_token_ids"](**{n: tf.zeros([0, 16], tf.int32) for n in specs})
    assert empty["probabilities"].shape == (0, 3)


def test_word_vector_token_ids_signature_takes_one_input(word_vectors):
    signature = tf.saved_model.load(word_vectors["path"]).signatures["serving_token_ids"]
    (name, spec), = signature.structured_input_signature[1].items()
    assert (name, spec.dtype, spec.shape.as_list()) == ("token_ids", tf.int64, [None, 8])
    outputs = signature(**text_serving.tokenize(word_vectors["model"], WV_TEXTS))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), word_vectors["expected"], atol=1e-5)


# Item 1: text warmup.

def test_text_warmup_file_holds_the_raw_strings_and_their_token_ids(bert):
    requests = warmup.read_warmup_requests(os.path.join(bert["path"], "assets.extra", warmup.WARMUP_FILE))
    assert [name for name, _ in requests] == ["serving_default", "serving_token_ids"]
    (_, by_text), (_, by_ids) = requests
    assert list(by_text) == ["texts"]
    assert [t.decode("utf-8") for t in by_text["texts"]] == WARMUP_TEXTS
    expected_ids = text_serving.tokenize(bert["model"], WARMUP_TEXTS)
    assert sorted(by_ids) == sorted(expected_ids)
    for name, value in expected_ids.items():
        np.testing.assert_array_equal(by_ids[name], value.numpy())
    with open(os.path.join(bert["path"], "assets.extra", "tfxfer_metadata.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert metadata["warmup_requests"] is True
    assert metadata["signatures"] == ["serving_default", "serving_token_ids"]
    assert metadata["token_inputs"] == {n: "int32 (None, None)" for n in ("padding_mask", "segment_ids", "token_ids")}


@pytest.mark.parametrize("bad, match", [
    ([b"\x89PNG"], r"must be a str \(the model takes raw texts, not encoded images\)\. Received: examples\[0\] "
                   r"of type bytes"),
    ("one text", r"non-empty list of strings .*Received: str of length 8"),
    ([], r"non-empty list of strings .*Received: list of length 0"),
])
def test_text_warmup_examples_must_be_a_list_of_str(word_vectors, tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        tfxfer.export_saved_model(word_vectors["model"], tmp_path / "model", class_names=NAMES,
                                  warmup_examples=bad)
    assert not (tmp_path / "model").exists()


# Item 3: REST bodies of texts.

def _bodies(model):
    ids = {name: value.numpy().tolist() for name, value in text_serving.tokenize(model, TEXTS).items()}
    return {
        "row": {"instances": TEXTS},
        "row_named": {"instances": [{"texts": t} for t in TEXTS]},
        "row_with_signature_name": {"signature_name": "serving_default", "instances": TEXTS},
        "columnar": {"inputs": TEXTS},
        "columnar_named_with_signature_name": {"signature_name": "serving_default", "inputs": {"texts": TEXTS}},
        "row_token_ids": {"signature_name": "serving_token_ids",
                          "instances": [{n: v[i] for n, v in ids.items()} for i in range(len(TEXTS))]},
        "columnar_token_ids": {"signature_name": "serving_token_ids", "inputs": ids},
    }


@pytest.fixture(scope="module")
def served(bert, tmp_path_factory):
    """REST requests (decoded here) and warmup requests, run in one tensorflow + tensorflow_text process."""
    signatures = rest.signature_inputs(bert["path"])
    requests = {name: rest.decode_request(json.dumps(body), signatures) for name, body in _bodies(bert["model"]).items()}
    jobs = {name: (r.signature_name, r.inputs) for name, r in requests.items()}
    path = os.path.join(bert["path"], "assets.extra", warmup.WARMUP_FILE)
    jobs.update({f"warmup/{name}": (name, inputs) for name, inputs in warmup.read_warmup_requests(path)})
    results = run_in_tensorflow_only(tmp_path_factory.mktemp("child"), bert["path"], jobs,
                                     imports=("tensorflow_text",))
    replies = {name: json.loads(json.dumps(rest.format_response(results[name], r.format)))
               for name, r in requests.items()}
    return dict(requests=requests, results=results, replies=replies)


def test_text_warmup_requests_run_through_the_saved_model(bert, served):
    for name in ("warmup/serving_default", "warmup/serving_token_ids"):
        np.testing.assert_allclose(served["results"][name]["probabilities"], bert["expected_warmup"], atol=1e-5)


def test_rest_text_bodies_decode_to_utf8_strings(served):
    for name, request in served["requests"].items():
        if "token_ids" in name:
            assert request.signature_name == "serving_token_ids"
            assert {k: v.dtype for k, v in request.inputs.items()} == {
                n: np.int32 for n in ("padding_mask", "segment_ids", "token_ids")}
        else:
            assert request.signature_name == "serving_default"
            assert [t.decode("utf-8") for t in request.inputs["texts"]] == TEXTS
        assert request.format == ("row" if name.startswith("row") else "columnar")


def test_rest_text_replies_match_keras(bert, served):
    expected_ids = bert["expected"].argmax(-1).tolist()
    for name, reply in served["replies"].items():
        if name.startswith("row"):
            predictions = reply["predictions"]
            np.testing.assert_allclose([p["probabilities"] for p in predictions], bert["expected"], atol=1e-5)
            assert [p["class_names"] for p in predictions] == [NAMES[i] for i in expected_ids]
            assert [p["top_k_class_names"][0] for p in predictions] == [NAMES[i] for i in expected_ids]
        else:
            outputs = reply["outputs"]
            np.testing.assert_allclose(outputs["probabilities"], bert["expected"], atol=1e-5)
            assert outputs["class_ids"] == expected_ids
            assert np.shape(outputs["top_k_scores"]) == (len(TEXTS), 2)


def test_text_request_builds_a_row_body():
    assert rest.text_request(["a b", "ç"]) == {"instances": ["a b", "ç"]}
    assert rest.text_request(["x"], signature_name="serving_default") == {
        "signature_name": "serving_default", "instances": ["x"]}


# Item 4: predicting texts.

def test_predict_texts_gives_top_k_class_names(word_vectors):
    assert prediction.input_kind(word_vectors["path"]) == "text"
    results = prediction.predict_texts(os.path.dirname(word_vectors["path"]), WV_TEXTS, top_k=2, batch_size=2)
    assert [r.source for r in results] == WV_TEXTS
    for result, expected in zip(results, word_vectors["expected"]):
        best = np.argsort(-expected)[:2]
        assert [name for name, _ in result.top_k] == [NAMES[i] for i in best]
        assert [p for _, p in result.top_k] == pytest.approx(expected[best], abs=1e-5)


def test_predict_texts_and_images_are_not_mixed_up(word_vectors, tmp_path):
    with pytest.raises(ValueError, match=r"takes text inputs; pass texts \(predict\.py: --text/--text_file\)\. "
                                         r"Received: image inputs"):
        prediction.predict_image_files(word_vectors["path"], [str(tmp_path / "a.png")])
    with pytest.raises(ValueError, match=r"Pass at least one text to predict\. Received: none"):
        prediction.predict_texts(word_vectors["path"], [])


def test_read_text_lines(tmp_path):
    (tmp_path / "texts.txt").write_text("first text\n\n  \nsecond, ç\r\n", encoding="utf-8")
    assert prediction.read_text_lines(str(tmp_path / "texts.txt")) == ["first text", "second, ç"]
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"at least one non-empty line of text\. Received: an empty file"):
        prediction.read_text_lines(str(tmp_path / "empty.txt"))
    with pytest.raises(FileNotFoundError, match=r"one text per line\. Received: '.*nope\.txt'"):
        prediction.read_text_lines(str(tmp_path / "nope.txt"))


def test_read_text_lines_drops_a_byte_order_mark_and_counts_blank_lines(tmp_path, caplog):
    # What Notepad writes: a byte-order mark, then Windows line ends.
    (tmp_path / "bom.txt").write_bytes("\ufeffgood film\r\n\r\nbad\r\n".encode("utf-8"))
    with caplog.at_level("INFO", logger="absl"):
        assert prediction.read_text_lines(str(tmp_path / "bom.txt")) == ["good film", "bad"]
    assert "Skipped 1 blank lines of" in caplog.text


def test_read_text_lines_refuses_a_file_that_is_not_utf8_naming_the_fix(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("bon été\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.txt is not UTF-8 text \(invalid continuation byte at byte 4\)\. "
                                          r"Re-save it as UTF-8, e\.g\. `iconv"):
        prediction.read_text_lines(str(tmp_path / "latin1.txt"))


def test_read_text_lines_names_a_utf16_file_as_the_training_loaders_do(tmp_path):
    # What Windows' "Unicode" save writes; as UTF-8 it would read as an undecodable byte 0xff.
    (tmp_path / "utf16.txt").write_bytes("good film\n".encode("utf-16"))
    with pytest.raises(ConfigError, match=r"utf16\.txt is UTF-16 .*`iconv -f utf-16 -t utf-8 in > out`"):
        prediction.read_text_lines(str(tmp_path / "utf16.txt"))


@pytest.mark.slow  # a whole recipe in a process of its own, as in tests/test_recipes.py
def test_predict_recipe_on_texts_from_flags_arguments_and_a_file(word_vectors, tmp_path, script_server):
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS[2:3]) + "\n", encoding="utf-8")
    run = script_server.run_recipe("predict.py", f"--model_dir={os.path.dirname(word_vectors['path'])}", "--top_k=2",
                                   f"--text={TEXTS[0]}", f"--text_file={tmp_path / 'texts.txt'}", TEXTS[1])
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    order = [0, 1, 2]  # --text, then arguments, then the file's lines
    assert lines[0::3] == [TEXTS[i] for i in order]
    for block, index in enumerate(order):
        expected = word_vectors["expected"][index]
        for line, class_id in zip(lines[3 * block + 1:3 * block + 3], np.argsort(-expected)[:2]):
            probability, name = line.split(maxsplit=1)
            assert name == NAMES[class_id]
            assert float(probability) == pytest.approx(expected[class_id], abs=1e-3)


def test_predict_recipe_refuses_a_file_given_as_a_text_naming_text_file(word_vectors, tmp_path, script_server):
    # Answered as a text, the file's name would get a confident class.
    (tmp_path / "reviews.txt").write_text(TEXTS[0] + "\n", encoding="utf-8")
    stderr = script_server.usage_error("predict.py", f"--model_dir={os.path.dirname(word_vectors['path'])}",
                                       TEXTS[1], str(tmp_path / "reviews.txt"))
    assert (f"error: This model takes texts, and '{tmp_path / 'reviews.txt'}' is a file: pass "
            f"--text_file={tmp_path / 'reviews.txt'} to classify its lines (one text per line)") in stderr


def test_predict_recipe_refuses_a_folder_given_as_a_text(word_vectors, tmp_path, script_server):
    # E.g. a folder of images given to a text model: its path would get a confident class, without a word.
    (tmp_path / "photos").mkdir()
    stderr = script_server.usage_error("predict.py", f"--model_dir={os.path.dirname(word_vectors['path'])}",
                                       TEXTS[1], str(tmp_path / "photos"))
    assert (f"error: This model takes texts, and '{tmp_path / 'photos'}' is a folder: pass texts, --text_file=FILE "
            f"with one text per line, or --text='{tmp_path / 'photos'}' to classify the name itself. Received: 1 "
            "folder argument(s)") in stderr


def test_predict_recipe_refuses_a_blank_text(word_vectors, script_server):
    # E.g. "$REVIEW" of an unset variable: its answer would print under a blank line.
    stderr = script_server.usage_error("predict.py", f"--model_dir={os.path.dirname(word_vectors['path'])}",
                                       f"--text={TEXTS[0]}", TEXTS[1], " ")
    assert ("error: A text to classify is blank (an unset shell variable?); pass texts with words in them. "
            "Received: 1 blank of 3 texts from --text and the arguments (the first at position 3)") in stderr


@pytest.mark.slow  # a whole recipe in a fresh process
def test_text_prediction_and_predict_recipe_need_tensorflow_and_tensorflow_text_only(word_vectors, tmp_path):
    # As for images (tests/test_deployment.py); tfxfer.prediction imports tensorflow_text itself.
    base = os.path.dirname(word_vectors["path"])
    reply = run_child(tmp_path, calls={"predicted": ("tfxfer.prediction:predict_texts", (base, WV_TEXTS),
                                                     {"top_k": 2})},
                      script=[os.path.join(REPO, "recipes", "predict.py"), f"--model_dir={base}", "--top_k=2",
                              f"--text={TEXTS[0]}"])
    assert reply["exit_code"] in (0, None), reply["stderr"][-2000:]
    for result, expected in zip(reply["results"]["predicted"], word_vectors["expected"]):
        assert [name for name, _ in result.top_k] == [NAMES[i] for i in np.argsort(-expected)[:2]]
    assert reply["stdout"].splitlines()[0] == TEXTS[0]
    assert "tensorflow_text" in {m.split(".")[0] for m in reply["modules"]}
    tfxfer_modules = [m for m in reply["modules"] if m.split(".")[0] == "tfxfer"]
    assert "tfxfer.prediction" in tfxfer_modules
    assert heavy_modules(set(reply["modules"]) - set(tfxfer_modules)) == []
    assert model_code_modules(tfxfer_modules) == []


# Item 5: TFLite.

def test_tflite_refuses_text_models_and_says_why(word_vectors, tmp_path):
    match = r"TFLite export supports image classifiers only\. .*Received: the text classifier .*no TFLite builtin"
    with pytest.raises(NotImplementedError, match=match) as info:
        tflite.export_tflite(word_vectors["model"], tmp_path / "tflite", train=None, validation=None,
                             class_names=NAMES)
    # The caller's choice of model, not a bug: the recipes show the message without a traceback.
    assert isinstance(info.value, UserError)
    with pytest.raises(NotImplementedError, match=match):
        tflite.convert_tflite(word_vectors["model"], "float32")
    assert not (tmp_path / "tflite").exists()
