"""`tf.distribute` strategies by name, and the per-worker helpers of a distributed run.

One flag picks where a run trains; the model and the engine stay the same:

```python
strategy = tfxfer.create_strategy("auto")            # TPU, all GPUs, or one device
with strategy.scope():                                # variables mirrored per replica
    model = tfxfer.build_image_classifier(...)
data = ...batch(tfxfer.global_batch_size(32, strategy))
tfxfer.fine_tune(model, data)                         # compiles in the same scope
```

Strategies (`list_strategies()`): `auto`, `default`, `one_device`, `mirrored`,
`multi_worker`, `tpu`. `fine_tune` trains with its own `strategy.run` loop
(`tfxfer.training.loop`), so all of them train, `multi_worker` included (Keras 3's
`Model.fit` does not work under it: keras-team/keras#20585).
"""

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable

import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError

CHIEF_TASK_TYPES = ("chief", "master")


@dataclasses.dataclass
class TPUSystem:
    """The TensorFlow calls that reach a Cloud TPU; a seam so tests can fake them.

    Attributes:
        resolver: callable. `resolver(tpu=...)` returns a cluster resolver
            (`tf.distribute.cluster_resolver.TPUClusterResolver`).
        connect: callable. Connects this process to the resolver's cluster.
        initialize: callable. Initializes the TPU system of the resolver.
        strategy: callable. `strategy(resolver)` returns the `TPUStrategy`.
    """

    resolver: Callable = tf.distribute.cluster_resolver.TPUClusterResolver
    connect: Callable = tf.config.experimental_connect_to_cluster
    initialize: Callable = tf.tpu.experimental.initialize_tpu_system
    strategy: Callable = tf.distribute.TPUStrategy


# Replaced by tests (monkeypatch) with fakes that record the calls.
tpu_system = TPUSystem()


def list_strategies() -> list[str]:
    """Names accepted by `create_strategy`, sorted.

    Example:

    >>> tfxfer.list_strategies()
    ['auto', 'default', 'mirrored', 'multi_worker', 'one_device', 'tpu']
    """
    return sorted(_FACTORIES)


def create_strategy(name: str = "auto", *, tpu: str | None = None,
                    num_gpus: int | None = None) -> tf.distribute.Strategy:
    """Creates a `tf.distribute.Strategy` by name.

    Args:
        name: str. One of `list_strategies()`:
            `auto`: `tpu` if `tpu` is given, else `mirrored` if more than one
            GPU is visible (or `num_gpus` > 1), else `default`.
            `default`: the default strategy (one device, no distribution).
            `one_device`: `OneDeviceStrategy` on the first GPU, or the CPU if
            there is none (or `num_gpus=0`).
            `mirrored`: `MirroredStrategy` over `num_gpus` GPUs (all visible
            ones if None); without GPUs, over all logical CPU devices.
            `multi_worker`: `MultiWorkerMirroredStrategy`; reads `TF_CONFIG`.
            `tpu`: `TPUStrategy` on the Cloud TPU named by `tpu`.
        tpu: str. TPU name, `grpc://host:port` address, or `"local"` on a TPU
            VM; implies `tpu` under `auto`. None lets the resolver find it
            (`TPU_NAME` environment variable, or the TPU VM's metadata).
        num_gpus: int. GPUs to use (`mirrored`, `one_device`, `auto`); None uses
            all visible ones.

    Returns:
        The strategy; create the model inside its `scope()`.

    Example:

    >>> strategy = tfxfer.create_strategy("default")  # "auto" picks TPU, GPUs or one device
    >>> strategy.num_replicas_in_sync
    1

    Build the model in its scope; `fine_tune` then trains under it:

    ```python
    strategy = tfxfer.create_strategy("auto")
    with strategy.scope():
        model = tfxfer.build_image_classifier("mobilenet_v2", num_classes=5)
    ```
    """
    if name not in _FACTORIES:
        raise ConfigError(f"Unknown strategy. Expected one of {list_strategies()}. Received: name={name!r}")
    if num_gpus is not None and (isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 0):
        raise ConfigError(
            f"num_gpus must be an integer >= 0, or None for all visible GPUs. Received: num_gpus={num_gpus!r}")
    if tpu is not None and name not in ("auto", "tpu"):
        raise ConfigError(
            f"tpu is only used by the strategies 'tpu' and 'auto'; drop it or pass name='tpu' (recipes: "
            "leave --tpu out, or pass --strategy=tpu). "
            f"Received: name={name!r}, tpu={tpu!r}")
    if num_gpus is not None and name in ("default", "multi_worker", "tpu"):
        raise ConfigError(
            f"num_gpus is only used by the strategies 'auto', 'mirrored' and 'one_device'; "
            f"strategy {name!r} picks its own devices. Received: num_gpus={num_gpus}")
    if name == "auto":
        name = _auto_name(tpu, num_gpus)
    strategy = _FACTORIES[name](tpu=tpu, num_gpus=num_gpus)
    replicas = strategy.num_replicas_in_sync
    logging.info("Strategy %r: %s with %d %s in sync.", name, type(strategy).__name__, replicas,
                 "replica" if replicas == 1 else "replicas")
    return strategy


