"""The pictures of a training run: training curves, confusion matrix, learning-rate sweep.

Each picture has a `*_figure` function that draws it from plain numbers (lists,
dicts, arrays, never tfxfer objects) and returns a `matplotlib.figure.Figure`,
and a `save_*` function that writes it as a PNG. Only matplotlib's
object-oriented API is used, never `pyplot`: no global figure state to leak
between runs and no GUI backend, so it works headless, in threads and in tests.
The PNG bytes go through `tf.io.gfile`, so a run folder on gs:// works too.
A multi-task run's curves get an accuracy panel per task, and each of its
single-label tasks a confusion matrix of its own (`confusion_matrix_file(task)`).

```python
from tfxfer.reports import plots
result = tfxfer.fine_tune(model, data.train, data.validation)
histories = [result.phase1.history] + ([result.phase2.history] if result.phase2 else [])
plots.save_training_curves(histories, f"{run_dir}/{plots.TRAINING_CURVES_FILE}")
```
"""

import io
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from absl import logging
from matplotlib import ticker
from matplotlib.figure import Figure

from tfxfer.errors import ConfigError

# The names the pictures have in a run folder.
TRAINING_CURVES_FILE = "training_curves.png"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"  # a multi-task run's: confusion_matrix_file(task)
LR_FIND_FILE = "lr_find.png"

# Sharp enough to read on a laptop screen, small enough (tens of kB) to keep in every run.
DPI = 110

PHASE_LABELS = ("phase 1 (frozen backbone)", "phase 2 (fine-tuning)")
# A matrix up to this many classes gets its count and share written in each cell;
# above it the cells get too small for text, and the colour alone (with its colourbar) tells.
ANNOTATE_MAX_CLASSES = 20
# Class names longer than this are cut (with an ellipsis) on the confusion matrix's axes,
# so that a few long names do not take the room the matrix needs.
MAX_NAME_CHARS = 24

_TRAIN_COLOR = "tab:blue"
_VALIDATION_COLOR = "tab:orange"
_PHASE_COLORS = ("0.93", "#e3eefa")  # light grey, light blue: backgrounds behind the curves
_PANELS = (("loss", "Loss"), ("accuracy", "Accuracy"))
_TASK_SUFFIX = "_accuracy"  # a task's accuracy in a multi-task run's history: <task>_accuracy


