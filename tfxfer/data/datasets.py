"""`Datasets`: what every loader returns, for image and text data alike.

`ImageDatasets` (`tfxfer.data.pipeline`) and `TextDatasets`
(`tfxfer.data.text_data`) extend it with only what is specific to their data,
so training, reports and exports read the same fields from either.

Multi-task data (`load_text_data(..., label_columns=[...])`, `load_image_csv`)
has the same fields with one entry per task: `class_names` and
`train_class_counts` are dicts `{task: [...]}`, the labels of each batch a dict
`{task: tensor}` (`tfxfer.tasks`), and `tasks` says what each task is.
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass
class Datasets:
    """Batched training and validation data for a classifier.

    Attributes:
        train: tf.data.Dataset. Batches of `(inputs, labels)`, reshuffled every
            epoch (seeded); its cardinality is known.
        validation: tf.data.Dataset | None. Batched like `train`, never
            shuffled. None when there is no validation data.
        class_names: list[str]. Label `i` means `class_names[i]`.
        train_size: int. Training examples.
        validation_size: int. Validation examples (0 when `validation` is None).
        train_class_counts: list[int]. Training examples per class, in
            `class_names` order (what `class_weight="balanced"` needs).
        tasks: dict[str, tfxfer.Task] | None. The tasks of multi-task data
            (what `build_*_classifier(tasks=...)` takes); None for one-head
            data. Then `class_names` is `{task: [names]}` and
            `train_class_counts` is `{task: [labelled training examples per class]}`.
        exact_copies: dict[str, int] | None. What the loader found of exact
            copies among the training examples (`tfxfer.data.exact_copies.report_copies`):
            `copies`, `copy_groups`, `groups_with_different_labels`, and
            `validation_copies_of_training` for a fixed validation set. None
            when the loader does not look.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: list[str]
    train_size: int
    validation_size: int
    train_class_counts: list[int]
    # Not a field here: the subclasses declare `tasks` as a keyword-only field.
    tasks = None
    # Keyword-only, so every loader's result keeps the six fields above first, in order.
    exact_copies: dict[str, int] | None = dataclasses.field(default=None, kw_only=True)

    def summary(self) -> dict:
        """JSON-ready facts about the data, for run reports and export metadata.

        Multi-task data adds `"tasks"`: `{task: {"head", "num_classes", "multi_label"}}`,
        and data a loader checked for copies `"exact_copies"` (the field's counts).
        """
        facts = {
            "class_names": self.class_names,
            "train_size": self.train_size,
            "validation_size": self.validation_size,
            "train_class_counts": self.train_class_counts,
        }
        if self.tasks:
            facts["tasks"] = {name: {"head": task.kind.value, "num_classes": task.num_classes,
                                     "multi_label": task.multi_label} for name, task in self.tasks.items()}
        if self.exact_copies is not None:
            facts["exact_copies"] = self.exact_copies
        return facts
