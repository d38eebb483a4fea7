"""tfxfer: transfer learning for Keras 3 and TensorFlow.

Pretrained backbone in, two-phase fine-tuning, TF Serving-ready SavedModel out:

```python
import tfxfer
data = tfxfer.load_image_folders("photos/", image_size=(224, 224), validation_split=0.2)
model = tfxfer.build_image_classifier("mobilenet_v2", num_classes=len(data.class_names))
result = tfxfer.fine_tune(model, data.train, data.validation)
tfxfer.export_saved_model(model, "saved_models/photos", class_names=data.class_names)
```
"""

__version__ = "0.1.0"

from tfxfer.augmentation import default_image_augmentation
from tfxfer.backbones import (
    BackbonePreprocessing,
    BackboneSpec,
    backbone_from_model,
    create_backbone,
    get_backbone_spec,
    list_backbones,
)
from tfxfer.data import ImageDatasets, load_image_folders, load_tfds_images
from tfxfer.data.text_data import TextDatasets, load_text_data
from tfxfer.data.text_tfds import load_tfds_text
from tfxfer.defaults import FineTuneConfig
from tfxfer.distribute import (
    chief_or_temp_dir,
    create_strategy,
    global_batch_size,
    is_chief,
    list_strategies,
    scale_learning_rate,
)
from tfxfer.export.saved_model import export_saved_model
from tfxfer.export.tflite import export_tflite
from tfxfer.flag_values import parse_fine_tune_at, parse_weights
from tfxfer.export.versioning import latest_version_dir
from tfxfer.freezing import freeze_backbone, unfreeze_top
from tfxfer.heads import HeadKind
from tfxfer.image_classifier import build_image_classifier, default_image_size
from tfxfer.reporting import write_metrics
from tfxfer.reproducibility import seed_everything
from tfxfer.text import TextBackbone, build_text_classifier, load_hub_backbone, load_word_vector_backbone
from tfxfer.training.engine import FineTuneResult, PhaseResult, fine_tune

__all__ = [
    "BackbonePreprocessing",
    "BackboneSpec",
    "FineTuneConfig",
    "FineTuneResult",
    "HeadKind",
    "ImageDatasets",
    "PhaseResult",
    "TextBackbone",
    "TextDatasets",
    "backbone_from_model",
    "build_image_classifier",
    "build_text_classifier",
    "chief_or_temp_dir",
    "create_backbone",
    "create_strategy",
    "default_image_augmentation",
    "default_image_size",
    "export_saved_model",
    "export_tflite",
    "fine_tune",
    "freeze_backbone",
    "get_backbone_spec",
    "global_batch_size",
    "is_chief",
    "latest_version_dir",
    "list_backbones",
    "list_strategies",
    "parse_fine_tune_at",
    "parse_weights",
    "scale_learning_rate",
    "seed_everything",
    "load_image_folders",
    "load_tfds_images",
    "load_tfds_text",
    "load_hub_backbone",
    "load_text_data",
    "load_word_vector_backbone",
    "unfreeze_top",
    "write_metrics",
]