def training_curves_figure(phase_histories: Sequence[Mapping[str, Sequence[float]]], *,
                           title: str = "Training curves", tasks: Sequence[str] | None = None) -> Figure:
    """Loss and accuracy per epoch, train and validation, across both phases of a run.

    Epochs are counted across the phases: phase 2's first epoch comes right after
    phase 1's last, and a vertical line at phase 1's epoch count marks where the
    backbone was unfrozen. Train is drawn solid, validation dashed; each phase has
    a background of its own, named in the legend. A multi-task run gets, after the
    loss, one accuracy panel per task (`<task>_accuracy`, `val_<task>_accuracy`)
    instead of the one of the tasks' mean accuracy.

    Args:
        phase_histories: list of one or two dicts, phase 1's then phase 2's (leave
            phase 2 out when it did not run), each as `keras.callbacks.History.history`:
            `{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...]}`,
            one value per epoch (a multi-task run's also `<task>_accuracy` and
            `val_<task>_accuracy`). Validation keys may be missing, and a phase may have
            run 0 epochs (`{}`). Other keys (e.g. `learning_rate`) are ignored.
        title: str. The figure's title.
        tasks: sequence of str, or None. The tasks of a multi-task run, one accuracy panel
            each; None finds them in the histories (every `<task>_accuracy` key not
            starting with `val_`); none found draws the one accuracy panel.

    Returns:
        A `matplotlib.figure.Figure` with two panels, loss then accuracy (multi-task:
        loss, then one accuracy panel per task, three panels a row).

    Raises:
        ConfigError: no phase, more than two, a history that is not a dict, or
            metrics of one phase with different numbers of epochs.
    """
    panels = _panels(phase_histories, tasks)
    phases = _check_histories(phase_histories, panels)
    epochs = [next((len(values) for values in phase.values()), 0) for phase in phases]
    total = sum(epochs)
    starts = np.cumsum([0, *epochs])  # phase i covers epochs starts[i] + 1 .. starts[i + 1]
    x = np.arange(1, total + 1, dtype=float)
    right = max(total, 1) + 0.5  # room for the last point's marker

    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(5.5 * columns, 4.6 + 3.6 * (rows - 1)), layout="constrained")
    fig.suptitle(f"{title}\n" + ", ".join(f"phase {i + 1}: {n} epoch{'s' if n != 1 else ''}"
                                          for i, n in enumerate(epochs)), fontsize=12)
    axes = list(np.ravel(fig.subplots(rows, columns, squeeze=False)))
    for ax in axes[len(panels):]:  # the grid's empty places
        fig.delaxes(ax)
    axes = axes[:len(panels)]
    for ax, (metric, name, quantity) in zip(axes, panels):
        # Phase backgrounds first, so that the curves are drawn over them.
        for i, n in enumerate(epochs):
            if n:
                end = right if i == len(epochs) - 1 else starts[i + 1]  # the last one to the panel's edge
                ax.axvspan(starts[i], end, color=_PHASE_COLORS[i], zorder=0, lw=0, label=PHASE_LABELS[i])
        if len(epochs) == 2 and all(epochs):
            ax.axvline(epochs[0], color="0.35", lw=1.2, ls=":", gid="phase_boundary",
                       label="_phase boundary")
        drawn = False
        for key, label, color, style in ((metric, "train", _TRAIN_COLOR, "-"),
                                         (f"val_{metric}", "validation", _VALIDATION_COLOR, "--")):
            if not any(key in phase for phase in phases):
                continue
            # A phase without this key (its validation was skipped) leaves a gap, not a shifted line.
            y = np.concatenate([phase.get(key, np.full(n, np.nan)) for phase, n in zip(phases, epochs)])
            # A lone point (one epoch) draws no line; markers make short runs visible.
            ax.plot(x, y, color=color, ls=style, lw=2, label=label, gid=key,
                    marker="o" if total <= 30 else None, markersize=4)
            drawn = drawn or bool(np.isfinite(y).any())
        if not drawn:
            ax.text(0.5, 0.5, f"no {metric} recorded", transform=ax.transAxes, ha="center",
                    va="center", color="0.4")
        ax.set_title(name)
        ax.set_xlabel("epoch (counted across phases)")
        ax.set_ylabel(quantity)
        ax.set_xlim(0, right)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    # One legend for both panels, under them, where it cannot hide a curve.
    entries = {}  # label -> handle, from both panels: a metric may be missing from one of them
    for ax in axes:
        entries.update(zip(*reversed(ax.get_legend_handles_labels())))
    labels = sorted(entries, key=lambda label: label.startswith("phase"))  # the curves, then the phases
    fig.legend([entries[label] for label in labels], labels, loc="outside lower center",
               ncols=max(len(labels), 1), frameon=False, handlelength=3.5)
    return fig


def history_tasks(phase_histories: Sequence[Mapping[str, Sequence[float]]]) -> list[str]:
    """The tasks whose `<task>_accuracy` the histories hold (not starting with `val_`), in order of appearance.

    Example:
        >>> plots.history_tasks([{"loss": [0.5], "accuracy": [0.7], "species_accuracy": [0.8], "grade_accuracy": [0.6],
        ...                       "val_species_accuracy": [0.7]}])
        ['species', 'grade']
    """
    found = []
    for history in phase_histories:
        for key in history if isinstance(history, Mapping) else ():
            task = key[:-len(_TASK_SUFFIX)]
            if key.endswith(_TASK_SUFFIX) and task and not key.startswith("val_") and task not in found:
                found.append(task)
    return found


def _panels(phase_histories, tasks):
    """The panels drawn: (history key, title, y label) each."""
    if tasks is None:
        tasks = history_tasks(phase_histories) if not isinstance(phase_histories, Mapping) else []
    if isinstance(tasks, str):
        raise ConfigError(f"tasks must be a list of task names, not one string. Received: tasks={tasks!r}")
    if not tasks:
        return [(metric, name, name.lower()) for metric, name in _PANELS]
    return [("loss", "Loss", "loss")] + [(f"{task}{_TASK_SUFFIX}", f"Accuracy: {task}", "accuracy")
                                         for task in tasks]


