"""The recipes' own helpers, which turn flags into library values and write run files.

They live with the recipes (`recipes/`), not in `tfxfer`: the library never
reads flags, and a run's `metrics.json` is the app's report.
"""

import json
import os

import metrics_file  # recipes/metrics_file.py
import pytest
import training_flags  # recipes/training_flags.py

import tfxfer

# training_flags.parse_fine_tune_at is tested with freezing (tests/test_freezing.py).

@pytest.mark.parametrize("text, expected", [
    (None, None), ("", None), ("none", None), (" None ", None), ("imagenet", "imagenet"),
    ("pretrained", "pretrained"), ("weights/model.weights.h5", "weights/model.weights.h5"),
])
def test_parse_weights(text, expected):
    assert training_flags.parse_weights(text) == expected


def test_write_metrics_writes_sorted_json_and_replaces_it(tmp_path):
    run_dir = tmp_path / "runs" / "flowers"
    path = metrics_file.write_metrics(str(run_dir), {"val_accuracy": 0.5, "data": {"train": 10}, "path": run_dir})
    assert path == os.path.join(str(run_dir), "metrics.json")
    text = (run_dir / "metrics.json").read_text(encoding="utf-8")
    assert json.loads(text) == {"data": {"train": 10}, "path": str(run_dir), "val_accuracy": 0.5}
    assert text.index('"data"') < text.index('"val_accuracy"')
    metrics_file.write_metrics(str(run_dir), {"val_accuracy": 0.75})
    assert json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")) == {"val_accuracy": 0.75}
    assert os.listdir(run_dir) == ["metrics.json"]  # no staging file left


def test_recipe_helpers_are_not_library_api():
    for name in ("parse_fine_tune_at", "parse_weights", "write_metrics", "flag_values", "reporting"):
        assert not hasattr(tfxfer, name), name
        assert name not in tfxfer.__all__


def test_the_package_names_its_public_api_and_loads_it_on_use():
    assert set(tfxfer.__all__) <= set(dir(tfxfer))
    for name in tfxfer.__all__:
        assert getattr(tfxfer, name) is not None, name
    assert tfxfer.__version__ == tfxfer.version.__version__
    with pytest.raises(AttributeError, match="module 'tfxfer' has no attribute 'no_such_name'"):
        tfxfer.no_such_name  # noqa: B018
