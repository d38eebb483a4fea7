"""Tests for the decoded-image cache: each file decoded once, uint8, in memory within a budget, else in files.

Images are tiny random PNGs/JPEGs (not solid colours), so exact pixel equality
with `image_ops.decode_and_resize` checks the resizing and rounding too. The
file-cache tests use a 1 MB budget and a larger `image_size` so a handful of
files exceeds it.
"""

import glob
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from _tfds_fake import fake_tfds, indexed_image
from PIL import Image

from tfxfer.data import image_cache, image_ops, load_image_folders, load_tfds_images, pipeline

SMALL = (6, 5)
# 256 x 256 x 3 bytes = 192 KB per image: 8 images (1.5 MB) exceed a 1 MB budget.
LARGE = (256, 256)


def _write_classes(root: Path, counts: dict[str, int], seed: int = 0) -> dict[str, bytes]:
    """Writes random 9x7 images (PNG and JPEG alternately) per class; returns {path: encoded bytes}."""
    rng = np.random.default_rng(seed)
    written = {}
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image_format = "PNG" if i % 2 else "JPEG"
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(buffer, format=image_format)
            path = root / name / f"{i:02d}.{image_format.lower()}"
            path.write_bytes(buffer.getvalue())
            written[str(path)] = buffer.getvalue()
    return written


def _expected(written: dict[str, bytes], class_names: list[str], image_size, skipped=()) -> list[tuple]:
    """(label, pixel bytes) of every decodable file, sorted, as the serving graph decodes it."""
    found = []
    for path, contents in written.items():
        if path in skipped:
            continue
        pixels = image_ops.decode_and_resize(tf.constant(contents), image_size).numpy()
        found.append((class_names.index(Path(path).parent.name), pixels.astype(np.uint8).tobytes()))
    return sorted(found)


def _loaded(*datasets: tf.data.Dataset) -> list[tuple]:
    """(label, pixel bytes) of every example of `datasets`, sorted; checks the dtypes on the way."""
    found = []
    for dataset in datasets:
        for images, labels in dataset:
            assert images.dtype == tf.float32 and labels.dtype == tf.int32
            images = images.numpy()
            assert np.array_equal(images, np.round(images))  # Whole grey levels: rounded once, in image_ops.
            found += [(int(y), image.astype(np.uint8).tobytes()) for image, y in zip(images, labels.numpy())]
    return sorted(found)


def _destroy(written: dict[str, bytes], how: str) -> None:
    for path in written:
        if how == "delete":
            os.remove(path)
        else:
            Path(path).write_bytes(b"garbage, not an image")


def _spill_files(folder: Path) -> list[str]:
    return glob.glob(str(folder / f"{image_cache.SPILL_FOLDER_PREFIX}*" / "*"))


# --- decode once --------------------------------------------------------------


@pytest.mark.parametrize("how", ["delete", "overwrite"])
def test_files_are_decoded_once_at_load_and_never_read_again(tmp_path, how):
    written = _write_classes(tmp_path / "images", {"a": 5, "b": 4})
    data = load_image_folders(tmp_path / "images", image_size=SMALL, batch_size=3, validation_split=0.3)
    assert data.decoded_cache == "memory"

    _destroy(written, how)

    expected = _expected(written, data.class_names, SMALL)
    assert _loaded(data.train, data.validation) == expected
    assert _loaded(data.train, data.validation) == expected  # A second epoch too.


def test_train_and_validation_folders_are_both_read_from_the_one_cache(tmp_path):
    written = _write_classes(tmp_path / "train", {"a": 3, "b": 3})
    written.update(_write_classes(tmp_path / "val", {"a": 2, "b": 1}, seed=1))
    data = load_image_folders(tmp_path, image_size=SMALL, batch_size=2)
    _destroy(written, "delete")

    validation = {path: contents for path, contents in written.items() if "/val/" in path}
    assert _loaded(data.validation) == _expected(validation, data.class_names, SMALL)
    assert _loaded(data.train, data.validation) == _expected(written, data.class_names, SMALL)
    assert (int(data.train.cardinality()), int(data.validation.cardinality())) == (3, 2)


def test_resized_pixels_are_rounded_within_half_a_grey_level():
    contents = tf.io.encode_png(np.random.default_rng(3).integers(0, 256, (9, 7, 3), dtype=np.uint8))
    unrounded = tf.image.resize(image_ops.decode_uint8(contents), (6, 5), method="bilinear").numpy()

    cached = image_ops.decode_and_resize_uint8(contents, (6, 5))
    served = image_ops.decode_and_resize(contents, (6, 5)).numpy()

    assert cached.dtype == tf.uint8
    np.testing.assert_array_equal(served, cached.numpy().astype(np.float32))
    assert np.abs(served - unrounded).max() <= 0.5
    assert not np.array_equal(unrounded, np.round(unrounded))  # Rounding did something here.


# --- memory budget and the file cache -----------------------------------------------


def test_over_the_budget_images_spill_to_files_with_the_same_pixels_and_labels(tmp_path):
    written = _write_classes(tmp_path / "images", {"a": 5, "b": 4})
    load = dict(image_size=LARGE, batch_size=4, validation_split=0.3, seed=1)
    in_memory = load_image_folders(tmp_path / "images", **load)
    from_memory = _loaded(in_memory.train, in_memory.validation)

    spilled = load_image_folders(tmp_path / "images", cache_memory_mb=1, spill_dir=tmp_path / "run", **load)

    assert (in_memory.decoded_cache, spilled.decoded_cache) == ("memory", "files")
    files = _spill_files(tmp_path / "run")
    assert files  # Written by the loading pass, before any epoch.
    # uint8: the cache files hold H x W x 3 bytes per image, not float32's 4x that.
    pixel_bytes = 9 * LARGE[0] * LARGE[1] * 3
    assert pixel_bytes <= sum(os.path.getsize(f) for f in files) < 1.2 * pixel_bytes
    _destroy(written, "delete")
    assert _loaded(spilled.train, spilled.validation) == from_memory == _expected(
        written, spilled.class_names, LARGE)
    assert (spilled.train_size, spilled.validation_size) == (in_memory.train_size, in_memory.validation_size)
    assert int(spilled.train.cardinality()) == int(in_memory.train.cardinality()) == 2