def save_training_curves(phase_histories: Sequence[Mapping[str, Sequence[float]]], path: str, *,
                         title: str = "Training curves", tasks: Sequence[str] | None = None) -> str:
    """Writes `training_curves_figure(phase_histories)` as a PNG.

    Args:
        phase_histories: as `training_curves_figure`.
        path: str. The PNG's path, local or any `tf.io.gfile` filesystem; a run
            names it `os.path.join(run_dir, TRAINING_CURVES_FILE)`. Its folder is created.
        title: str. The figure's title.
        tasks: sequence of str, or None. As `training_curves_figure`: a multi-task run's tasks.

    Returns:
        `path`.

    Example:
        >>> phase1 = {"loss": [0.9, 0.6], "accuracy": [0.6, 0.8], "val_loss": [0.8, 0.7], "val_accuracy": [0.7, 0.75]}
        >>> phase2 = {"loss": [0.4], "accuracy": [0.9], "val_loss": [0.5], "val_accuracy": [0.85]}
        >>> tfxfer.save_training_curves([phase1, phase2], "/tmp/run/training_curves.png")
        '/tmp/run/training_curves.png'
    """
    return _save(training_curves_figure(phase_histories, title=title, tasks=tasks), path)


def confusion_matrix_figure(matrix, class_names: Sequence[str], *, title: str = "Confusion matrix") -> Figure:
    """The confusion matrix, each row coloured by its share of the true class.

    Rows are the true classes, columns the predicted ones. A cell's colour is its
    count divided by its row's total (each row sums to 1; a class without examples
    stays 0), so that rare classes read as well as common ones. Up to
    `ANNOTATE_MAX_CLASSES` classes each cell also shows its count and share
    ("12\\n80%"); above, the colour alone does, read on the colourbar. The figure and
    its fonts grow with the class count, up to a size that still opens on a screen.

    Args:
        matrix: square array-like of non-negative counts, `matrix[true][predicted]`.
        class_names: sequence of str, one per row, in the matrix's order.
        title: str. The figure's title; the example count and accuracy are added below it.

    Returns:
        A `matplotlib.figure.Figure`.

    Raises:
        ConfigError: a matrix that is not square, holds negative or non-finite
            counts, or whose size differs from the number of class names.
    """
    counts, names = _check_matrix(matrix, class_names)
    n = len(names)
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    annotate = n <= ANNOTATE_MAX_CLASSES

    # Cells big enough for two lines of text when annotated, for one tick label otherwise;
    # the matrix stays between 3.5 and 20 inches across whatever the class count.
    side = min(max(n * (0.62 if annotate else 0.24), 3.5), 20.0)
    cell_points = side / n * 72
    tick_size = float(np.clip(cell_points * 0.7, 6, 11))
    # Every class named while the names fit in their cells, then every k-th one.
    tick_step = max(1, math.ceil(8 / cell_points))
    shown = _short_names(names)
    label_inches = max(len(name) for name in shown) * tick_size * 0.6 / 72
    # Titles and axis labels grow with the figure, so they stay readable when it is shown scaled down.
    label_size = 10 + side / 4
    upright = n > 10  # x labels written upwards; fewer classes have room for slanted ones
    # Room for the names beside and under the matrix, the colourbar, the title and the axis labels.
    fig = Figure(figsize=(side + label_inches + 2.8, side + label_inches * (1.0 if upright else 0.75) + 2.2),
                 layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.6 if n <= 2 else 0.8, aspect=20 + side * 1.5, pad=0.02)
    colorbar.set_label("share of the true class (row)", fontsize=label_size)
    colorbar.ax.yaxis.set_major_formatter(ticker.PercentFormatter(xmax=1.0))

    if annotate:
        count_texts = [_format_count(c) for c in counts.ravel()]
        widest = max(4, *(len(text) for text in count_texts))  # "100%" is 4 characters
        font_size = float(np.clip(cell_points / (widest * 0.65 + 1), 6, 14))
        for (row, col), text in zip(np.ndindex(n, n), count_texts):
            share = shares[row, col]
            # White on the dark cells, where black would vanish; empty cells grey, so the
            # confusions stand out from the zeros.
            color = "white" if share > 0.55 else "black" if counts[row, col] else "0.6"
            ax.text(col, row, f"{text}\n{share:.0%}", ha="center", va="center", fontsize=font_size,
                    color=color, gid="cell")

    ticks = np.arange(0, n, tick_step)
    ax.set_xticks(ticks, [shown[i] for i in ticks], fontsize=tick_size, rotation=90 if upright else 45,
                  ha="center" if upright else "right", rotation_mode="default" if upright else "anchor")
    ax.set_yticks(ticks, [shown[i] for i in ticks], fontsize=tick_size)
    ax.set_xlabel("predicted class", fontsize=label_size)
    ax.set_ylabel("true class", fontsize=label_size)
    total = counts.sum()
    summary = f"{_format_count(total)} examples"
    if total > 0:
        summary += f", accuracy {np.trace(counts) / total:.1%}"
    ax.set_title(f"{title}\n{summary}", fontsize=label_size + 2)
    if n <= 50:
        # Thin white lines between the cells, so neighbouring cells of one colour stay apart;
        # with more classes they would wash out cells only a few pixels wide.
        ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
        ax.grid(which="minor", color="white", lw=0.8)
        ax.tick_params(which="minor", length=0)
    return fig


