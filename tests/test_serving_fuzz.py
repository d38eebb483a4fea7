"""Serving never dies on bad requests: hypothesis fuzzes the `serving_default` signatures.

Real exports of tiny models (an image classifier, a BERT and a word-vector text
classifier) are loaded in a fresh process that imports only tensorflow,
tensorflow_text and hypothesis, as TF Serving would run them. Every request
must either give well-formed outputs or fail with `InvalidArgumentError`; a
native crash shows as a non-zero exit code, a malformed output as a failed
assertion in the child (with hypothesis' falsifying example on stderr).
The examples are derandomized, so every run sends the same requests.
"""

import io
import json
import textwrap

import keras
import pytest
from _serving_child import run_script
from _text_helpers import (
    NEGATIVE,
    POSITIVE,
    VOCAB,
    save_tiny_bert_preset,
    write_word_vectors,
)
from PIL import Image

import tfxfer

MAX_EXAMPLES = 150
IMAGE_NAMES = ["cat", "dog", "café au lait"]
TEXT_NAMES = ["negative", "neutral", "positive ✓"]

# Requests once found to slip past a check; each must stay rejected.
REGRESSIONS = {
    # A valid 34-byte lossless WebP declaring 8000x8000 pixels: `image_pixels` did not read WebP
    # headers, so it passed the pixel cap and decoding it allocated hundreds of MB.
    "webp_declaring_8000x8000": (b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0e\x00\x00\x00/?\xdf\xcf\x07\x07\x10\x11"
                                 b"\xfd\x0fDD\xff\x03"),
}


def _encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _real_images():
    """Small valid images of every served format: the seeds for truncation and corruption."""
    rgb = Image.new("RGB", (12, 10), (200, 40, 10))
    rgb.putpixel((3, 4), (0, 255, 0))
    frames = [Image.new("P", (9, 7), index) for index in range(2)]
    return {
        "jpeg": _encoded(rgb, "JPEG"),
        "png": _encoded(rgb, "PNG"),
        "png_gray": _encoded(rgb.convert("L"), "PNG"),
        "png_rgba": _encoded(rgb.convert("RGBA"), "PNG"),
        "gif": _encoded(rgb.convert("P"), "GIF"),
        "gif_animated": _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "bmp": _encoded(rgb, "BMP"),
    }


def _image_export(folder):
    inputs = keras.Input((32, 48, 3))
    features = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
    model = tfxfer.build_image_classifier(keras.Model(inputs, features, name="tiny"), num_classes=3,
                                          preprocessing="tf", augmentation=False)
    return tfxfer.export_saved_model(model, folder / "images", class_names=IMAGE_NAMES, top_k=2)


def _bert_export(folder):
    model = tfxfer.build_text_classifier(save_tiny_bert_preset(folder / "preset", num_layers=1), num_classes=3,
                                         sequence_length=16, pooling="mean")
    return tfxfer.export_saved_model(model, folder / "bert", class_names=TEXT_NAMES, top_k=2)


def _word_vector_export(folder):
    write_word_vectors(folder / "vectors.txt", POSITIVE + NEGATIVE, dim=4)
    backbone = tfxfer.load_word_vector_backbone(folder / "vectors.txt", ["good film", "bad plot", "the movie"],
                                                sequence_length=8, encoder="mean", seed=0)
    model = tfxfer.build_text_classifier(backbone, num_classes=3)
    return tfxfer.export_saved_model(model, folder / "word_vectors", class_names=TEXT_NAMES)


