"""`Classifier`: the model type of tfxfer, a backbone and a Dense head that save and reload whole.

Like keras-hub's `Task`, a classifier is a functional `keras.Model` built in
`__init__` from its parts (backbone, preprocessing, head settings). `get_config`
returns those parts and `from_config` calls `__init__` with them again, so
`model.save("m.keras")` and `keras.models.load_model("m.keras")` give back the
same model, and what it is (image or text, head kind, backbone name) is read
from its config rather than guessed from layer names.
"""

import keras

from tfxfer.errors import ConfigError
from tfxfer.models import heads
from tfxfer import tasks as tasks_lib

IMAGE = "image"
TEXT = "text"


class Classifier(keras.Model):
    """Base of `ImageClassifier` and `TextClassifier`; not built directly.

    Attributes:
        task: str. `"image"` or `"text"`: what the model takes and serves.
        backbone: keras.Model. The pretrained feature extractor (layer `"backbone"`).
        num_classes: int. Number of classes (2 for a one-unit binary head);
            None for a multi-task classifier.
        multi_label: bool. Independent sigmoid per class.
        head_kind: HeadKind. What the `predictions` layer computes; None for
            a multi-task classifier.
        tasks: dict | None. `{name: tfxfer.Task}` of a multi-task classifier,
            whose output is `{name: probabilities}` (`tfxfer.tasks`);
            None for one head.
        backbone_name: str. Which backbone this is, for metadata and logs.

    Example:

    ```python
    model = keras.models.load_model("flowers.keras")  # saved with model.save()
    if isinstance(model, tfxfer.Classifier):  # an ImageClassifier or a TextClassifier
        print(model.task, model.num_classes, model.head_kind, model.backbone_name)
    ```
    """

    task = None
    # Constructor arguments that are layers: serialised in `get_config`, rebuilt in `from_config`.
    LAYER_ARGUMENTS = ("backbone",)

    def __init__(self, *, inputs, features, backbone, num_classes, multi_label, pooling, dropout, backbone_name,
                 tasks=None, **kwargs):
        if (num_classes is None) == (tasks is None):
            raise ConfigError(
                "Pass num_classes for one head, or tasks for a head per task (e.g. tasks={'product': 12, "
                f"'priority': 3}}), not both. Received: num_classes={num_classes!r}, tasks={tasks!r}")
        tasks = tasks_lib.resolve_tasks(tasks) if tasks is not None else None
        if num_classes is not None:
            tasks_lib.head_kind_for(num_classes, multi_label)  # an int >= 2, or a ConfigError saying so
            num_classes = int(num_classes)  # a NumPy count (np.unique's, say) as Keras' units and JSON take it
        # Layers first, then the functional graph, then plain settings: the order keras-hub's tasks use,
        # which lets Keras track `backbone` as a layer and restore its weights by that path.
        self.backbone = backbone
        outputs = heads.classification_head(
            features, num_classes, multi_label=multi_label, dropout=dropout, pooling=pooling, tasks=tasks)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.pooling = pooling
        self.dropout = dropout
        self.backbone_name = backbone_name
        self.tasks = tasks
        self.head_kind = None if tasks else heads.head_kind_for(num_classes, multi_label)

    def get_config(self) -> dict:
        # Not chained to Functional.get_config: that describes the graph, and __init__ takes the parts.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "multi_label": self.multi_label,
            "pooling": self.pooling,
            "dropout": self.dropout,
            "backbone_name": self.backbone_name,
            "tasks": {name: task.get_config() for name, task in self.tasks.items()} if self.tasks else None,
        }

    def get_compile_config(self) -> None:
        # A saved classifier is the model, not a training run: `fine_tune` compiles it anew for
        # every phase (a new optimizer each time), so the optimizer and loss it last used are
        # not saved, and loading needs no training code. Compile a loaded model to `fit` it.
        return None

    @classmethod
    def from_config(cls, config: dict) -> "Classifier":
        config = dict(config)
        for key in cls.LAYER_ARGUMENTS:
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def describe_head(model: "Classifier") -> str:
    """`"5 classes (multiclass head)"`, or one such part per task of a multi-task classifier, for logs."""
    if model.tasks:
        return "tasks " + ", ".join(f"{name}: {task.num_classes} classes ({task.kind.value})"
                                    for name, task in model.tasks.items())
    return f"{model.num_classes} classes ({model.head_kind.value} head)"


def text_preprocessor(model: keras.Model) -> keras.Layer | None:
    """The string-to-token-ids step of a text classifier; None for any other model."""
    return model.preprocessor if isinstance(model, Classifier) and model.task == TEXT else None