def save_confusion_matrix(matrix, class_names: Sequence[str], path: str, *, title: str = "Confusion matrix") -> str:
    """Writes `confusion_matrix_figure(matrix, class_names)` as a PNG.

    Args:
        matrix: square array-like of counts, `matrix[true][predicted]`.
        class_names: sequence of str, one per row.
        path: str. The PNG's path, local or any `tf.io.gfile` filesystem; a run
            names it `os.path.join(run_dir, CONFUSION_MATRIX_FILE)`. Its folder is created.
        title: str. The figure's title.

    Returns:
        `path`.

    Example:
        >>> tfxfer.save_confusion_matrix([[45, 5], [12, 38]], ["cat", "dog"], "/tmp/run/confusion_matrix.png")
        '/tmp/run/confusion_matrix.png'
    """
    return _save(confusion_matrix_figure(matrix, class_names, title=title), path)


def confusion_matrix_file(task: str | None = None) -> str:
    """The confusion matrix's file name in a run folder: `confusion_matrix.png`, a task's `confusion_matrix_<task>.png`.

    Example:
        >>> plots.confusion_matrix_file("species")
        'confusion_matrix_species.png'
    """
    if task is None:
        return CONFUSION_MATRIX_FILE
    stem, extension = os.path.splitext(CONFUSION_MATRIX_FILE)
    return f"{stem}_{task}{extension}"


def learning_rate_sweep_figure(learning_rates: Sequence[float], losses: Sequence[float],
                               smoothed_losses: Sequence[float], suggestion: float | None, *,
                               title: str = "Learning-rate finder") -> Figure:
    """Loss against learning rate from a learning-rate sweep, with the suggested rate marked.

    The raw loss of each step is drawn faint, the smoothed loss bold, on a log
    learning-rate axis. The y axis is cut just above the highest smoothed loss
    before its minimum, so that the divergence at the end of a sweep (a loss many
    times the starting one, or inf) does not squash the part that matters.

    Args:
        learning_rates: sequence of float > 0, the rate of each step.
        losses: sequence of float, the loss of each step (inf and NaN are left out).
        smoothed_losses: sequence of float, the smoothed loss of each step.
        suggestion: float > 0, the suggested learning rate, or None when the sweep
            suggested none (it is then only not marked).
        title: str. The figure's title.

    Returns:
        A `matplotlib.figure.Figure`.

    Raises:
        ConfigError: empty or differently long sequences, or a rate that is not
            a positive finite number.
    """
    rates, raw, smooth = _check_sweep(learning_rates, losses, smoothed_losses, suggestion)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    ax.set_xscale("log")
    ax.plot(rates, raw, color=_TRAIN_COLOR, alpha=0.3, lw=1, label="loss per step", gid="loss")
    ax.plot(rates, smooth, color=_TRAIN_COLOR, lw=2.4, label="smoothed loss", gid="smoothed_loss")
    limits = _sweep_limits(raw, smooth)
    if limits is not None:
        ax.set_ylim(*limits)
    if suggestion is not None:
        ax.axvline(suggestion, color="tab:red", lw=1.5, ls="--", label=f"suggested rate: {suggestion:.2e}",
                   gid="suggestion")
        finite = np.isfinite(smooth)
        if finite.any():
            # The point on the smoothed curve at the suggestion (interpolated in log space).
            y = float(np.interp(np.log(suggestion), np.log(rates[finite]), smooth[finite]))
            ax.plot([suggestion], [y], "o", color="tab:red", markersize=7, zorder=3)
            # The note goes on the side with more room, so it is never cut at the edge.
            low, high = np.log(rates.min()), np.log(rates.max())
            right = high == low or (np.log(suggestion) - low) / (high - low) < 0.6
            ax.annotate(f"{suggestion:.2e}", xy=(suggestion, y), xytext=(14 if right else -14, 26),
                        textcoords="offset points", ha="left" if right else "right", color="tab:red",
                        fontsize=11, fontweight="bold", arrowprops={"arrowstyle": "->", "color": "tab:red"},
                        # A white box keeps the value readable where it crosses a curve.
                        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.legend(loc="best")  # where it hides the least of the curves
    return fig


def save_learning_rate_sweep(learning_rates: Sequence[float], losses: Sequence[float],
                             smoothed_losses: Sequence[float], suggestion: float | None, path: str, *,
                             title: str = "Learning-rate finder") -> str:
    """Writes `learning_rate_sweep_figure(...)` as a PNG.

    Args:
        learning_rates, losses, smoothed_losses, suggestion: as `learning_rate_sweep_figure`.
        path: str. The PNG's path, local or any `tf.io.gfile` filesystem; a run
            names it `os.path.join(run_dir, LR_FIND_FILE)`. Its folder is created.
        title: str. The figure's title.

    Returns:
        `path`.

    Example:
        >>> rates = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
        >>> tfxfer.save_learning_rate_sweep(rates, [2.3, 2.2, 1.5, 1.2, 9.0], [2.3, 2.25, 1.9, 1.6, 4.0], 1e-3,
        ...                          "/tmp/run/lr_find.png")
        '/tmp/run/lr_find.png'
    """
    return _save(learning_rate_sweep_figure(learning_rates, losses, smoothed_losses, suggestion, title=title), path)


def _save(fig: Figure, path) -> str:
    """Writes `fig` as PNG bytes to `path` through `tf.io.gfile`, creating its folder.

    matplotlib writes to local files only, so it renders into memory and
    `tf.io.gfile` writes the bytes: the same code serves local and gs:// run folders.

    Args:
        fig: the `Figure` to write.
        path: str or path-like. Where the PNG goes.

    Returns:
        `path`, as a str.

    Raises:
        ConfigError: `path` is a folder.
    """
    path = os.fspath(path)
    if not path or path.endswith(("/", os.sep)) or tf.io.gfile.isdir(path):
        raise ConfigError(f"A picture's path must name a file, not a folder. Received: path={path!r}; "
                          "join a file name to the folder, e.g. os.path.join(run_dir, TRAINING_CURVES_FILE).")
    parent = os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    buffer = io.BytesIO()
    # The layouts leave room for every label; the tight box is the safety net for names
    # or titles longer than they planned for, which would otherwise be cut at the edge.
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.15)
    with tf.io.gfile.GFile(path, "wb") as file:
        file.write(buffer.getvalue())
    logging.info("Wrote %s", path)
    return path


