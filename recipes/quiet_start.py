"""A recipe's console without TensorFlow's start-up noise, and log lines that fit a screen.

Imported before TensorFlow (through `cli`), it sets TensorFlow's C++ log level
to 2 (errors only) unless the user set `TF_CPP_MIN_LOG_LEVEL`, and imports
TensorFlow with the process's stderr filtered: a few lines on every CPU-only
machine come before TensorFlow reads that level (CUDA probes, absl's
"before InitializeLog" notice, the cuInit failure when no GPU driver is
present, and on CPUs where TensorFlow turns oneDNN's kernels on, a notice
that results may differ in round-off). On CPU-only machines, oneDNN's notice
that it leaves integer ops to TensorFlow's kernels on CPUs without AVX-512, due
at the first such op, is brought forward into the filter too. Every other line
still reaches stderr. A user who sets `TF_CPP_MIN_LOG_LEVEL` gets all of
TensorFlow's output, unfiltered.

`shorten_log_lines` then keeps TensorFlow's own INFO records (a saved
signature's input names, sharding timings, ...) out of the log, writes each of
TensorFlow's warnings once, and cuts any record longer than a screen.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile

MAX_LOG_CHARS = 400
# Start-up lines that say nothing on a machine without a GPU.
_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|"
    r"cudart_stub\.cc.*Could not find cuda drivers|"
    r"failed call to cuInit|"
    r"cpu_feature_guard\.cc|To enable the following instructions:|"
    r"port\.cc.*oneDNN custom operations are on|"
    r"util\.cc.*oneDNN supports DT_\w+ only on platforms with AVX-512|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered")

_QUIET = "TF_CPP_MIN_LOG_LEVEL" not in os.environ


@contextlib.contextmanager
def _stderr_without_noise():
    """Runs the body with file descriptor 2 captured, then writes back the lines that are not noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not _NOISE.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


if _QUIET:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with _stderr_without_noise():
        import tensorflow as tf

        devices = tf.config.list_physical_devices()  # the device probes (cuInit) log now, inside the filter
        if all(device.device_type == "CPU" for device in devices):
            # oneDNN says once per process, on CPUs it finds without AVX-512, that it leaves integer ops to
            # TensorFlow's own kernels (the images' EXIF turns, the texts' token ids): now, not mid-run. In a
            # graph session of its own: an eager op would start TensorFlow's runtime, which a multi-worker
            # strategy must configure first ("Collective ops must be configured at program startup"). Only
            # on CPU-only machines, so that no GPU or TPU is set up before the recipe chooses its devices.
            with tf.Graph().as_default(), tf.compat.v1.Session() as session:
                session.run(tf.transpose(tf.zeros((1, 1), tf.uint8)))
else:
    import tensorflow as tf


class _Shorten(logging.Filter):
    """Cuts a record's message at MAX_LOG_CHARS, saying how much was left out; drops TensorFlow's INFO
    records (when `quiet_tensorflow`)."""

    def __init__(self, quiet_tensorflow: bool = False):
        super().__init__()
        # TensorFlow logs through absl as well as its "tensorflow" logger: its records are told by their file.
        self._tensorflow_dir = os.path.dirname(tf.__file__) + os.sep if quiet_tensorflow else None

    def filter(self, record):
        if (self._tensorflow_dir and record.levelno < logging.WARNING
                and record.pathname.startswith(self._tensorflow_dir)):
            return False
        message = record.getMessage()
        if len(message) > MAX_LOG_CHARS:
            record.msg = f"{message[:MAX_LOG_CHARS]} ... ({len(message) - MAX_LOG_CHARS} more characters)"
            record.args = None
        return True


def shorten_log_lines() -> None:
    """No INFO records of TensorFlow's own (unless the user asked for TF's output), none longer than
    MAX_LOG_CHARS, and each record once. Call it once absl has set up logging (inside `app.run`)."""
    root = logging.getLogger()
    if root.handlers:
        # TensorFlow gives its logger a handler of its own when it finds the root logger without one, as it
        # does before absl sets up logging: its records, which reach absl's handler through the root, would
        # be written twice, and its INFO records past the filter below.
        tensorflow_logger = logging.getLogger("tensorflow")
        for handler in list(tensorflow_logger.handlers):
            tensorflow_logger.removeHandler(handler)
    for handler in root.handlers:
        handler.addFilter(_Shorten(quiet_tensorflow=_QUIET))
