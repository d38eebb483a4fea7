"""Every kind of image file a user may have: converted right, skipped and counted, or refused clearly.

Decoding is checked against Pillow on generated files: EXIF orientations against
`ImageOps.exif_transpose`, CMYK against `convert("RGB")`; 16-bit PNGs against
the exact scaling. Folder tests check what reaches the model (pixel values,
counts, `skipped_files`, the log) and the errors, which name the folder and the fix.
"""

import io
import logging
import re
import struct
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image, ImageOps

import tfxfer
from tfxfer.data import exif, image_ops, load_image_folders, load_tfds_images
from tfxfer.errors import ConfigError

IMAGE_SIZE = (6, 5)
RED, BLUE = (220, 20, 30), (20, 40, 230)
# Graph mode, as tf.data and the serving signature run it.
decode_in_graph = tf.function(image_ops.decode_image)


# --- helpers ------------------------------------------------------------------


def _encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def _asymmetric_jpeg() -> bytes:
    """A 48x64 JPEG of 16-pixel blocks of random colours: every flip or turn of it differs."""
    blocks = np.random.default_rng(0).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return _encoded(Image.fromarray(np.kron(blocks, np.ones((16, 16, 1), np.uint8))), "JPEG", quality=95)


def _tiff(entries: list[tuple[int, int, int]], byte_order: str = "II", ifd_offset: int = 8) -> bytes:
    """A TIFF header and IFD0 of `(tag, type, value)` entries, each with count 1."""
    endian = "<" if byte_order == "II" else ">"
    ifd = struct.pack(endian + "H", len(entries)) + b"".join(
        # A LONG fills the 4-byte value field; shorter values are left-aligned in it.
        struct.pack(endian + "HHI", tag, kind, 1) + struct.pack(endian + ("I" if kind == 4 else "H2x"), value)
        for tag, kind, value in entries
    )
    return byte_order.encode() + struct.pack(endian + "HI", 42, ifd_offset) + ifd + b"\0\0\0\0"


