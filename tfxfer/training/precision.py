"""Mixed precision for `fine_tune` on a model that is already built.

tfxfer's builders make float32 models, and `fine_tune` gets them built, so a
global Keras dtype policy set by `fine_tune` would come too late. Keras 3 layers
take a new `dtype_policy` after they are built instead: the variables stay
float32, and each call casts its inputs and reads its variables in the policy's
compute dtype. `mixed_precision` sets the resolved policy on every layer but the
`predictions` layer (its softmax or sigmoid stays in float32, and so does the
loss), trains, then puts every layer's own policy back: the trained model, its
`.keras` file and its SavedModel export compute in float32 as before, so mixed
precision is a training speed-up only, never a change to what is served.

Policies (`FineTuneConfig.mixed_precision`):

- None or "off": float32 (the default).
- "mixed_bfloat16": bfloat16 compute. Its float32-wide exponent needs no loss
  scaling. Fast on TPUs and on CPUs with bf16 instructions (`avx512_bf16`,
  `amx_bf16`); on other CPUs it is emulated and usually slower than float32.
- "mixed_float16": float16 compute, for GPUs; the optimizer is wrapped in
  `keras.optimizers.LossScaleOptimizer` so that small gradients do not
  underflow.
- "auto": "mixed_bfloat16" under a TPU strategy or on a CPU whose
  `/proc/cpuinfo` flags include bf16 instructions, "mixed_float16" when a GPU is
  visible, else float32. The choice is logged.
"""

import contextlib
import dataclasses
import os

import keras
import tensorflow as tf
from absl import logging

from tfxfer.errors import ConfigError
from tfxfer.models import layer_names

FLOAT32 = "float32"
BFLOAT16 = "mixed_bfloat16"
FLOAT16 = "mixed_float16"
SETTINGS = (None, "off", "auto", BFLOAT16, FLOAT16)
# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic.
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
_CPUINFO = "/proc/cpuinfo"


def check(mixed_precision) -> None:
    """Raises ConfigError unless `mixed_precision` is one of `SETTINGS`.

    Example:

    >>> check("auto")
    """
    # isinstance first: True == 1 and other non-strings must not match by equality.
    if (mixed_precision is None or isinstance(mixed_precision, str)) and mixed_precision in SETTINGS:
        return
    raise ConfigError(
        f"mixed_precision must be one of {list(SETTINGS)}: None or 'off' trains in float32, 'auto' picks "
        f"bfloat16 on TPUs and bf16-capable CPUs and float16 on GPUs. Received: mixed_precision={mixed_precision!r}")


def check_jit_compile(jit_compile) -> None:
    """Raises ConfigError unless `jit_compile` is a bool.

    Example:

    >>> check_jit_compile(True)
    """
    if not isinstance(jit_compile, bool):
        raise ConfigError(f"jit_compile must be True (compile the training steps with XLA) or False. "
                          f"Received: jit_compile={jit_compile!r}")


def check_xla(model: keras.Model) -> None:
    """Raises ConfigError if a layer of `model` cannot be XLA-compiled (Keras marks it `supports_jit=False`).

    Random image transforms (tfxfer's RandomAffine, Keras' RandomRotation, RandomZoom,
    ...) use an image transform op that XLA has no kernel for; failing here is
    better than failing after phase 1 has trained.

    Example:

    >>> check_xla(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    """
    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if not layer.supports_jit]
    if layers:
        names = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in layers)
        raise ConfigError(
            f"jit_compile=True needs every layer to compile with XLA, but Keras marks these as not compilable: "
            f"{names}. Pass jit_compile=False, or build the model without them (e.g. "
            f"build_image_classifier(..., augmentation=False); --noaugmentation in the image recipe). "
            f"Received: jit_compile=True")


def resolve(mixed_precision, strategy: tf.distribute.Strategy | None = None, *,
            cpu_flags: set[str] | None = None, gpus: list | None = None) -> str:
    """The Keras dtype policy name `mixed_precision` means here: "float32", "mixed_bfloat16" or "mixed_float16".

    Args:
        mixed_precision: None, "off", "auto", "mixed_bfloat16" or "mixed_float16".
        strategy: tf.distribute.Strategy. "auto" picks bfloat16 under a TPU strategy.
        cpu_flags: set of str. The CPU's feature flags; read from /proc/cpuinfo if None.
        gpus: list. The visible GPUs; `tf.config.list_physical_devices("GPU")` if None.

    Example:

    >>> resolve("auto", cpu_flags={"avx2", "avx512_bf16"}, gpus=[])
    'mixed_bfloat16'
    >>> resolve("auto", cpu_flags={"avx2"}, gpus=[])
    'float32'
    """
    check(mixed_precision)
    if mixed_precision in (None, "off"):
        return FLOAT32
    if mixed_precision != "auto":
        return mixed_precision
    if strategy is not None and is_tpu_strategy(strategy):
        policy, why = BFLOAT16, "a TPU strategy"
    elif (gpus if gpus is not None else tf.config.list_physical_devices("GPU")):
        policy, why = FLOAT16, "a GPU is visible"
    else:
        flags = cpu_flags if cpu_flags is not None else read_cpu_flags()
        bf16 = sorted(flags & set(_BF16_CPU_FLAGS))
        policy, why = ((BFLOAT16, f"the CPU has {', '.join(bf16)}") if bf16
                       else (FLOAT32, "no GPU or TPU, and the CPU reports no bf16 instructions"))
    logging.info("mixed_precision='auto' resolved to %s: %s.", policy, why)
    return policy