# The fresh process. It checks each output itself, so that hypothesis can shrink a failure.
CHILD = textwrap.dedent(r'''
    import json, struct, sys, zlib
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  Registers the tokenizer ops, as TF Serving links them.
    from hypothesis import HealthCheck, given, settings, strategies as st

    request = json.load(open(sys.argv[1]))
    real = {name: bytes.fromhex(data) for name, data in request["images"].items()}
    counts = {}
    fuzz = settings(max_examples=request["max_examples"], deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


    def check(outputs, batch_size, labels, top_k):
        probabilities = outputs["probabilities"].numpy()
        assert probabilities.dtype == np.float32 and probabilities.shape == (batch_size, len(labels)), \
            probabilities.shape
        assert np.isfinite(probabilities).all(), probabilities
        assert (probabilities >= 0).all() and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5), probabilities
        class_ids = outputs["class_ids"].numpy()
        assert class_ids.shape == (batch_size,) and ((class_ids >= 0) & (class_ids < len(labels))).all(), class_ids
        assert [n.decode() for n in outputs["class_names"].numpy()] == [labels[i] for i in class_ids]
        if top_k:
            assert outputs["top_k_scores"].shape == (batch_size, top_k)
            assert np.isfinite(outputs["top_k_scores"].numpy()).all()
            assert all(n.decode() in labels for n in outputs["top_k_class_names"].numpy().ravel())


    def call(name, batch, must_serve=False, must_reject=False):
        """Runs one request; True if served (outputs checked), False if rejected."""
        job = request["exports"][name]
        signature = signatures[name]
        counts.setdefault(name, {"calls": 0, "rejected": 0})
        counts[name]["calls"] += 1
        try:
            outputs = signature(**{job["input"]: tf.constant(batch, tf.string, shape=[len(batch)])})
        except tf.errors.InvalidArgumentError:
            counts[name]["rejected"] += 1
            assert not must_serve, f"a valid request was rejected: {batch!r}"
            return False
        assert not must_reject, f"an invalid request was served: {batch!r}"
        check(outputs, len(batch), job["labels"], job["top_k"])
        return True


    def with_size(contents, fmt, width, height):
        """`contents` with its header's width and height replaced (checksums fixed, so only the size is wrong)."""
        data = bytearray(contents)
        if fmt == "png":
            data[16:24] = struct.pack(">II", width % 2 ** 32, height % 2 ** 32)
            data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        elif fmt == "gif":
            data[6:10] = struct.pack("<HH", width % 2 ** 16, height % 2 ** 16)
        elif fmt == "bmp":
            data[18:26] = struct.pack("<ii", width % 2 ** 32 - 2 ** 31, height % 2 ** 32 - 2 ** 31)
        else:  # jpeg: the baseline frame header (SOF0) holds height then width.
            start = data.index(b"\xff\xc0")
            data[start + 5:start + 9] = struct.pack(">HH", height % 2 ** 16, width % 2 ** 16)
        return bytes(data)


    def corrupt(contents, edits):
        data = bytearray(contents)
        for position, value in edits:
            data[position % len(data)] = value
        return bytes(data)


    sides = st.one_of(st.sampled_from([0, 1, 7071, 7072, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]),
                      st.integers(0, 2 ** 32 - 1))
    seeds = st.sampled_from(sorted(real))
    magic = st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBPVP8L"])
    bad_images = st.one_of(
        st.just(b""),
        st.binary(max_size=300),
        st.builds(lambda m, rest: m + rest, magic, st.binary(max_size=64)),
        seeds.flatmap(lambda name: st.integers(0, len(real[name]) - 1).map(lambda n: real[name][:n])),
        st.builds(lambda name, edits: corrupt(real[name], edits), seeds,
                  st.lists(st.tuples(st.integers(0, 10 ** 4), st.integers(0, 255)), min_size=1, max_size=8)),
        st.builds(lambda fmt, w, h: with_size(real[fmt], fmt, w, h),
                  st.sampled_from(["jpeg", "png", "gif", "bmp"]), sides, sides),
    )
    good_images = seeds.map(real.__getitem__)

    long_texts = st.builds(lambda piece, repeat: piece * repeat, st.text(min_size=1, max_size=8),
                           st.integers(1000, 20000))
    texts = st.one_of(
        st.just(b""),
        st.text().map(str.encode),
        st.text(st.characters(max_codepoint=0x1f)).map(str.encode),  # control characters only
        st.lists(st.sampled_from(request["vocabulary"]), max_size=40).map(lambda words: " ".join(words).encode()),
        long_texts.map(str.encode),
        st.binary(max_size=200),  # mostly invalid UTF-8
    )


    @fuzz
    @given(st.lists(st.one_of(good_images, bad_images), max_size=4))
    def fuzz_images(batch):
        served = call("images", batch, must_serve=all(item in real.values() for item in batch))
        if b"" in batch:
            assert not served, "a batch holding an empty string was served"


    def fuzz_texts(name):
        @fuzz
        @given(st.lists(texts, max_size=4))
        def run(batch):
            call(name, batch)
        run()


    signatures = {name: tf.saved_model.load(job["path"]).signatures["serving_default"]
                  for name, job in request["exports"].items()}
    regressions = {name: call("images", [bytes.fromhex(data)])
                   for name, data in request["regressions"].items()}
    call("images", list(real.values()), must_serve=True)  # sanity: the fuzzed signature serves real images
    fuzz_images()
    for name in request["exports"]:
        if name != "images":
            call(name, request["vocabulary"][:3], must_serve=True)
            fuzz_texts(name)
    modules = sorted(m for m in sys.modules if m.split(".")[0] in ("keras_hub", "keras_nlp", "tfxfer"))
    print(json.dumps({"counts": counts, "regressions_served": regressions, "modules": modules}))
''')


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """Exports the three tiny models, fuzzes them in one fresh process; returns it and its report."""
    folder = tmp_path_factory.mktemp("fuzz")
    keras.utils.set_random_seed(1234)
    exports = {
        "images": {"path": _image_export(folder), "input": "image_bytes", "labels": IMAGE_NAMES, "top_k": 2},
        "bert": {"path": _bert_export(folder), "input": "texts", "labels": TEXT_NAMES, "top_k": 2},
        "word_vectors": {"path": _word_vector_export(folder), "input": "texts", "labels": TEXT_NAMES, "top_k": None},
    }
    request = {
        "exports": exports, "max_examples": MAX_EXAMPLES, "vocabulary": VOCAB,
        "images": {name: data.hex() for name, data in _real_images().items()},
        "regressions": {name: data.hex() for name, data in REGRESSIONS.items()},
    }
    (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
    # The timeout is the hard bound; a normal run takes well under a minute.
    child = run_script(CHILD, folder / "request.json", cwd=folder, timeout=240)
    report = json.loads(child.stdout.strip().splitlines()[-1]) if child.returncode == 0 else None
    return dict(child=child, report=report)


def test_fuzzing_process_survives_every_request(fuzzed):
    # A native crash (abort, segfault, OOM kill) gives a non-zero exit; so does a failed output check.
    assert fuzzed["child"].returncode == 0, fuzzed["child"].stderr[-5000:]


@pytest.mark.parametrize("name", ["images", "bert", "word_vectors"])
def test_each_signature_got_the_fuzzed_requests(fuzzed, name):
    assert fuzzed["child"].returncode == 0, fuzzed["child"].stderr[-5000:]
    counts = fuzzed["report"]["counts"][name]
    # The fuzzed examples plus the sanity call (and, for images, the regression requests).
    assert counts["calls"] >= MAX_EXAMPLES + 1
    assert counts["rejected"] < counts["calls"]


def test_bad_image_bytes_are_rejected_not_served(fuzzed):
    assert fuzzed["child"].returncode == 0, fuzzed["child"].stderr[-5000:]
    counts = fuzzed["report"]["counts"]["images"]
    # Most fuzzed image requests hold at least one bad item, which fails the whole batch.
    assert counts["rejected"] > counts["calls"] // 3


def test_regression_requests_stay_rejected(fuzzed):
    assert fuzzed["child"].returncode == 0, fuzzed["child"].stderr[-5000:]
    assert fuzzed["report"]["regressions_served"] == {name: False for name in REGRESSIONS}


def test_fuzzing_needs_neither_keras_nor_tfxfer(fuzzed):
    assert fuzzed["child"].returncode == 0, fuzzed["child"].stderr[-5000:]
    assert fuzzed["report"]["modules"] == []