def _check_histories(phase_histories, panels) -> list[dict[str, np.ndarray]]:
    """Per phase, `{plotted key: float array}` of the keys `panels` draw, after checking the histories' shape."""
    if isinstance(phase_histories, Mapping):
        raise ConfigError("phase_histories must be a list of per-phase histories, not one history: "
                          "pass [history] for a single phase.")
    histories = list(phase_histories)
    if not histories:
        raise ConfigError("phase_histories is empty: pass [phase1_history] or "
                          "[phase1_history, phase2_history] (each a keras History's `.history` dict).")
    if len(histories) > len(PHASE_LABELS):
        raise ConfigError(f"A run has at most {len(PHASE_LABELS)} phases. Received: {len(histories)} histories; "
                          "pass [phase1_history] or [phase1_history, phase2_history].")
    phases = []
    for i, history in enumerate(histories):
        if not isinstance(history, Mapping):
            raise ConfigError(f"Each phase history must be a dict of per-epoch metrics (a keras History's "
                              f"`.history`), not the History object itself. Received: phase {i + 1}: "
                              f"{type(history).__name__}")
        phase = {}
        for key in (key for metric, _, _ in panels for key in (metric, f"val_{metric}")):
            if key in history:
                try:
                    phase[key] = np.asarray(history[key], dtype=float)
                except (TypeError, ValueError) as error:
                    raise ConfigError(f"History values must be numbers, one per epoch. Received: phase {i + 1}: "
                                      f"{key}={history[key]!r}") from error
                if phase[key].ndim != 1:
                    raise ConfigError(f"History values must be a flat list, one number per epoch. Received: "
                                      f"phase {i + 1}: {key}={history[key]!r}")
        lengths = {key: len(values) for key, values in phase.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"Phase {i + 1}'s metrics have different numbers of epochs. Received: {lengths}; "
                              "pass each metric with one value per epoch of that phase.")
        phases.append(phase)
    return phases