def test_within_the_budget_nothing_is_written(tmp_path):
    _write_classes(tmp_path / "images", {"a": 2, "b": 2})

    data = load_image_folders(tmp_path / "images", image_size=LARGE, cache_memory_mb=1, spill_dir=tmp_path / "run")

    assert data.decoded_cache == "memory" and not (tmp_path / "run").exists()


@pytest.mark.parametrize("spill", [False, True], ids=["memory", "files"])
def test_undecodable_files_are_skipped_listed_and_the_cardinality_is_known(tmp_path, spill, caplog):
    written = _write_classes(tmp_path / "images", {"a": 5, "b": 4})
    broken = [tmp_path / "images" / "a" / "broken.jpg", tmp_path / "images" / "b" / "empty.png"]
    broken[0].write_text("not a JPEG")
    broken[1].write_bytes(b"")
    budget = dict(cache_memory_mb=1, spill_dir=tmp_path / "run") if spill else {}

    with caplog.at_level("WARNING"):
        data = load_image_folders(tmp_path / "images", image_size=LARGE, batch_size=4, validation_split=0.25,
                                  **budget)

    assert data.skipped_files == sorted(str(p) for p in broken)
    assert "Skipping 2 files (of 11)" in caplog.text
    assert data.train_size + data.validation_size == 9
    assert int(data.train.cardinality()) == -(-data.train_size // 4)
    assert int(data.validation.cardinality()) == -(-data.validation_size // 4)
    _destroy(written, "delete")
    assert _loaded(data.train, data.validation) == _expected(written, data.class_names, LARGE)


def test_no_cache_decodes_every_epoch(tmp_path):
    written = _write_classes(tmp_path / "images", {"a": 2, "b": 2})

    data = load_image_folders(tmp_path / "images", image_size=SMALL, cache=False)

    assert data.decoded_cache == "none"
    assert _loaded(data.train) == _expected(written, data.class_names, SMALL)
    _destroy(written, "delete")
    with pytest.raises(tf.errors.NotFoundError):
        _loaded(data.train)


def test_shuffle_buffer_defaults_to_the_training_set_within_a_quarter_of_the_budget():
    image_bytes = 224 * 224 * 3
    assert pipeline.default_shuffle_buffer(100_000, (224, 224), cache_memory_mb=1024) == 2**30 // 4 // image_bytes
    assert pipeline.default_shuffle_buffer(10, (224, 224), cache_memory_mb=1024) == 10
    assert pipeline.default_shuffle_buffer(10, (4000, 4000), cache_memory_mb=1) == 1


def test_a_small_shuffle_window_still_draws_batches_from_the_whole_data_set(tmp_path):
    # Chunks of the cache are shuffled too: with a window of 2 examples, the
    # first batch does not come only from the start of the cache.
    _write_classes(tmp_path / "images", {"a": 40, "b": 40})
    data = load_image_folders(tmp_path / "images", image_size=(64, 64), batch_size=8, shuffle_buffer=2)
    orders = [[label for _, labels in data.train for label in labels.numpy()] for _ in range(2)]
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1]) == [0] * 40 + [1] * 40


def test_tfds_images_over_the_budget_spill_to_files(tmp_path):
    with fake_tfds(tmp_path / "tfds", "beans", {"train": range(6), "validation": range(3)}, indexed_image):
        load = dict(image_size=LARGE, data_dir=str(tmp_path / "tfds"), batch_size=4)
        in_memory = load_tfds_images("beans", **load)
        spilled = load_tfds_images("beans", cache_memory_mb=1, spill_dir=tmp_path / "run", **load)

        assert (in_memory.decoded_cache, spilled.decoded_cache) == ("memory", "files")
        assert _loaded(spilled.train, spilled.validation) == _loaded(in_memory.train, in_memory.validation)
        assert _spill_files(tmp_path / "run")  # Written in the first epoch.
        assert int(spilled.train.cardinality()) == 2


# --- the temporary spill folder --------------------------------------------------


SPILL_CHILD = textwrap.dedent("""
    import glob, json, sys, tempfile
    from tfxfer.data import load_image_folders
    data = load_image_folders(sys.argv[1], image_size=(256, 256), cache_memory_mb=1)
    count = sum(int(images.shape[0]) for images, _ in data.train)
    print(json.dumps({"count": count, "cache": data.decoded_cache,
                      "files": glob.glob(tempfile.gettempdir() + "/tfxfer_cache_*/*")}))
""")


def test_the_temporary_spill_folder_is_removed_at_exit(tmp_path):
    _write_classes(tmp_path / "images", {"a": 5, "b": 4})
    temp = tmp_path / "temp"
    temp.mkdir()

    child = subprocess.run([sys.executable, "-c", SPILL_CHILD, str(tmp_path / "images")], capture_output=True,
                           text=True, timeout=300, env={**os.environ, "TMPDIR": str(temp),
                                                        "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})

    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["count"] == 9 and report["cache"] == "files" and report["files"]
    assert "removed at process exit" in child.stderr and "cache_memory_mb=" in child.stderr  # The warning.
    assert not glob.glob(str(temp / "tfxfer_cache_*"))
