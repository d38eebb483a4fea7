"""The loaders read through tf.io.gfile: data on `ram://` (as on `gs://`) loads like local files."""

import io

import numpy as np
import tensorflow as tf
from _text_helpers import texts_and_labels
from PIL import Image

import tfxfer


def _write(path: str, contents: bytes) -> None:
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(contents)


def _png(red: int, green: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (red, green, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def _root(tmp_path) -> str:
    # ram:// is one filesystem for the whole process: a folder per test.
    return f"ram://{tmp_path.name}"


def test_image_folders_on_ram(tmp_path):
    root = _root(tmp_path)
    for split, count in (("train", 3), ("val", 1)):
        for label, name in enumerate(("cat", "dog")):
            for i in range(count):
                _write(f"{root}/images/{split}/{name}/{i}.png", _png(40 + 80 * label, green=i))
    _write(f"{root}/images/train/dog/notes.txt", b"not an image")

    data = tfxfer.load_image_folders(f"{root}/images", image_size=(4, 4), batch_size=2)

    assert data.class_names == ["cat", "dog"]
    assert (data.train_size, data.validation_size, data.train_class_counts) == (6, 2, [3, 3])
    reds = {int(label): round(float(images[j, 0, 0, 0]))
            for images, labels in data.train for j, label in enumerate(labels.numpy())}
    assert reds == {0: 40, 1: 120}


def test_image_folders_on_ram_split_per_class(tmp_path):
    root = _root(tmp_path)
    for label, name in enumerate(("a", "b")):
        for i in range(5):
            _write(f"{root}/{name}/{i}.png", _png(40 + 80 * label, green=i))  # no two files alike

    data = tfxfer.load_image_folders(root, image_size=(4, 4), validation_split=0.2)

    assert (data.train_class_counts, data.validation_size) == ([4, 4], 2)


def test_text_class_folders_with_train_and_val_on_ram(tmp_path):
    root = _root(tmp_path)
    for split, count in (("train", 3), ("validation", 1)):
        for name in ("ham", "spam"):
            for i in range(count):
                _write(f"{root}/texts/{split}/{name}/{i}.txt", f"{name} message {i}".encode())
    _write(f"{root}/texts/train/spam/.DS_Store", b"\x00")

    data = tfxfer.load_text_data(f"{root}/texts", batch_size=2)

    assert data.source_format == "class_folders" and data.class_names == ["ham", "spam"]
    assert (data.train_size, data.validation_size) == (6, 2)
    assert sorted(texts_and_labels(data.validation)[0]) == ["ham message 0", "spam message 0"]


def test_text_line_files_on_ram(tmp_path):
    root = _root(tmp_path)
    _write(f"{root}/rt/reviews.pos", b"a good film\nlovely\n")
    _write(f"{root}/rt/reviews.neg", b"awful\n\xff\xfe not utf-8\nboring plot\n")

    data = tfxfer.load_text_data(f"{root}/rt", batch_size=4)

    assert data.source_format == "line_files" and data.class_names == ["neg", "pos"]
    assert data.train_class_counts == [2, 2] and data.skipped["undecodable"] == 1


def test_text_csv_on_ram_split_per_class(tmp_path):
    root = _root(tmp_path)
    rows = ["text,label"] + [f"text {i},{'ab'[i % 2]}" for i in range(20)]
    _write(f"{root}/data/tickets.csv", ("\n".join(rows) + "\n").encode())

    data = tfxfer.load_text_data(f"{root}/data/tickets.csv", batch_size=4, validation_split=0.2, seed=1)

    assert data.source_format == "csv" and data.class_names == ["a", "b"]
    assert (data.train_class_counts, data.validation_size) == ([8, 8], 4)
    assert np.bincount(texts_and_labels(data.validation)[1]).tolist() == [2, 2]
