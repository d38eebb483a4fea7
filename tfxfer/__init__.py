"""tfxfer: transfer learning for Keras 3 and TensorFlow.

Pretrained backbone in, two-phase fine-tuning, TF Serving-ready SavedModel out:

```python
import tfxfer
data = tfxfer.load_image_folders("photos/", image_size=(320, 320), validation_split=0.2)  # mobilenet_v2's default size
model = tfxfer.build_image_classifier("mobilenet_v2", num_classes=len(data.class_names))
result = tfxfer.fine_tune(model, data.train, data.validation)
tfxfer.export_saved_model(model, "saved_models/photos", class_names=data.class_names)
```

The names below are imported on first use (PEP 562), not with the package: a
module that needs only TensorFlow, such as `tfxfer.prediction`, must not pay
for keras-hub, TFDS or the training code because its package's `__init__` ran.
Only the model types are imported with the package, for `keras.models.load_model`.
"""

import importlib

from tfxfer.version import __version__

# Imported with the package, not on first use: `keras.models.load_model` finds a
# saved classifier's type only once its module has registered it with Keras.
# Neither module loads keras-hub, TFDS or the training code.
from tfxfer.models.classifier import Classifier  # isort: skip
from tfxfer.models.image_classifier import ImageClassifier  # isort: skip
from tfxfer.models.text_classifier import TextClassifier  # isort: skip

# Public name -> the module that defines it.
_EXPORTS = {
    "BackbonePreprocessing": "tfxfer.models.backbones",
    "DistillResult": "tfxfer.training.distillation",
    "DistillationLoss": "tfxfer.training.distillation_loss",
    "BackboneSpec": "tfxfer.models.backbones",
    "FineTuneConfig": "tfxfer.defaults",
    "FineTuneResult": "tfxfer.training.results",
    "HeadKind": "tfxfer.tasks",
    "LearningRateSweep": "tfxfer.training.lr_finder",
    "ImageDatasets": "tfxfer.data",
    "PhaseResult": "tfxfer.training.results",
    "RandomAffine": "tfxfer.models.augmentation",
    "Task": "tfxfer.tasks",
    "TextBackbone": "tfxfer.models.backbones",
    "TextDatasets": "tfxfer.data.text_data",
    "TuneResult": "tfxfer.tuning.search",
    "augment_texts": "tfxfer.data.text_augmentation",
    "backbone_from_model": "tfxfer.models.backbones",
    "build_image_classifier": "tfxfer.models.image_classifier",
    "build_text_classifier": "tfxfer.models.text_classifier",
    "chief_or_temp_dir": "tfxfer.distribute",
    "classification_report": "tfxfer.evaluation.metrics",
    "create_backbone": "tfxfer.models.backbones",
    "create_strategy": "tfxfer.distribute",
    "default_image_augmentation": "tfxfer.models.augmentation",
    "default_image_size": "tfxfer.models.image_classifier",
    "distill": "tfxfer.training.distillation",
    "evaluate_export": "tfxfer.evaluation.exported_model",
    "evaluate_model": "tfxfer.evaluation.keras_model",
    "export_saved_model": "tfxfer.export.saved_model",
    "export_tflite": "tfxfer.export.tflite",
    "find_learning_rate": "tfxfer.training.lr_finder",
    "fine_tune": "tfxfer.training.engine",
    "format_report": "tfxfer.evaluation.report_text",
    "freeze_backbone": "tfxfer.training.freezing",
    "get_backbone_spec": "tfxfer.models.backbones",
    "global_batch_size": "tfxfer.distribute",
    "is_chief": "tfxfer.distribute",
    "latest_version_dir": "tfxfer.export.versioning",
    "list_backbones": "tfxfer.models.backbones",
    "list_strategies": "tfxfer.distribute",
    "load_hub_backbone": "tfxfer.models.backbones",
    "load_image_csv": "tfxfer.data.image_csv",
    "load_image_folders": "tfxfer.data",
    "load_text_data": "tfxfer.data.text_data",
    "load_tfds_images": "tfxfer.data",
    "load_tfds_text": "tfxfer.data.text_tfds",
    "load_unlabelled_images": "tfxfer.data.unlabelled",
    "load_unlabelled_texts": "tfxfer.data.unlabelled",
    "load_word_vector_backbone": "tfxfer.models.backbones",
    "save_confusion_matrix": "tfxfer.reports.plots",
    "save_learning_rate_sweep": "tfxfer.reports.plots",
    "save_training_curves": "tfxfer.reports.plots",
    "scale_learning_rate": "tfxfer.distribute",
    "seed_everything": "tfxfer.reproducibility",
    "tune": "tfxfer.tuning.search",
    "unfreeze_top": "tfxfer.training.freezing",
}

__all__ = sorted([*_EXPORTS, "Classifier", "ImageClassifier", "TextClassifier", "__version__"])


def __getattr__(name):
    module_name = _EXPORTS.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(module_name), name)
        globals()[name] = value  # later lookups find it without coming here
        return value
    if not name.startswith("__"):
        # Sub-modules (`tfxfer.models`, `tfxfer.defaults`, ...) stay reachable as attributes
        # of the package, as they were when this file imported everything.
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise  # the sub-module exists but one of its own imports is missing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_EXPORTS})
