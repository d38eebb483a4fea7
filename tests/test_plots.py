"""The run pictures (`tfxfer.reports.plots`): drawn from the run's numbers, written as readable PNGs."""

import ast
import io
import pathlib

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from tfxfer.errors import ConfigError
from tfxfer.reports import plots

PHASE1 = {"loss": [1.2, 0.9, 0.7], "accuracy": [0.5, 0.6, 0.7],
          "val_loss": [1.3, 1.0, 0.8], "val_accuracy": [0.45, 0.55, 0.65], "learning_rate": [3e-3] * 3}
PHASE2 = {"loss": [0.5, 0.4], "accuracy": [0.8, 0.85], "val_loss": [0.6, 0.55], "val_accuracy": [0.75, 0.8]}


def _by_gid(ax, gid):
    """The artists of `ax` the module tagged with `gid`."""
    return [artist for artist in ax.get_children() if artist.get_gid() == gid]


def _line(ax, gid):
    (line,) = _by_gid(ax, gid)
    return line


def _png(path_or_bytes):
    """The PNG as an array (rows, columns, channels), after checking its signature."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else pathlib.Path(path_or_bytes).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(io.BytesIO(data), format="png")


# Training curves.

def test_training_curves_continue_phase_2_after_phase_1_and_mark_the_boundary():
    fig = plots.training_curves_figure([PHASE1, PHASE2])
    loss_ax, accuracy_ax = fig.axes
    for ax, metric in ((loss_ax, "loss"), (accuracy_ax, "accuracy")):
        for key in (metric, f"val_{metric}"):
            line = _line(ax, key)
            np.testing.assert_allclose(line.get_xdata(), [1, 2, 3, 4, 5])
            np.testing.assert_allclose(line.get_ydata(), PHASE1[key] + PHASE2[key])
        assert _line(ax, metric).get_linestyle() == "-"
        assert _line(ax, f"val_{metric}").get_linestyle() == "--"
        np.testing.assert_allclose(_line(ax, "phase_boundary").get_xdata(), [3, 3])
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert "learning_rate" not in {line.get_gid() for line in loss_ax.lines}
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["train", "validation", *plots.PHASE_LABELS]
    assert "phase 1: 3 epochs, phase 2: 2 epochs" in fig.get_suptitle()


def test_training_curves_of_one_phase_without_validation_have_no_boundary_and_no_validation_line():
    fig = plots.training_curves_figure([{"loss": [0.9, 0.5], "accuracy": [0.6, 0.8]}])
    loss_ax, _ = fig.axes
    np.testing.assert_allclose(_line(loss_ax, "loss").get_ydata(), [0.9, 0.5])
    assert not _by_gid(loss_ax, "val_loss") and not _by_gid(loss_ax, "phase_boundary")
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["train", plots.PHASE_LABELS[0]]


def test_training_curves_leave_a_gap_where_a_phase_has_no_validation_and_draw_single_epochs():
    fig = plots.training_curves_figure([{"loss": [0.9]}, {"loss": [0.5], "val_loss": [0.6]}])
    loss_ax, accuracy_ax = fig.axes
    np.testing.assert_allclose(_line(loss_ax, "val_loss").get_ydata(), [np.nan, 0.6])
    assert _line(loss_ax, "loss").get_marker() == "o"  # one point per phase still shows
    np.testing.assert_allclose(_line(loss_ax, "phase_boundary").get_xdata(), [1, 1])
    assert "no accuracy recorded" in [text.get_text() for text in accuracy_ax.texts]


def test_training_curves_of_a_phase_with_no_epochs():
    fig = plots.training_curves_figure([{}, PHASE2])
    loss_ax, _ = fig.axes
    np.testing.assert_allclose(_line(loss_ax, "loss").get_xdata(), [1, 2])
    assert not _by_gid(loss_ax, "phase_boundary")


def test_save_training_curves_writes_a_png_in_a_new_folder(tmp_path):
    path = str(tmp_path / "run" / "pictures" / plots.TRAINING_CURVES_FILE)
    assert plots.save_training_curves([PHASE1, PHASE2], path) == path
    height, width, _ = _png(path).shape
    assert 1000 <= width <= 1500 and 400 <= height <= 700


@pytest.mark.parametrize("histories, message", [
    ([], "empty"),
    (PHASE1, "not one history"),
    ([PHASE1, PHASE2, PHASE2], "at most 2 phases"),
    ([{"loss": [1.0, 0.5], "val_loss": [1.0]}], "different numbers of epochs"),
    (["loss"], "must be a dict"),
    ([{"loss": ["low"]}], "must be numbers"),
    ([{"loss": 0.5}], "one number per epoch"),
])
def test_training_curves_reject_bad_histories(histories, message):
    with pytest.raises(ConfigError, match=message):
        plots.training_curves_figure(histories)


# Confusion matrix.

MATRIX = np.array([[12, 3, 0], [0, 0, 0], [1, 4, 20]])


def test_confusion_matrix_colours_row_shares_and_writes_counts_and_shares():
    fig = plots.confusion_matrix_figure(MATRIX, ["cat", "dog", "bird"])
    ax = fig.axes[0]
    expected = np.array([[0.8, 0.2, 0.0], [0.0, 0.0, 0.0], [0.04, 0.16, 0.8]])
    np.testing.assert_allclose(ax.images[0].get_array(), expected)
    cells = {(round(text.get_position()[1]), round(text.get_position()[0])): text.get_text()
             for text in _by_gid(ax, "cell")}
    assert len(cells) == 9
    assert cells[0, 0] == "12\n80%" and cells[2, 1] == "4\n16%" and cells[1, 1] == "0\n0%"
    assert [label.get_text() for label in ax.get_xticklabels()] == ["cat", "dog", "bird"]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["cat", "dog", "bird"]
    assert ax.get_ylabel() == "true class" and ax.get_xlabel() == "predicted class"
    assert "40 examples, accuracy 80.0%" in ax.get_title()
    assert len(fig.axes) == 2  # the colourbar


def test_confusion_matrix_of_50_classes_is_larger_and_colours_only():
    names = [f"class {i}" for i in range(50)]
    counts = np.eye(50, dtype=int) * 10 + 1
    large = plots.confusion_matrix_figure(counts, names)
    small = plots.confusion_matrix_figure(MATRIX[:2, :2], ["cat", "dog"])
    ax = large.axes[0]
    assert not _by_gid(ax, "cell")
    np.testing.assert_allclose(ax.images[0].get_array(), counts / 60)  # each row: 11 + 49 ones
    assert [label.get_text() for label in ax.get_yticklabels()] == names
    assert [label.get_text() for label in ax.get_xticklabels()] == names
    assert (large.get_size_inches() > 2 * small.get_size_inches()).all()
    assert len(_by_gid(small.axes[0], "cell")) == 4


def test_confusion_matrix_cuts_long_names_with_an_ellipsis_keeping_them_apart():
    names = [f"a rather long class name number {i}" for i in range(3)]
    ax = plots.confusion_matrix_figure(MATRIX, names).axes[0]
    shown = [label.get_text() for label in ax.get_xticklabels()]
    assert all("\u2026" in name and len(name) <= plots.MAX_NAME_CHARS for name in shown)
    assert len(set(shown)) == 3 and shown[2].endswith("number 2")


def test_save_confusion_matrix_sizes_the_png_with_the_class_count(tmp_path):
    small = plots.save_confusion_matrix([[45, 5], [12, 38]], ["cat", "dog"], str(tmp_path / "2.png"))
    large = plots.save_confusion_matrix(np.eye(50) * 3, [f"name {i}" for i in range(50)], str(tmp_path / "50.png"))
    small_height, small_width, _ = _png(small).shape
    large_height, large_width, _ = _png(large).shape
    assert 400 <= small_width <= 1000 and 400 <= small_height <= 1000
    assert 1300 <= large_width <= 2600 and 1300 <= large_height <= 2600


@pytest.mark.parametrize("matrix, names, message", [
    ([[1, 2, 3], [4, 5, 6]], ["a", "b"], "must be square"),
    ([[1, 2], [3, 4]], ["a", "b", "c"], "3 names for a 2x2 matrix"),
    ([[1, -2], [3, 4]], ["a", "b"], "finite numbers >= 0"),
    ([[1, 2], [3, 4]], "ab", "not one string"),
])
def test_confusion_matrix_rejects_what_does_not_fit(matrix, names, message):
    with pytest.raises(ConfigError, match=message):
        plots.confusion_matrix_figure(matrix, names)


# Learning-rate sweep.

RATES = np.geomspace(1e-6, 1.0, 40)
LOSSES = np.concatenate([np.linspace(2.3, 0.8, 35), [1.5, 5.0, 40.0, 900.0, np.inf]])
SMOOTHED = np.concatenate([np.linspace(2.3, 0.9, 35), [1.0, 1.6, 6.0, 90.0, np.inf]])


def test_learning_rate_sweep_marks_the_suggestion_on_a_log_axis_and_cuts_the_divergence():
    fig = plots.learning_rate_sweep_figure(RATES, LOSSES, SMOOTHED, 3e-3)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(_line(ax, "suggestion").get_xdata(), [3e-3, 3e-3])
    np.testing.assert_allclose(_line(ax, "loss").get_ydata(), LOSSES)
    np.testing.assert_allclose(_line(ax, "smoothed_loss").get_ydata(), SMOOTHED)
    assert _line(ax, "smoothed_loss").get_linewidth() > _line(ax, "loss").get_linewidth()
    assert "3.00e-03" in [text.get_text() for text in ax.texts]
    low, high = ax.get_ylim()
    assert low < 0.8 and 2.3 < high < 3.0  # the whole descent shows; the spike to 900 does not squash it


def test_learning_rate_sweep_without_suggestion_draws_no_mark(tmp_path):
    path = plots.save_learning_rate_sweep(RATES, LOSSES, SMOOTHED, None, str(tmp_path / plots.LR_FIND_FILE))
    height, width, _ = _png(path).shape
    assert 700 <= width <= 1100 and 450 <= height <= 750
    assert not _by_gid(plots.learning_rate_sweep_figure(RATES, LOSSES, SMOOTHED, None).axes[0], "suggestion")


@pytest.mark.parametrize("rates, losses, suggestion, message", [
    (RATES[:-1], LOSSES, 1e-3, "equally long"),
    ([], [], 1e-3, "not empty"),
    (np.linspace(0, 1, 40), LOSSES, 1e-3, "positive finite"),
    (RATES, LOSSES, -1.0, "suggestion must be"),
])
def test_learning_rate_sweep_rejects_bad_input(rates, losses, suggestion, message):
    with pytest.raises(ConfigError, match=message):
        plots.learning_rate_sweep_figure(rates, losses, losses, suggestion)


# Writing.

def test_pictures_go_through_tf_io_gfile():
    # `ram://` is a TensorFlow filesystem matplotlib cannot write to, as gs:// is.
    path = plots.save_confusion_matrix([[1, 0], [0, 1]], ["a", "b"], "ram://run/pictures/confusion_matrix.png")
    with tf.io.gfile.GFile(path, "rb") as file:
        assert _png(file.read()).shape[0] > 100


def test_a_folder_is_not_a_picture_path(tmp_path):
    with pytest.raises(ConfigError, match="must name a file"):
        plots.save_training_curves([PHASE1], str(tmp_path))


def test_the_module_never_uses_pyplot():
    # pyplot keeps global figures and picks a GUI backend; the object-oriented API needs neither.
    tree = ast.parse(pathlib.Path(plots.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 for alias in node.names}
    assert not any("pyplot" in name for name in imported)
