"""What the benchmarks measure besides accuracy: training throughput, peak memory, the machine."""

import os
import platform
import time

import keras
import tensorflow as tf


class TrainingThroughput(keras.callbacks.Callback):
    """Images per second of the training steps of each `fit` (or `fine_tune` phase), validation excluded.

    An epoch's time runs from `on_epoch_begin` to its last training batch's end,
    so the validation pass after it does not count. Each training run (each
    `on_train_begin`) keeps its own epoch times; the first epoch of a run is
    left out when it has others, since it traces (and, with XLA, compiles) the step.

    Args:
        examples_per_epoch: int. Training examples one epoch goes through.
    """

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.runs = []

    def on_train_begin(self, logs=None):
        self.runs.append([])

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.runs[-1].append(self._last - self._start)

    def images_per_second(self, run: int = -1) -> float | None:
        """Of training run `run` (the last by default): the mean over its epochs after the first."""
        timed = self.runs[run][1:] or self.runs[run]
        return self.examples_per_epoch * len(timed) / sum(timed) if timed else None


def pipeline_images_per_second(dataset: tf.data.Dataset) -> float:
    """Images per second of one full pass over `(images, labels)` batches, with no model: the input pipeline alone."""
    start, count = time.perf_counter(), 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


class PeakRss:
    """Peak resident memory of this process while the block runs, in MB.

    Linux resets the peak (`VmHWM`) when "5" is written to `/proc/self/clear_refs`,
    so runs in one process each get their own peak: the process's memory
    when the block starts plus the most the block added on top.
    """

    def __enter__(self) -> "PeakRss":
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.megabytes = None
        return self

    def __exit__(self, *exc_info):
        self.megabytes = peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory (`VmHWM`) in MB: since it started, or since `PeakRss` reset it. Unlike
    `ru_maxrss`, which a subprocess inherits from the parent it was forked from, it starts again at exec."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 1024


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu_count": os.cpu_count(), "cpu": cpu, "tensorflow": tf.__version__, "keras": keras.__version__}
