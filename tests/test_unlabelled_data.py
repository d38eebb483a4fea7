"""Examples without labels for distillation: `load_unlabelled_images` and `load_unlabelled_texts`."""

import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.errors import ConfigError, MissingFileError


def _jpeg(path, value, size=(12, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_jpeg(np.full((*size, 3), value, np.uint8), quality=100).numpy())


def test_images_at_any_depth_are_decoded_and_resized_and_broken_or_hidden_ones_left_out(tmp_path):
    _jpeg(tmp_path / "a.jpg", 10)
    _jpeg(tmp_path / "deeper" / "still" / "b.JPEG", 200)
    _jpeg(tmp_path / ".hidden" / "c.jpg", 90)
    _jpeg(tmp_path / ".d.jpg", 90)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("not an image")

    batches = list(tfxfer.load_unlabelled_images(tmp_path, image_size=(8, 8), batch_size=4))

    assert len(batches) == 1 and batches[0].shape == (2, 8, 8, 3) and batches[0].dtype == tf.float32
    assert sorted(int(round(float(tf.reduce_mean(image)))) for image in batches[0]) == [10, 200]
    # The same images in the same order every pass: distillation finds the teacher's targets by them.
    again = list(tfxfer.load_unlabelled_images(tmp_path, image_size=(8, 8), batch_size=4))
    assert np.array_equal(batches[0].numpy(), again[0].numpy())


@pytest.mark.parametrize("cache_memory_mb, cached_in_files", [(1024, False), (1, True)])
def test_images_are_decoded_once_into_a_cache_that_every_pass_reads(tmp_path, cache_memory_mb, cached_in_files):
    # 600x600x3 bytes is 1.03 MB an image: two exceed a 1 MB budget and spill into spill_dir.
    _jpeg(tmp_path / "images" / "a.jpg", 10)
    _jpeg(tmp_path / "images" / "b.jpg", 200)
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()

    images = tfxfer.load_unlabelled_images(tmp_path / "images", image_size=(600, 600), batch_size=2,
                                           cache_memory_mb=cache_memory_mb, spill_dir=spill_dir)
    for path in (tmp_path / "images").iterdir():
        path.unlink()  # Every later pass must read the cache, not the files.

    first, second = [[batch.numpy() for batch in images] for _ in range(2)]
    assert [batch.shape for batch in first] == [(2, 600, 600, 3)]
    np.testing.assert_array_equal(first[0], second[0])
    assert sorted(np.round(first[0].mean(axis=(1, 2, 3)))) == [10, 200]
    assert any(spill_dir.rglob("*")) == cached_in_files


def test_texts_are_the_files_lines_without_the_blank_ones(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("a fine film\n\n  \nawful, simply awful\nnaïve but lovely\n", encoding="utf-8")

    batches = [batch.numpy().tolist() for batch in tfxfer.load_unlabelled_texts(path, batch_size=2)]

    assert batches == [[b"a fine film", b"awful, simply awful"], ["naïve but lovely".encode()]]


@pytest.mark.parametrize("load, error, message", [
    (lambda path: tfxfer.load_unlabelled_images(path / "missing", image_size=(8, 8)), MissingFileError,
     "must be a folder of image files"),
    (lambda path: tfxfer.load_unlabelled_images(path, image_size=(8, 8)), ConfigError, "Found no image files"),
    (lambda path: (path / "broken.jpg").write_bytes(b"not a jpeg") and tfxfer.load_unlabelled_images(
        path, image_size=(8, 8)), ConfigError, "None of the 1 image files"),
    (lambda path: tfxfer.load_unlabelled_images(path, image_size=(8, 8), batch_size=0), ConfigError,
     "batch_size must be a positive integer"),
    (lambda path: tfxfer.load_unlabelled_texts(path / "missing.txt"), MissingFileError, "one text per line"),
    (lambda path: tfxfer.load_unlabelled_texts(path), MissingFileError, "must be a text file"),
])
def test_a_missing_or_empty_source_is_refused(tmp_path, load, error, message):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(error, match=message):
        load(tmp_path)