# The strategies `create_strategy` makes, by their names; the multi-worker one before the mirrored one, in case a
# TensorFlow release makes it a subclass. The default strategy has no public class (`strategy_name`).
_NAMES_BY_CLASS = ((tf.distribute.TPUStrategy, "tpu"), (tf.distribute.MultiWorkerMirroredStrategy, "multi_worker"),
                   (tf.distribute.MirroredStrategy, "mirrored"), (tf.distribute.OneDeviceStrategy, "one_device"))


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """`strategy`'s name among `list_strategies()`: what `create_strategy("auto")` resolved to, for a run's
    records; "default" for TensorFlow's default strategy (one device, no distribution), and the class name of
    any other kind."""
    for kind, name in _NAMES_BY_CLASS:
        if isinstance(strategy, kind):
            return name
    # The default strategy is the one in force outside any strategy's scope.
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return "default"
    return type(strategy).__name__


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """The batch the input pipeline must produce: `per_replica` times the replicas in sync.

    Args:
        per_replica: int. Examples each replica (device) processes per step.
        strategy: tf.distribute.Strategy. The strategy the model trains under.

    Example:

    >>> strategy = tfxfer.create_strategy("default")
    >>> tfxfer.global_batch_size(32, strategy)  # 32 per replica, 1 replica
    32
    """
    if isinstance(per_replica, bool) or not isinstance(per_replica, int) or per_replica < 1:
        raise ConfigError(f"The per-replica batch size must be an integer >= 1. Received: per_replica={per_replica!r} "
                          "(recipes: --batch_size)")
    return per_replica * strategy.num_replicas_in_sync


def scale_learning_rate(learning_rate: float, global_batch: int, base_batch: int) -> float:
    """Linear scaling rule (Goyal et al., 2017): the learning rate grows with the batch.

    Args:
        learning_rate: float. The learning rate tuned for `base_batch`.
        global_batch: int. The batch of one training step over all replicas.
        base_batch: int. The batch `learning_rate` was tuned for.

    Returns:
        `learning_rate * global_batch / base_batch`.

    Example:

    >>> tfxfer.scale_learning_rate(1e-3, global_batch=256, base_batch=32)
    0.008
    """
    if base_batch < 1 or global_batch < 1:
        raise ConfigError(f"Batch sizes must be >= 1. Received: global_batch={global_batch}, base_batch={base_batch}")
    return learning_rate * global_batch / base_batch


def is_chief(tf_config: str | None = None) -> bool:
    """Whether this process is the chief of its cluster, from `TF_CONFIG`.

    The chief is the task of type `chief` (or `master`); in a cluster without
    one, worker 0. A process without `TF_CONFIG` is alone, hence the chief.

    Args:
        tf_config: str. `TF_CONFIG` JSON; None reads the environment variable.

    Example:

    >>> cluster = '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
    >>> tfxfer.is_chief(cluster + '"task": {"type": "worker", "index": 0}}')
    True
    >>> tfxfer.is_chief(cluster + '"task": {"type": "worker", "index": 1}}')
    False
    """
    task_type, task_index, cluster = _task(tf_config)
    if task_type is None or task_type in CHIEF_TASK_TYPES:
        return True
    has_chief = any(kind in cluster for kind in CHIEF_TASK_TYPES)
    return task_type == "worker" and task_index == 0 and not has_chief


