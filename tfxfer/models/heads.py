"""The classification head shared by every tfxfer model, and how to read it back.

Image and text classifiers end in the same layers, named so that freezing,
training and export can find them: `pooler` -> `dropout` -> `predictions`.
"""

import keras

from tfxfer.errors import ConfigError, is_real_number
from tfxfer.models import layer_names
# Defined below the models (data names tasks too); imported here, where every head reads them.
from tfxfer.tasks import HeadKind, head_kind_for

PREDICTIONS_LAYER = layer_names.PREDICTIONS


_POOLERS = {
    "avg": keras.layers.GlobalAveragePooling2D,
    "max": keras.layers.GlobalMaxPooling2D,
    "flatten": keras.layers.Flatten,
}


def classification_head(
    features: keras.KerasTensor,
    num_classes: int | None,
    *,
    multi_label: bool = False,
    dropout: float,
    pooling: str | None = "avg",
    tasks: dict | None = None,
) -> keras.KerasTensor | dict[str, keras.KerasTensor]:
    """Adds `pooler` (for 4D feature maps), `dropout` and `predictions` layers.

    Args:
        features: KerasTensor. Backbone output, `(N, H, W, C)` or `(N, C)`.
        num_classes: int. Number of classes; None with `tasks`.
        multi_label: bool. Sigmoid per class instead of softmax.
        dropout: float. Dropout rate before the Dense layer; 0 disables it.
            No default: each classifier passes its own (`tfxfer.defaults`).
        pooling: str. How a 4D feature map becomes a vector: `"avg"` or
            `"max"` global pooling, or `"flatten"`, which keeps where each
            feature is (for small maps of small inputs, where layout matters:
            a 4x4 map of a digit). 2D features are used as they are.
        tasks: dict. `{name: tfxfer.Task}` for a multi-task head: the pooler
            and dropout are shared, and each task gets its own Dense layer
            `predictions_<name>`; the output is then `{name: probabilities}`.
    """
    if tasks:
        x = _pooled_and_dropped(features, dropout, pooling)
        return {name: _dense(x, task.num_classes, task.kind, layer_names.task_predictions(name))
                for name, task in tasks.items()}
    kind = head_kind_for(num_classes, multi_label)
    return _dense(_pooled_and_dropped(features, dropout, pooling), num_classes, kind, PREDICTIONS_LAYER)


def _pooled_and_dropped(features, dropout, pooling):
    if not is_real_number(dropout) or not 0 <= dropout < 1:
        raise ConfigError("dropout is the share of features dropped before the Dense layer in training: a number "
                          f"from 0 (no dropout layer) up to, not including, 1. Received: dropout={dropout!r}")
    x = features
    if len(x.shape) == 4:
        if pooling not in _POOLERS:
            raise ConfigError(
                f"pooling must be one of {sorted(_POOLERS)} for a 4D feature map. "
                f"Received: pooling={pooling!r}"
            )
        x = _POOLERS[pooling](name=layer_names.POOLER)(x)
    elif len(x.shape) != 2:
        raise ConfigError(
            "The backbone must output a feature map (N, H, W, C) or a feature "
            f"vector (N, C). Received: shape={tuple(x.shape)}"
        )
    if dropout:
        x = keras.layers.Dropout(dropout, name=layer_names.DROPOUT)(x)
    return x


def _dense(x, num_classes, kind, name):
    units = 1 if kind is HeadKind.BINARY else num_classes
    activation = "softmax" if kind is HeadKind.MULTICLASS else "sigmoid"
    # float32 outputs keep probabilities exact under a future mixed-precision policy.
    return keras.layers.Dense(units, activation=activation, dtype="float32", name=name)(x)


def set_dropout(model: keras.Model, rate: float) -> None:
    """Sets the rate of the head's `dropout` layer, and the classifier's `dropout` setting with it.

    The layer reads its rate when a step is traced, so training steps made
    afterwards use the new rate. Hyperparameter search tries rates on one built
    model this way instead of building (and loading) the backbone again.

    Raises:
        ConfigError: the model has no `dropout` layer (built with `dropout=0`),
            or `rate` is not in `[0, 1)`.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ConfigError(f"A dropout rate must be in [0, 1), e.g. 0.2. Received: rate={rate!r}")
    try:
        layer = model.get_layer(layer_names.DROPOUT)
    except ValueError as error:
        raise ConfigError(
            f"The model has no {layer_names.DROPOUT!r} layer to set the rate of: build it with dropout > 0 "
            f"(e.g. dropout=0.2), or leave dropout out of the search. Received: model={model.name!r}"
        ) from error
    layer.rate = float(rate)
    if _knows_its_head(model) or getattr(model, "tasks", None):
        model.dropout = float(rate)  # saved in its config, as if it had been built with it


def head_kind(model: keras.Model) -> HeadKind:
    """The head kind of a model: a tfxfer classifier's from its config, any
    other model's read back from its `predictions` layer."""
    if _knows_its_head(model):
        return model.head_kind
    _refuse_several_heads(model)
    try:
        layer = model.get_layer(PREDICTIONS_LAYER)
    except ValueError as error:
        raise ConfigError(
            f"The model has no layer named {PREDICTIONS_LAYER!r}; build it with "
            "tfxfer.build_image_classifier (or name your output Dense layer "
            f"{PREDICTIONS_LAYER!r}). Received: model={model.name!r}"
        ) from error
    activation = getattr(layer.activation, "__name__", repr(layer.activation))
    if "softmax" in activation:
        return HeadKind.MULTICLASS
    if "sigmoid" in activation:
        return HeadKind.BINARY if layer.units == 1 else HeadKind.MULTILABEL
    raise ConfigError(
        f"The {PREDICTIONS_LAYER!r} layer must use softmax or sigmoid. "
        f"Received: activation={activation!r}"
    )


def num_classes(model: keras.Model) -> int:
    """Number of classes the model predicts (2 for a one-unit binary head)."""
    if _knows_its_head(model):
        return model.num_classes
    # head_kind first: it explains a missing `predictions` layer, get_layer alone does not.
    kind = head_kind(model)
    return 2 if kind is HeadKind.BINARY else model.get_layer(PREDICTIONS_LAYER).units


def _refuse_several_heads(model) -> None:
    tasks = getattr(model, "tasks", None)
    if tasks:
        raise ConfigError(
            f"This works on a one-head classifier, and the model has a head per task ({', '.join(tasks)}). "
            "Build one classifier per task for it, or use what takes multi-task models: fine_tune, "
            f"export_saved_model, evaluate_model. Received: model={model.name!r}")


def _knows_its_head(model) -> bool:
    # A tfxfer.Classifier carries its head in its config (duck-typed: classifier.py imports this module).
    return isinstance(getattr(model, "head_kind", None), HeadKind)