def _with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """`jpeg` with an APP1 segment holding `payload` right after its start-of-image marker."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", 2 + len(payload)) + payload + jpeg[2:]


def _with_orientation(jpeg: bytes, orientation: int, writer: str) -> bytes:
    if writer == "pillow":  # JFIF APP0 first, then Exif in big-endian ("MM") order.
        tags = Image.Exif()
        tags[exif.ORIENTATION_TAG] = orientation
        return _encoded(Image.open(io.BytesIO(jpeg)), "JPEG", quality=95, exif=tags.tobytes())
    if writer == "phone_little_endian":  # Exif first, orientation after another tag.
        tiff = _tiff([(0x0100, 3, 64), (exif.ORIENTATION_TAG, 3, orientation)], "II")
    else:  # "long_big_endian": the tag stored as a 4-byte LONG, which Pillow accepts too.
        tiff = _tiff([(exif.ORIENTATION_TAG, 4, orientation)], "MM")
    return _with_app1(jpeg, b"Exif\0\0" + tiff)


def _pillow_rgb(contents: bytes, transpose: bool = False) -> np.ndarray:
    image = Image.open(io.BytesIO(contents))
    if transpose:
        image = ImageOps.exif_transpose(image)
    return np.asarray(image.convert("RGB"), np.float32)


def _pillow_upright(stored: np.ndarray, orientation: int) -> np.ndarray:
    """`ImageOps.exif_transpose` of `stored` pixels tagged with `orientation`."""
    image = Image.fromarray(stored)
    image.getexif()[exif.ORIENTATION_TAG] = orientation
    return np.asarray(ImageOps.exif_transpose(image), np.float32)


def _mean_colour(image) -> tuple[int, ...]:
    return tuple(np.asarray(image).reshape(-1, 3).mean(axis=0).round().astype(int).tolist())


def _write(path: Path, contents: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(contents)
    return path


def _solid(rgb, image_format="PNG", mode="RGB", size=(8, 8), **options) -> bytes:
    return _encoded(Image.new(mode, size, rgb), image_format, **options)


def _all_examples(dataset) -> list[tuple[int, np.ndarray]]:
    return [(int(label), image) for images, labels in dataset for image, label in zip(images.numpy(), labels.numpy())]


# --- EXIF orientation ---------------------------------------------------------


@pytest.mark.parametrize("writer", ["pillow", "phone_little_endian", "long_big_endian"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(orientation, writer):
    contents = _with_orientation(_asymmetric_jpeg(), orientation, writer)

    decoded = decode_in_graph(tf.constant(contents)).numpy()

    assert Image.open(io.BytesIO(contents)).getexif()[exif.ORIENTATION_TAG] == orientation
    assert int(exif.jpeg_orientation(tf.constant(contents))) == orientation
    # Pillow turns the pixels libjpeg decoded, so that only the turning is compared:
    # Pillow's own JPEG decoder rounds a few pixels differently.
    expected = _pillow_upright(tf.io.decode_jpeg(contents).numpy(), orientation)
    assert decoded.shape == expected.shape == ((48, 64, 3) if orientation <= 4 else (64, 48, 3))
    np.testing.assert_array_equal(decoded, expected)


def test_jpeg_without_exif_decodes_as_stored():
    contents = _asymmetric_jpeg()

    assert int(exif.jpeg_orientation(tf.constant(contents))) == 1
    np.testing.assert_allclose(decode_in_graph(tf.constant(contents)).numpy(), _pillow_rgb(contents), atol=2)


GARBAGE_EXIF = {
    "random_bytes": b"Exif\0\0" + np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes(),
    "no_tiff_header": b"Exif\0\0",
    "ifd_offset_past_the_end": b"Exif\0\0" + _tiff([(exif.ORIENTATION_TAG, 3, 6)], ifd_offset=0xFFFFFFF0),
    "orientation_out_of_range": b"Exif\0\0" + _tiff([(exif.ORIENTATION_TAG, 3, 9)]),
    "orientation_of_undefined_type": b"Exif\0\0" + _tiff([(exif.ORIENTATION_TAG, 7, 6)]),
    "bad_byte_order_mark": b"Exif\0\0" + b"XX" + _tiff([(exif.ORIENTATION_TAG, 3, 6)])[2:],
    "entry_count_beyond_the_segment": b"Exif\0\0" + _tiff([(exif.ORIENTATION_TAG, 3, 6)])[:8] + b"\xff\xff",
}


@pytest.mark.parametrize("name", sorted(GARBAGE_EXIF))
def test_garbage_exif_still_decodes_with_orientation_ignored(name):
    stored = _asymmetric_jpeg()
    contents = _with_app1(stored, GARBAGE_EXIF[name])

    assert int(exif.jpeg_orientation(tf.constant(contents))) == 1
    np.testing.assert_array_equal(decode_in_graph(tf.constant(contents)).numpy(),
                                  decode_in_graph(tf.constant(stored)).numpy())


@pytest.mark.parametrize("contents", [b"", b"\xff\xd8", b"\xff\xd8\xff\xe1\xff\xff", _solid(RED, "PNG")])
def test_orientation_of_non_jpeg_or_cut_bytes_is_one(contents):
    assert int(exif.jpeg_orientation(tf.constant(contents))) == 1


def test_exported_model_turns_a_phone_photo_upright_like_training(tmp_path):
    inputs = keras.Input((16, 12, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs), name="tiny")
    model = tfxfer.build_image_classifier(backbone, num_classes=3, preprocessing="tf", augmentation=False)
    serve = tf.saved_model.load(tfxfer.export_saved_model(model, tmp_path / "m", class_names=list("abc")))
    photo = _with_orientation(_asymmetric_jpeg(), 6, "phone_little_endian")
    upright = tf.io.encode_png(_pillow_rgb(photo, transpose=True).astype(np.uint8)).numpy()

    served = serve.signatures["serving_default"](image_bytes=tf.constant([photo, upright]))["probabilities"].numpy()

    trained_on = image_ops.decode_and_resize(tf.constant(photo), (16, 12))
    np.testing.assert_allclose(served[0], model.predict(trained_on[None], verbose=0)[0], atol=1e-5)
    np.testing.assert_allclose(served[0], served[1], atol=0.02)  # Same picture, up to JPEG loss.


# --- colour modes and bit depths ----------------------------------------------


def test_cmyk_jpeg_becomes_the_rgb_pillow_shows():
    cmyk = np.kron(np.random.default_rng(2).integers(0, 256, (4, 4, 4), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    cmyk[:8, :8] = (0, 255, 255, 0)  # Pure red in CMYK.
    contents = _encoded(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=100)

    decoded = image_ops.decode_image(tf.constant(contents)).numpy()

    np.testing.assert_allclose(decoded, _pillow_rgb(contents), atol=1)
    np.testing.assert_allclose(decoded[:8, :8].reshape(-1, 3).mean(axis=0), [255, 0, 0], atol=1)


SIXTEEN_BIT = np.array([0, 128, 129, 257, 32768, 65280, 65535], np.uint16)
# round(v * 255 / 65535): 128 rounds down, 129 up; 65280 is 254 (its high byte would say 255).
SCALED = [0, 0, 1, 1, 128, 254, 255]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_png_is_scaled_to_0_255_not_clipped(channels):
    pixels = np.repeat(SIXTEEN_BIT[None, :, None], channels, axis=2)
    if channels in (2, 4):
        pixels[..., -1] = 0  # Fully transparent: the colour must survive anyway.

    decoded = image_ops.decode_image(tf.io.encode_png(pixels)).numpy()

    assert decoded.shape == (1, len(SIXTEEN_BIT), 3)
    np.testing.assert_array_equal(decoded, np.repeat(np.float32(SCALED)[None, :, None], 3, axis=2))


def test_alpha_is_dropped_keeping_the_stored_colour():
    rgba = np.array([[[10, 20, 30, 0], [200, 100, 50, 255], [7, 8, 9, 128]]], np.uint8)

    decoded = image_ops.decode_image(tf.io.encode_png(rgba)).numpy()

    np.testing.assert_array_equal(decoded, rgba[..., :3].astype(np.float32))


@pytest.mark.parametrize("options", [{}, {"lossless": True}, {"save_all": True, "append_images": "second frame"}])
def test_webp_alpha_is_dropped_like_png_alpha(options):
    rgba = np.random.default_rng(4).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    if "append_images" in options:  # Animated: the first frame counts.
        options = {**options, "append_images": [Image.new("RGBA", (7, 6), (*RED, 0))]}
    contents = _encoded(Image.fromarray(rgba, "RGBA"), "WEBP", **options)

    decoded = decode_in_graph(tf.constant(contents)).numpy()

    assert contents[12:16] in (b"VP8X", b"VP8L")  # The headers that carry an alpha flag.
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(io.BytesIO(contents)).convert("RGBA"))[..., :3])


@pytest.mark.parametrize("mode, image_format, value, expected", [
    ("L", "JPEG", 77, 77),
    ("L", "PNG", 77, 77),
    ("LA", "PNG", (77, 0), 77),
    ("1", "PNG", 1, 255),
    ("I;16", "PNG", 65535, 255),
])
def test_grayscale_becomes_equal_rgb_channels(mode, image_format, value, expected):
    contents = _solid(value, image_format, mode=mode)

    decoded = image_ops.decode_image(tf.constant(contents)).numpy()

    assert decoded.shape == (8, 8, 3)
    np.testing.assert_allclose(decoded, np.full((8, 8, 3), expected, np.float32), atol=1)


def test_palette_png_keeps_its_colours():
    palette = Image.new("RGB", (4, 2), RED).convert("P", palette=Image.Palette.ADAPTIVE)

    decoded = image_ops.decode_image(tf.constant(_encoded(palette, "PNG"))).numpy()

    assert _mean_colour(decoded) == RED


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (10, 6), colour) for colour in (RED, BLUE, (0, 200, 0))]
    contents = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)

    decoded = image_ops.decode_image(tf.constant(contents)).numpy()

    assert decoded.shape == (6, 10, 3)
    np.testing.assert_allclose(decoded.reshape(-1, 3).mean(axis=0), RED, atol=3)  # GIF palettes are approximate.


def test_one_pixel_image_is_stretched_to_the_model_size():
    contents = _solid((1, 2, 3), size=(1, 1))

    resized = image_ops.decode_and_resize(tf.constant(contents), IMAGE_SIZE).numpy()

    np.testing.assert_array_equal(resized, np.broadcast_to(np.float32([1, 2, 3]), (*IMAGE_SIZE, 3)))


# --- undecodable bytes --------------------------------------------------------


def _noise_jpeg() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return _encoded(Image.fromarray(noise), "JPEG")


def _corrupt_jpeg() -> bytes:
    """A valid JPEG header (up to the start of the scan), then random bytes."""
    jpeg = _noise_jpeg()
    scan = jpeg.index(b"\xff\xda")
    header_end = scan + 2 + struct.unpack(">H", jpeg[scan + 2:scan + 4])[0]
    return jpeg[:header_end] + np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes()


UNDECODABLE = {
    "truncated.jpg": lambda: _noise_jpeg()[:-300],
    "corrupt.jpg": _corrupt_jpeg,
    "text.jpg": lambda: b"this is not a JPEG",
    "empty.png": lambda: b"",
    "truncated.png": lambda: _solid(RED, size=(64, 64))[:60],
    "tiff.png": lambda: _solid(RED, "TIFF"),
    "truncated.gif": lambda: _solid(RED, "GIF", size=(64, 64))[:20],
    # TensorFlow cannot decode an animated WebP without alpha (and crashes if asked
    # for "any" channels): it must fail cleanly.
    "animated_webp.jpg": lambda: _encoded(Image.new("RGB", (8, 8), RED), "WEBP", save_all=True,
                                          append_images=[Image.new("RGB", (8, 8), BLUE)]),
}
REASONS = {
    "truncated.jpg": "Invalid JPEG data",
    "corrupt.jpg": "Invalid JPEG data",
    "text.jpg": "Unknown image file format",
    "empty.png": "Input is empty",
    "truncated.png": "Invalid PNG data",
    "tiff.png": "Unknown image file format",
    "truncated.gif": "Invalid GIF data",
    "animated_webp.jpg": "WebP Animation must be 4 channel RGBA",
}


@pytest.mark.parametrize("name", sorted(UNDECODABLE))
def test_undecodable_bytes_raise_invalid_argument(name):
    with pytest.raises(tf.errors.InvalidArgumentError, match=REASONS[name]):
        decode_in_graph(tf.constant(UNDECODABLE[name]()))


# --- image folders: every file converted, skipped and counted, or ignored -----


def test_every_decodable_kind_of_file_is_loaded_with_its_colour(tmp_path):
    cmyk_red = _solid((0, 255, 255, 0), "JPEG", mode="CMYK", quality=100)
    webp = _solid(BLUE, "WEBP", lossless=True)
    files = {
        "gray.jpg": (_solid(90, "JPEG", mode="L", quality=100), (90, 90, 90)),
        "rgba.png": (_solid((*RED, 0), mode="RGBA"), RED),
        "cmyk.jpg": (cmyk_red, (255, 0, 0)),
        "sixteen_bit.png": (tf.io.encode_png(np.full((4, 4, 3), 32768, np.uint16)).numpy(), (128, 128, 128)),
        "animated.gif": (_encoded(Image.new("RGB", (8, 8), BLUE), "GIF", save_all=True,
                                  append_images=[Image.new("RGB", (8, 8), RED)]), BLUE),
        "one_pixel.png": (_solid((1, 2, 3), size=(1, 1)), (1, 2, 3)),
        "webp_named.jpg": (webp, BLUE),  # Decoded by its bytes, not its extension.
    }
    for name, (contents, _) in files.items():
        _write(tmp_path / "a" / name, contents)
    _write(tmp_path / "b" / "plain.png", _solid(RED))

    data = load_image_folders(tmp_path, image_size=IMAGE_SIZE, batch_size=4)

    assert data.skipped_files == [] and data.train_class_counts == [len(files), 1]
    loaded = sorted(_mean_colour(image) for label, image in _all_examples(data.train) if label == 0)
    expected = sorted(colour for _, colour in files.values())
    np.testing.assert_allclose(loaded, expected, atol=3)


def test_webp_files_count_as_images_any_case(tmp_path):
    # decode_image reads WebP (lossy, lossless, alpha), so folders list .webp files as images.
    _write(tmp_path / "a" / "photo.webp", _solid(BLUE, "WEBP", lossless=True))
    _write(tmp_path / "a" / "upper.WEBP", _solid(BLUE, "WEBP"))
    _write(tmp_path / "b" / "plain.png", _solid(RED))

    data = load_image_folders(tmp_path, image_size=IMAGE_SIZE)

    assert data.train_class_counts == [2, 1] and data.skipped_files == []
    assert all(np.allclose(_mean_colour(image), BLUE, atol=3) for label, image in _all_examples(data.train)
               if label == 0)


def test_folder_photos_are_turned_upright_by_their_exif(tmp_path):
    # Stored landscape, left half red, right half blue; orientation 6 turns it 90 degrees
    # clockwise, so upright the red half is on top.
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :16], stored[:, 16:] = RED, BLUE
    photo = _with_orientation(_encoded(Image.fromarray(stored), "JPEG", quality=100), 6, "phone_little_endian")
    _write(tmp_path / "a" / "phone.jpg", photo)
    _write(tmp_path / "b" / "plain.png", _solid(RED))

    data = load_image_folders(tmp_path, image_size=(8, 8))

    [image] = [image for label, image in _all_examples(data.train) if label == 0]
    np.testing.assert_allclose(image[:2].reshape(-1, 3).mean(axis=0), RED, atol=4)
    np.testing.assert_allclose(image[-2:].reshape(-1, 3).mean(axis=0), BLUE, atol=4)


def test_undecodable_files_are_skipped_counted_and_explained_in_the_log(tmp_path, caplog):
    for name, make in UNDECODABLE.items():
        _write(tmp_path / "a" / name, make())
    for i in range(2):
        _write(tmp_path / "a" / f"good_{i}.png", _solid(RED))
        _write(tmp_path / "b" / f"good_{i}.jpg", _solid(BLUE, "JPEG"))

    with caplog.at_level(logging.WARNING):
        data = load_image_folders(tmp_path, image_size=IMAGE_SIZE)

    assert data.skipped_files == sorted(str(tmp_path / "a" / name) for name in UNDECODABLE)
    assert data.train_class_counts == [2, 2]
    assert f"Skipping {len(UNDECODABLE)} files (of {len(UNDECODABLE) + 4})" in caplog.text
    # The first five files' reasons, without TensorFlow's op and device decorations.
    for name in sorted(UNDECODABLE)[:5]:
        assert re.search(re.escape(f"{tmp_path / 'a' / name} (") + r"[^)]*" + REASONS[name], caplog.text), name
    assert "{{function_node" not in caplog.text and "name:" not in caplog.text
    assert len(_all_examples(data.train)) == 4  # A whole epoch, nothing left to fail.


def test_hidden_files_and_folders_are_ignored_and_counted(tmp_path, caplog):
    for i in range(2):
        _write(tmp_path / "a" / f"img_{i}.png", _solid(RED))
    _write(tmp_path / "b" / "img.png", _solid(BLUE))
    _write(tmp_path / "a" / ".DS_Store", b"\0\1\2")
    _write(tmp_path / "a" / "._img_0.png", b"\0\5\26\7 resource fork")
    _write(tmp_path / "a" / ".thumbnails" / "img_0.png", _solid(BLUE))  # Would be a wrong example.
    _write(tmp_path / "a" / ".thumbnails" / "broken.jpg", b"not an image")
    _write(tmp_path / "b" / "notes.txt", b"not an image")
    _write(tmp_path / ".cache" / "x.png", _solid(BLUE))  # Not a class.

    with caplog.at_level(logging.INFO, logger="absl"):
        data = load_image_folders(tmp_path, image_size=IMAGE_SIZE)

    assert data.class_names == ["a", "b"]
    assert data.train_class_counts == [2, 1] and data.skipped_files == []
    assert all(_mean_colour(image) == RED for label, image in _all_examples(data.train) if label == 0)
    assert "Ignored 1 files under" in caplog.text and "and 3 hidden files and folders" in caplog.text


# --- image folders: errors that stop before training --------------------------


def test_class_folder_of_hidden_files_only_raises_naming_them(tmp_path):
    _write(tmp_path / "a" / "img.png", _solid(RED))
    _write(tmp_path / "b" / ".DS_Store", b"\0")
    _write(tmp_path / "b" / "._img.jpg", b"\0")

    expected = (re.escape(f"Class folder '{tmp_path / 'b'}' holds no images") + r".*add images, or remove the class"
                r".*Received: 2 other entries, e.g. \['\.DS_Store', '\._img\.jpg'\]")
    with pytest.raises(ConfigError, match=expected):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_class_folder_of_undecodable_files_only_raises_naming_them(tmp_path):
    _write(tmp_path / "a" / "img.png", _solid(RED))
    _write(tmp_path / "b" / "truncated.jpg", _noise_jpeg()[:-300])
    _write(tmp_path / "b" / "text.png", b"not a PNG")

    expected = (r"No decodable images left in class folders \[.*/b'\].*Replace the files.*or remove the class"
                r".*Received: 2 undecodable files, e.g. \[.*text\.png', .*truncated\.jpg'\]")
    with pytest.raises(ConfigError, match=expected):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


@pytest.mark.parametrize("missing_in", ["val", "train"])
def test_class_missing_from_one_split_raises_naming_both_folders(tmp_path, missing_in):
    for split in ("train", "val"):
        _write(tmp_path / split / "a" / "img.png", _solid(RED))
    _write(tmp_path / ("train" if missing_in == "val" else "val") / "fox" / "img.png", _solid(BLUE))

    only = (r"\['fox'\]", r"\[\]") if missing_in == "val" else (r"\[\]", r"\['fox'\]")
    expected = rf"Only in .*train': {only[0]}; only in .*val': {only[1]}\. Add the missing class folders"
    with pytest.raises(ConfigError, match=expected):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_empty_validation_class_folder_raises_with_its_path(tmp_path):
    for split in ("train", "val"):
        _write(tmp_path / split / "a" / "img.png", _solid(RED))
    _write(tmp_path / "train" / "b" / "img.png", _solid(BLUE))
    (tmp_path / "val" / "b").mkdir()

    expected = re.escape(f"Class folder '{tmp_path / 'val' / 'b'}' holds no images") + r".*Received: 0 other entries"
    with pytest.raises(ConfigError, match=expected):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


def test_only_hidden_class_folders_raise(tmp_path):
    _write(tmp_path / ".ipynb_checkpoints" / "img.png", _solid(RED))
    _write(tmp_path / "loose.png", _solid(RED))

    expected = (r"Found no class sub-folders .*hidden folders do not count.*"
                r"Received: 2 entries, e.g. \['\.ipynb_checkpoints', 'loose\.png'\]")
    with pytest.raises(ConfigError, match=expected):
        load_image_folders(tmp_path, image_size=IMAGE_SIZE)


# --- TFDS: the same decoding as image files -------------------------------------


def _png_16(value: int) -> np.ndarray:
    return np.full((4, 4, 1), value, np.uint16)


def _local_tfds(class_name, doc, image_feature, class_names, images):
    """A TFDS builder (registered by its class name, snake_cased) prepared locally, no download:
    `images[i]` labelled `i`, in both its train and test splits."""

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": image_feature, "label": tfds.features.ClassLabel(names=class_names)}),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(), "test": self._generate_examples()}

    def _generate_examples(self):
        for label, image in enumerate(images):
            yield label, {"image": image, "label": label}

    return type(class_name, (tfds.core.GeneratorBasedBuilder,), {
        "__doc__": doc, "VERSION": tfds.core.Version("1.0.0"), "_info": _info,
        "_split_generators": _split_generators, "_generate_examples": _generate_examples})


_local_tfds("Gray16Scans", "Two classes of 16-bit grayscale images.",
            tfds.features.Image(shape=(None, None, 1), dtype=np.uint16), ["dark", "bright"],
            [_png_16(257), _png_16(65280)])
_local_tfds("PhonePhotos", "One JPEG with EXIF orientation 6, stored by TFDS as the original bytes.",
            tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"), ["x", "y"],
            [_with_orientation(_asymmetric_jpeg(), 6, "phone_little_endian")])
_local_tfds("FloatMaps", "float32 images: no known pixel range.",
            tfds.features.Image(shape=(4, 4, 1), dtype=np.float32), ["x", "y"],
            [np.full((4, 4, 1), 0.5, np.float32)])


def test_tfds_16_bit_images_are_scaled_like_image_files(tmp_path):
    data = load_tfds_images("gray16_scans", image_size=(4, 4), data_dir=str(tmp_path))

    found = {label: _mean_colour(image) for label, image in _all_examples(data.train)}
    assert found == {0: (1, 1, 1), 1: (254, 254, 254)}  # 257 -> 1, 65280 -> 254, as for PNG files.


def test_tfds_photos_get_the_same_pixels_as_the_serving_graph(tmp_path):
    photo = _with_orientation(_asymmetric_jpeg(), 6, "phone_little_endian")

    data = load_tfds_images("phone_photos", image_size=(16, 12), data_dir=str(tmp_path))

    [(_, image)] = _all_examples(data.train)
    np.testing.assert_array_equal(image, image_ops.decode_and_resize(tf.constant(photo), (16, 12)).numpy())


def test_tfds_float_images_raise(tmp_path):
    with pytest.raises(ConfigError, match=r"'float_maps' has images that are not 8- or 16-bit.*load_image_folders"
                                          r".*Received: dtype=float32"):
        load_tfds_images("float_maps", image_size=(4, 4), data_dir=str(tmp_path))


# --- pixels rescaled before the model, which rescales them itself ---------------

_RESCALED = r"but the model takes pixels in \[0, 255\] and preprocesses them inside itself \({}\): do not divide " \
            r"the images by 255 or rescale them"


def _own_backbone_classifier(preprocessing):
    inputs = keras.Input((8, 8, 3))
    backbone = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs))
    return tfxfer.build_image_classifier(backbone, 2, preprocessing=preprocessing, augmentation=False)


def _pixels(low, high, size=8):
    images = np.random.default_rng(0).uniform(low, high, (4, size, size, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((images, [0, 1, 0, 1])).batch(2)


@pytest.mark.parametrize("low, high, shown", [(0.0, 1.0, r"0\.000\d+ to 1"), (-1.0, 1.0, r"-1 to 1")])  # 3 digits
def test_fine_tune_warns_of_rescaled_pixels_for_a_registry_backbone(low, high, shown, caplog):
    model = tfxfer.build_image_classifier("mobilenet_v2", 2, weights=None, image_size=32, alpha=0.35,
                                          augmentation=False)
    with caplog.at_level(logging.WARNING, logger="absl"):
        tfxfer.fine_tune(model, _pixels(low, high, size=32), config=tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=0),
                         verbose=0)
    assert re.search(rf"The first batch of train_data has pixel values from {shown}, " + _RESCALED.format(
        "backbone 'mobilenet_v2'") + r"; tfxfer's loaders give \[0, 255\]\.", caplog.text), caplog.text


def test_rescaled_pixels_are_warned_of_for_an_own_backbone_only_when_it_preprocesses():
    from tfxfer.training import input_checks

    def warnings_of(model, data):
        with _absl_warnings() as records:
            input_checks.check_dataset(model, data, name="validation_data")
        return records

    [warning] = warnings_of(_own_backbone_classifier("torch"), _pixels(0.0, 1.0))
    assert re.search(r"first batch of validation_data .*" + _RESCALED.format("preprocessing='torch'"), warning)
    assert warnings_of(_own_backbone_classifier("torch"), _pixels(0.0, 255.0)) == []
    # "none" takes whatever the backbone takes: [0, 1] may be just what it wants.
    assert warnings_of(_own_backbone_classifier("none"), _pixels(0.0, 1.0)) == []


def test_evaluate_model_warns_of_rescaled_pixels_once():
    with _absl_warnings() as records:
        tfxfer.evaluate_model(_own_backbone_classifier("torch"), _pixels(0.0, 1.0), ["a", "b"])
    assert len(records) == 1 and re.search(r"first batch of dataset .*" + _RESCALED.format("preprocessing='torch'"),
                                           records[0])


class _absl_warnings:
    """The messages of the absl warnings logged within the block."""

    def __enter__(self):
        self.records, self.handler = [], logging.Handler(logging.WARNING)
        self.handler.emit = lambda record: self.records.append(record.getMessage())
        logging.getLogger("absl").addHandler(self.handler)
        return self.records

    def __exit__(self, *exc):
        logging.getLogger("absl").removeHandler(self.handler)