def chief_or_temp_dir(path: str | os.PathLike, tf_config: str | None = None) -> str:
    """`path` on the chief; a fresh temporary folder on every other worker.

    In multi-worker training every worker runs the same code, including the
    lines that write metrics and exports (they may hold collective ops); only
    the chief's files are kept, the others go to a temporary folder.

    `path` may be on any filesystem TensorFlow supports (`gs://...`): it is
    returned as it is, and nothing is written there. The other workers' folder
    is a local one whatever `path` is: their files are thrown away, so they
    should cost no upload and leave nothing behind in a bucket.

    Args:
        path: str. The folder the chief writes to: a local path or a URL.
        tf_config: str. `TF_CONFIG` JSON; None reads the environment variable.

    Example:

    >>> cluster = '{"cluster": {"chief": ["host1:2222"], "worker": ["host2:2222"]}, '
    >>> chief = cluster + '"task": {"type": "chief", "index": 0}}'
    >>> tfxfer.chief_or_temp_dir("gs://my-bucket/runs/1", tf_config=chief)
    'gs://my-bucket/runs/1'

    With `tf_config=None` it reads `TF_CONFIG`; on the worker it would return a
    new local folder such as `/tmp/tfxfer_worker0_abc123`.
    """
    if is_chief(tf_config):
        return os.fspath(path)
    task_type, task_index, _ = _task(tf_config)
    temp = tempfile.mkdtemp(prefix=f"tfxfer_{task_type}{task_index}_")
    logging.info("Not the chief (%s %s): writing to %s instead of %s.", task_type, task_index, temp, path)
    return temp


def _task(tf_config):
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw:
        return None, 0, {}
    try:
        config = json.loads(raw)
        task = config.get("task") or {}
        return task.get("type"), int(task.get("index", 0)), config.get("cluster") or {}
    # Not JSON (a ValueError), not an object (AttributeError), or an index that is no integer.
    except (ValueError, AttributeError, TypeError) as error:
        raise ConfigError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
            f'"task": {{"type": "worker", "index": 0}}}}. Received: TF_CONFIG={raw!r}') from error


def _visible_gpus() -> list[str]:
    return [f"/gpu:{index}" for index in range(len(tf.config.list_physical_devices("GPU")))]


def _gpus(num_gpus):
    visible = _visible_gpus()
    if num_gpus is None:
        return visible
    if num_gpus > len(visible):
        raise ConfigError(
            f"Asked for {num_gpus} GPUs, but {len(visible)} are visible to TensorFlow "
            f"({visible or 'none'}). Pass a smaller num_gpus, or check CUDA_VISIBLE_DEVICES "
            f"and the GPU drivers. Received: num_gpus={num_gpus}")
    return visible[:num_gpus]


def _auto_name(tpu, num_gpus):
    if tpu is not None:
        return "tpu"
    return "mirrored" if len(_gpus(num_gpus)) > 1 else "default"


def _default(tpu, num_gpus):
    return tf.distribute.get_strategy()


def _one_device(tpu, num_gpus):
    if num_gpus not in (None, 0, 1):
        raise ConfigError(f"one_device uses at most one GPU; use 'mirrored' for more. Received: num_gpus={num_gpus}")
    gpus = _gpus(num_gpus)[:1]
    return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")


def _mirrored(tpu, num_gpus):
    devices = _gpus(num_gpus)
    if not devices:
        # Several logical CPU devices (tf.config.set_logical_device_configuration) are
        # how mirrored training is tested without GPUs.
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        logging.warning("No GPU visible: mirroring over %d CPU %s %s.", len(devices),
                        "device" if len(devices) == 1 else "devices", devices)
    return tf.distribute.MirroredStrategy(devices)


def _multi_worker(tpu, num_gpus):
    task_type, task_index, cluster = _task(None)
    if task_type is None:
        logging.warning("TF_CONFIG is not set: multi_worker runs as a single worker.")
    else:
        logging.info("Multi-worker task %s %d of cluster %s.", task_type, task_index, cluster)
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tpu(tpu, num_gpus):
    if tpu is not None and (not isinstance(tpu, str) or not tpu.strip()):
        raise ConfigError(
            "tpu must be a TPU name, a grpc://host:port address or 'local' (on a TPU VM), "
            f"or None to use TPU_NAME. Received: tpu={tpu!r}")
    try:
        resolver = tpu_system.resolver(tpu=tpu)
    except (ValueError, RuntimeError) as error:
        raise ConfigError(
            f"Could not find the Cloud TPU {tpu!r}: {error}. Pass its name or grpc:// address "
            "(--tpu), or 'local' on a TPU VM, and check that this machine can reach it. "
            f"Received: tpu={tpu!r}") from error
    tpu_system.connect(resolver)
    tpu_system.initialize(resolver)
    return tpu_system.strategy(resolver)


_FACTORIES = {
    "auto": None,  # resolved to one of the others by _auto_name
    "default": _default,
    "one_device": _one_device,
    "mirrored": _mirrored,
    "multi_worker": _multi_worker,
    "tpu": _tpu,
}
