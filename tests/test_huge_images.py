"""Huge images: rejected before decoding when serving, trained on in bounded memory.

A 20000x20000 PNG of zeros is ~1 MB on the wire but would decode to 1.2 GB of
uint8 (4.8 GB as float32) pixels; the serving graph must answer InvalidArgument
instead of allocating that. Training has no cap, so a folder holding a few
8000x8000 photos must load without holding them as float32.
"""

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.data import image_ops

HEIGHT, WIDTH = 16, 24


def _zeros_png(width, height, rgb=(0, 0, 0)):
    """A valid RGB PNG of zeros (or of colour `rgb`), compressed row by row (never held decoded in memory)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes(rgb) * width  # filter byte + pixels
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def huge_png():
    return _zeros_png(20000, 20000)


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_huge_png_is_small_on_the_wire_and_declares_400_megapixels(huge_png):
    assert len(huge_png) < 2_000_000
    assert image_ops.image_pixels(tf.constant(huge_png)).numpy() == 400_000_000


@pytest.mark.parametrize("encode", ["png", "jpeg", "gif", "bmp", "png_gray", "webp", "webp_lossless", "webp_alpha"])
def test_image_pixels_reads_the_header_of_every_format(encode):
    pixels = _pixels((37, 53, 3))
    if encode == "png":
        contents = tf.io.encode_png(pixels).numpy()
    elif encode == "png_gray":
        contents = tf.io.encode_png(pixels[..., :1]).numpy()
    elif encode == "jpeg":
        contents = tf.io.encode_jpeg(pixels).numpy()
    else:
        image = pytest.importorskip("PIL.Image")
        options = {"webp": ("RGB", "WEBP", {}), "webp_lossless": ("RGB", "WEBP", {"lossless": True}),
                   "webp_alpha": ("RGBA", "WEBP", {})}
        mode, image_format, kwargs = options.get(encode, ("RGB", encode.upper(), {}))
        if mode == "RGBA":
            pixels = np.concatenate([pixels, _pixels((37, 53, 1), seed=1)], axis=-1)
        buffer = io.BytesIO()
        image.fromarray(pixels, mode).save(buffer, image_format, **kwargs)
        contents = buffer.getvalue()
    chunk = {"webp": b"VP8 ", "webp_lossless": b"VP8L", "webp_alpha": b"VP8X"}.get(encode)
    assert chunk is None or contents[12:16] == chunk  # Each WebP header layout is covered.
    assert image_ops.image_pixels(tf.constant(contents)).numpy() == 37 * 53
    assert image_ops.decode_image(tf.constant(contents), max_pixels=37 * 53).shape == (37, 53, 3)


def test_tiny_webp_declaring_8000x8000_is_rejected_before_decoding():
    # 34 bytes of lossless WebP header that would make the decoder allocate 8000x8000 pixels.
    contents = (b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0e\x00\x00\x00/?\xdf\xcf\x07\x07\x10\x11"
                b"\xfd\x0fDD\xff\x03")
    assert image_ops.image_pixels(tf.constant(contents)).numpy() == 8000 * 8000
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Image too large to decode"):
        image_ops.decode_image(tf.constant(contents), max_pixels=image_ops.MAX_SERVING_PIXELS)


@pytest.mark.parametrize("signature", [b"\xff\x0a", b"\0\0\0\x0cJXL \r\n\x87\n"])
def test_jpeg_xl_is_refused_under_a_pixel_cap(signature):
    contents = tf.constant(signature + b"\0" * 40)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"JPEG XL images are not accepted here: their size cannot be checked.*Send JPEG, PNG"):
        image_ops.decode_image(contents, max_pixels=image_ops.MAX_SERVING_PIXELS)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"JXL"):  # Without a cap the decoder has its say.
        image_ops.decode_image(contents)


@pytest.mark.parametrize("contents", [b"", b"hi", b"not an image at all, just text"])
def test_image_pixels_of_unknown_bytes_is_minus_one(contents):
    assert image_ops.image_pixels(tf.constant(contents)).numpy() == -1


def _png_declaring(width, height):
    """A small valid PNG whose IHDR declares `width` x `height` (its checksum fixed: only the size is wrong)."""
    png = bytearray(tf.io.encode_png(_pixels((8, 8, 3))).numpy())
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


@pytest.mark.parametrize("width, height, expected", [
    (2 ** 31 - 1, 2 ** 31 - 1, (2 ** 31 - 1) ** 2),  # The longest sides PNG allows: exact, no overflow.
    (2 ** 32 - 1, 2 ** 32 - 1, image_ops.IMPOSSIBLE_PIXELS),  # Would wrap int64 to -(2 ** 33) + 1.
    (2 ** 32 - 1, 2 ** 31 + 1, image_ops.IMPOSSIBLE_PIXELS),  # Would wrap to a large negative number.
    (2 ** 31, 1, image_ops.IMPOSSIBLE_PIXELS),  # One side too long is enough.
    (1, 2 ** 31, image_ops.IMPOSSIBLE_PIXELS),
    (2 ** 32 - 1, 0, image_ops.IMPOSSIBLE_PIXELS),  # Not 0: a zero side must not hide the impossible one.
])
def test_image_pixels_never_wraps_around(width, height, expected):
    assert image_ops.image_pixels(tf.constant(_png_declaring(width, height))).numpy() == expected


@pytest.mark.parametrize("width, height", [(2 ** 32 - 1, 2 ** 32 - 1), (2 ** 31, 1)])
def test_a_side_longer_than_any_format_allows_is_refused_under_any_cap(width, height):
    contents = tf.constant(_png_declaring(width, height))
    # In graph mode too, as tf.data and the serving signature run it.
    for decode in (image_ops.decode_image, tf.function(image_ops.decode_image)):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"declares an impossible size: its width x height overflows 64 bits or a side is "
                                 r"longer than 2147483647 pixels"):
            decode(contents, max_pixels=2 ** 62)


def test_decode_image_rejects_images_over_max_pixels_before_decoding(huge_png):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Image too large to decode: expected at most 50000000 pixels .*Resize it before"):
        image_ops.decode_image(tf.constant(huge_png), max_pixels=image_ops.MAX_SERVING_PIXELS)
    small = tf.io.encode_png(_pixels((10, 20, 3))).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected at most 199 pixels"):
        tf.function(lambda c: image_ops.decode_and_resize(c, (4, 4), max_pixels=199))(tf.constant(small))
    np.testing.assert_array_equal(image_ops.decode_image(tf.constant(small), max_pixels=200).numpy(),
                                  _pixels((10, 20, 3)).astype(np.float32))


def test_bytes_that_are_not_an_image_still_fail_in_the_decoder():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Unknown image file format"):
        image_ops.decode_image(tf.constant(b"hello"), max_pixels=100)


def test_exported_model_answers_a_huge_image_with_invalid_argument_and_keeps_serving(tmp_path, huge_png):
    inputs = keras.Input((HEIGHT, WIDTH, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs), name="tiny")
    model = tfxfer.build_image_classifier(backbone, num_classes=2, preprocessing="tf", augmentation=False)
    path = tfxfer.export_saved_model(model, tmp_path / "pets", class_names=["cat", "dog"])
    serve = tf.saved_model.load(path).signatures["serving_default"]
    small = tf.io.encode_png(_pixels((HEIGHT, WIDTH, 3))).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Image too large to decode: expected at most 50000000 pixels"):
        serve(image_bytes=tf.constant([small, huge_png]))
    # The same loaded model still answers ordinary requests, like the Keras model.
    outputs = serve(image_bytes=tf.constant([small]))
    expected = model.predict(image_ops.decode_and_resize(tf.constant(small), (HEIGHT, WIDTH))[None], verbose=0)
    np.testing.assert_allclose(outputs["probabilities"].numpy()[:, 1], expected[:, 0], atol=1e-5)


# --- training on huge photos ----------------------------------------------------


def test_decode_and_resize_resizes_the_uint8_pixels_not_a_float_copy():
    graph = tf.function(lambda contents: image_ops.decode_and_resize(contents, (4, 4))).get_concrete_function(
        tf.TensorSpec([], tf.string)).graph
    [resize] = [op for op in graph.get_operations() if op.type == "ResizeBilinear"]
    assert resize.inputs[0].dtype == tf.uint8  # A quarter of the memory of float32 pixels.
    contents = tf.constant(tf.io.encode_png(_pixels((37, 53, 3))).numpy())
    np.testing.assert_array_equal(image_ops.decode_and_resize(contents, (6, 5)).numpy(),
                                  image_ops.resize_image(image_ops.decode_image(contents), (6, 5)).numpy())


HUGE_SIDE = 8000
# The child runs on two CPUs, so the loader decodes two photos at once: it peaks near 450 MB (2 x 192 MB
# of uint8 pixels, plus TensorFlow's own allocations), beside the rest of the suite too now that the peak is
# the child's own (`VmHWM`: `ru_maxrss` kept the resident size of the pytest worker it was forked from, which
# grows with the suite). Float32 copies of the two photos in flight (2 x 768 MB) exceed the budget; a single
# float32 resize input is caught by the graph test above.
HUGE_TRAINING_BUDGET_MB = 1000

HUGE_CHILD = textwrap.dedent("""
    import json, os, sys
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    import keras, numpy as np
    import tfxfer

    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs)))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # The resident size now, not the peak so far: imports may have peaked higher and freed it.
    before = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    data = tfxfer.data.load_image_folders(sys.argv[1], image_size=(16, 16), batch_size=2)
    history = model.fit(data.train, epochs=1, verbose=0)
    # This process's own peak (kB): unlike ru_maxrss, it starts again at exec, not at the forking parent's.
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    colours = sorted([int(label), *np.asarray(image).mean(axis=(0, 1)).round().astype(int).tolist()]
                     for images, labels in data.train for image, label in zip(images, labels))
    print(json.dumps({"peak_mb": (peak - before) / 1024, "skipped": data.skipped_files, "colours": colours,
                      "loss": history.history["loss"][0]}))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident size from Linux's /proc")
def test_a_few_8000x8000_photos_train_in_bounded_memory(tmp_path):
    image = pytest.importorskip("PIL.Image")
    for name, colour in (("a/red.jpg", (200, 0, 0)), ("a/green.jpg", (0, 200, 0)), ("b/blue.jpg", (0, 0, 200))):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        image.new("RGB", (HUGE_SIDE, HUGE_SIDE), colour).save(tmp_path / name, quality=90)
    (tmp_path / "b" / "gray.png").write_bytes(_zeros_png(HUGE_SIDE, HUGE_SIDE, rgb=(90, 90, 90)))

    child = subprocess.run([sys.executable, "-c", HUGE_CHILD, str(tmp_path)], capture_output=True, text=True,
                           timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})

    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["skipped"] == [] and np.isfinite(report["loss"])
    # (label, mean R, G, B) of every example, up to JPEG's rounding.
    np.testing.assert_allclose(report["colours"], [[0, 0, 200, 0], [0, 200, 0, 0], [1, 0, 0, 200], [1, 90, 90, 90]],
                               atol=2)
    assert report["peak_mb"] < HUGE_TRAINING_BUDGET_MB, report
