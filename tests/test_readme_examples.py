"""The README's Python API examples run as written, but for what cannot run offline.

Three ```python blocks of README.md run in order in one namespace, as a reader would
run them in one script: the main example (data, model, two phases, evaluation, export,
prediction), the one with your own callbacks and loss, and the one that saves and reloads
the classifier. Each runs on a few generated images in a temporary folder, with the
substitutions listed in `SUBSTITUTIONS` (no ImageNet download, a MobileNetV2 of width
0.35 at 32x32, one epoch a phase) and the names the README leaves to the reader
defined in `PREAMBLE`. Every substituted text must occur exactly once in its block, so
a README edit that changes it fails here instead of going untested.

The other blocks need a keras-hub preset, a TFDS dataset, several devices or minutes of
search, and are checked by the tests of those features instead.
"""

import os
import re

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")

# A text that only the block holds -> (README text, what runs instead) pairs.
SUBSTITUTIONS = {
    "prediction.predict_image_files(path": [
        ('image_size=(320, 320))', 'image_size=(32, 32))'),
        ('weights="pretrained")', 'weights=None, alpha=0.35, image_size=32)'),
        ("FineTuneConfig(epochs=10, fine_tune_epochs=10)", "FineTuneConfig(epochs=1, fine_tune_epochs=1)"),
    ],
    "callbacks=[early, csv]": [
        ("class_counts=[120, 80, 40],", "class_counts=[120, 80, 40], config=SHORT,"),
    ],
    'keras.models.load_model("photos.keras")': [
        ("more_data.validation)", "more_data.validation, config=SHORT)"),
    ],
}

# The names the blocks take from the reader's own code.
PREAMBLE = """
import keras
import tfxfer
SHORT = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=1)
"""
BETWEEN = {
    "callbacks=[early, csv]": "my_train, my_validation = data.train, data.validation",
    'keras.models.load_model("photos.keras")': (
        "images = next(iter(data.validation))[0][:2].numpy()\nmore_data = data"),
}

CLASSES = ("daisy", "rose", "tulip")


def python_blocks(text):
    """The ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def runnable_block(blocks, marker):
    """The one block holding `marker`, with its substitutions made."""
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"expected one README python block holding {marker!r}, found {len(found)}"
    block = found[0]
    for old, new in SUBSTITUTIONS[marker]:
        assert block.count(old) == 1, f"README block holding {marker!r} no longer holds {old!r} once"
        block = block.replace(old, new)
    return block


def write_photos(folder):
    """photos/{train,val}/<class>/<n>.jpg for 3 classes of flat colours, and new_photo.jpg."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 7)):  # the README names photos/val/tulip/7.jpg
        for index, name in enumerate(CLASSES):
            os.makedirs(folder / "photos" / split / name)
            for number in range(1, count + 1):
                pixels = np.clip(60 + 70 * index + rng.integers(0, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / "photos" / split / name / f"{number}.jpg")
    Image.fromarray(np.full((50, 50, 3), 120, np.uint8)).save(folder / "new_photo.jpg")


@pytest.mark.slow
def test_readme_python_api_examples_run(tmp_path, monkeypatch):
    with open(README, encoding="utf-8") as f:
        blocks = python_blocks(f.read())
    write_photos(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(PREAMBLE, namespace)
    for marker in SUBSTITUTIONS:
        exec(BETWEEN.get(marker, ""), namespace)
        exec(compile(runnable_block(blocks, marker), f"README.md block holding {marker!r}", "exec"), namespace)

    # The main example: what its comments say it makes.
    assert namespace["data"].class_names == list(CLASSES)
    assert set(namespace["result"].metrics()) == {"phase1", "phase2"}
    assert {"val_accuracy", "learning_rate"} <= set(namespace["result"].metrics()["phase1"])
    for picture in ("training_curves.png", "confusion_matrix.png"):
        assert os.path.getsize(tmp_path / "runs" / "photos" / picture) > 0
    for phase in ("phase1", "phase2"):
        assert os.listdir(tmp_path / "runs" / "photos" / "tensorboard" / phase)
    assert namespace["path"] == os.path.join("saved_models", "photos", "1")
    assert namespace["served"]["num_examples"] == 2
    assert np.array(namespace["report"]["confusion_matrix"]).shape == (3, 3)
    # The callbacks example: CSVLogger appended phase 2's epoch to phase 1's.
    with open(tmp_path / "epochs.csv") as f:
        assert [line.split(",")[0] for line in f.read().splitlines()] == ["epoch", "0", "0"]
    # The reloaded classifier is tfxfer's own type, and its export is the next version.
    import tfxfer

    assert isinstance(namespace["model"], tfxfer.ImageClassifier)
    assert sorted(os.listdir(tmp_path / "saved_models" / "photos")) == ["1", "2"]