def _check_matrix(matrix, class_names) -> tuple[np.ndarray, list[str]]:
    """The counts as a float array and the names as strs, after checking they fit together."""
    try:
        counts = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as error:
        raise ConfigError("The confusion matrix must be a square array of counts, "
                          f"matrix[true][predicted]. Received: {matrix!r}") from error
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ConfigError("The confusion matrix must be square (one row and one column per class), "
                          f"matrix[true][predicted]. Received: shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ConfigError("The confusion matrix must hold counts: finite numbers >= 0. "
                          f"Received: min {np.nanmin(counts)}, non-finite {int((~np.isfinite(counts)).sum())}")
    if isinstance(class_names, str):
        raise ConfigError(f"class_names must be a list of names, not one string. Received: {class_names!r}")
    names = [str(name) for name in class_names]
    if len(names) != counts.shape[0]:
        raise ConfigError(f"class_names must name each of the matrix's {counts.shape[0]} classes, in its order. "
                          f"Received: {len(names)} names for a {counts.shape[0]}x{counts.shape[1]} matrix")
    return counts, names


def _check_sweep(learning_rates, losses, smoothed_losses, suggestion):
    """The sweep as float arrays, after checking they line up."""
    arrays = {}
    for name, values in (("learning_rates", learning_rates), ("losses", losses),
                         ("smoothed_losses", smoothed_losses)):
        try:
            arrays[name] = np.asarray(values, dtype=float).reshape(-1)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{name} must be a sequence of numbers. Received: {values!r}") from error
    lengths = {name: len(values) for name, values in arrays.items()}
    if not lengths["learning_rates"] or len(set(lengths.values())) > 1:
        raise ConfigError("learning_rates, losses and smoothed_losses must be equally long and not empty, "
                          f"one value per step of the sweep. Received lengths: {lengths}")
    rates = arrays["learning_rates"]
    if not (np.isfinite(rates).all() and (rates > 0).all()):
        raise ConfigError("learning_rates must be positive finite numbers (they go on a log axis). "
                          f"Received: min {np.nanmin(rates)!r}")
    if suggestion is not None and not (math.isfinite(suggestion) and suggestion > 0):
        raise ConfigError(f"suggestion must be a positive finite learning rate, or None. Received: {suggestion!r}")
    return rates, arrays["losses"], arrays["smoothed_losses"]


def _sweep_limits(raw: np.ndarray, smooth: np.ndarray) -> tuple[float, float] | None:
    """y limits that show the sweep down to its minimum, and cut the final divergence."""
    curve = smooth if np.isfinite(smooth).any() else raw
    finite = np.isfinite(curve)
    if not finite.any():
        return None
    values = np.where(finite, curve, np.nan)
    lowest = int(np.nanargmin(values))
    # The highest loss up to the minimum is where the sweep started (or a bump before it
    # fell); everything after the minimum above it is divergence, shown only as it starts.
    high = float(np.nanmax(values[: lowest + 1]))
    # The noisy raw loss dips below the smoothed one; its dips up to there stay in view.
    raw_before = raw[: lowest + 1][np.isfinite(raw[: lowest + 1])]
    low = float(min(values[lowest], raw_before.min() if raw_before.size else np.inf))
    span = high - low
    if span <= 0:
        span = max(abs(low) * 0.1, 1e-3)
    return low - 0.1 * span, high + 0.3 * span


def _short_names(names: Sequence[str]) -> list[str]:
    """The names cut to `MAX_NAME_CHARS` (with an ellipsis), still telling the classes apart.

    A cut in the middle keeps both the beginning and the end, where class names
    usually differ ("bird_sparrow_house", "model_v2"). When that makes two names
    alike, cuts that keep more of the beginning, then more of the end, are tried;
    when none tells them apart, each name gets its index in front.
    """
    budget = MAX_NAME_CHARS - 1  # characters kept besides the ellipsis
    distinct = len(set(names))
    shown = []
    for head in sorted(range(budget + 1), key=lambda head: (abs(head - budget // 2), -head)):
        shown = [_cut(name, head, budget - head) for name in names]
        if len(set(shown)) == distinct:
            return shown
    return [f"{i}: {name}" for i, name in enumerate(_cut(name, budget // 2, budget - budget // 2) for name in names)]


def _cut(name: str, head: int, tail: int) -> str:
    if len(name) <= MAX_NAME_CHARS:
        return name
    return name[:head].rstrip() + "\u2026" + (name[len(name) - tail:].lstrip() if tail else "")


def _format_count(count: float) -> str:
    # Counts are whole numbers; weighted ones are not, and keep 3 significant digits.
    return f"{int(count)}" if float(count).is_integer() else f"{count:.3g}"
