"""Names of the layers every tfxfer model has, so freezing, training and export find them."""

INPUTS = "images"
AUGMENTATION = "augmentation"
PREPROCESSING = "preprocessing"
BACKBONE = "backbone"
POOLER = "pooler"
DROPOUT = "dropout"
PREDICTIONS = "predictions"


def task_predictions(task: str) -> str:
    """The Dense layer of one task of a multi-task classifier (after the shared `dropout`)."""
    return f"{PREDICTIONS}_{task}"


def is_predictions(name: str) -> bool:
    """Whether a layer is a head's Dense layer: `predictions`, or a task's `predictions_<task>`."""
    return name == PREDICTIONS or name.startswith(f"{PREDICTIONS}_")