def read_cpu_flags(path: str = _CPUINFO) -> set[str]:
    """The feature flags of the first CPU in `path` (Linux /proc/cpuinfo); empty where there is no such file.

    Example:

    >>> "avx512_bf16" in read_cpu_flags("/no/such/file")
    False
    """
    if not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name.strip() == "flags":
                return set(value.split())
    return set()


def needs_loss_scaling(policy: str) -> bool:
    """Whether training under `policy` needs a `LossScaleOptimizer`: float16 only.

    Example:

    >>> needs_loss_scaling("mixed_float16"), needs_loss_scaling("mixed_bfloat16")
    (True, False)
    """
    return policy == FLOAT16


@contextlib.contextmanager
def mixed_precision(model: keras.Model, policy: str):
    """Within the block, every layer of `model` but its predictions computes under `policy`.

    Each layer's own policy is put back on exit, also when training fails, and
    the model's cached Keras `predict`/`evaluate` functions are dropped so that
    none traced in mixed precision outlives the block. With "float32" the model
    is left as it is.

    Args:
        model: keras.Model. Built; its variables stay float32 throughout.
        policy: str. A policy name from `resolve`.

    Example:

    ```python
    with precision.mixed_precision(model, "mixed_bfloat16"):
        loop.fit(train, epochs=3, steps=steps)   # bfloat16 compute
    model.predict(images)                        # float32 again
    ```
    """
    if policy == FLOAT32:
        yield
        return
    layers = _layers_to_cast(model)
    saved = [(layer, layer.dtype_policy) for layer in layers]
    mixed = keras.DTypePolicy(policy)
    try:
        for layer in layers:
            layer.dtype_policy = mixed
        yield
    finally:
        for layer, original in saved:
            layer.dtype_policy = original
        _drop_traced_functions(model)


@dataclasses.dataclass(frozen=True)
class Compute:
    """How `fine_tune` computes: the resolved dtype policy and whether XLA compiles the steps.

    Attributes:
        policy: str. "float32", "mixed_bfloat16" or "mixed_float16" (`resolve`).
        jit_compile: bool. XLA-compiled training and evaluation steps.

    Example:

    >>> Compute("mixed_bfloat16", jit_compile=True).describe()
    'compute mixed_bfloat16 (predictions float32), XLA-compiled steps'
    """

    policy: str = FLOAT32
    jit_compile: bool = False

    @classmethod
    def for_model(cls, model: keras.Model, mixed_precision, jit_compile) -> "Compute":
        """Checks a `FineTuneConfig`'s `mixed_precision` and `jit_compile` for `model`; resolves the policy.

        Raises:
            ConfigError: a `mixed_precision` outside `SETTINGS`, a `jit_compile`
                that is not a bool, or `jit_compile=True` for a model with
                layers XLA cannot compile (`check_xla`).
        """
        check(mixed_precision)
        check_jit_compile(jit_compile)
        if jit_compile:
            check_xla(model)
        return cls(resolve(mixed_precision, model.distribute_strategy), jit_compile)

    @property
    def loss_scaling(self) -> bool:
        """Whether the optimizer needs a `LossScaleOptimizer` (`needs_loss_scaling`)."""
        return needs_loss_scaling(self.policy)

    def describe(self) -> str:
        """How the logs say what precision and compilation a phase trains with."""
        compute = "float32" if self.policy == FLOAT32 else f"{self.policy} (predictions float32)"
        return f"compute {compute}, {'XLA-compiled' if self.jit_compile else 'graph'} steps"


def _layers_to_cast(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of `model` (nested ones too, the model itself included) except the predictions
    layer, whose output and activation must stay float32 for a stable loss."""
    layers = model._flatten_layers(include_self=True, recursive=True)
    return [layer for layer in layers if not layer_names.is_predictions(layer.name)]


def _drop_traced_functions(model: keras.Model) -> None:
    # Keras caches its traced train/test/predict functions; one traced in mixed
    # precision would keep computing in it after the policies are restored.
    for name in ("train_function", "test_function", "predict_function"):
        if hasattr(model, name):
            setattr(model, name, None)


def is_tpu_strategy(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` runs on TPUs, which compute in bfloat16 and compile every step with XLA.

    Example:

    >>> is_tpu_strategy(tf.distribute.get_strategy())
    False
    """
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))
