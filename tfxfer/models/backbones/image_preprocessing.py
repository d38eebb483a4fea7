"""`BackbonePreprocessing`: [0, 255] RGB images to what a pretrained backbone expects.

A layer rather than a `preprocess_input` call in the input pipeline, so that the
saved and exported model takes raw pixels and serving cannot forget the step.
"""

import keras
from keras import ops

# ImageNet statistics, exactly as keras.applications.imagenet_utils uses them.
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
MODES = ("tf", "torch", "caffe", "none")


@keras.saving.register_keras_serializable(package="tfxfer")
class BackbonePreprocessing(keras.layers.Layer):
    """Maps float RGB images in [0, 255] to the input range of a backbone.

    Gives the same numbers as `keras.applications.<family>.preprocess_input`
    for the family's mode (`BackboneSpec.preprocessing`), built from
    `keras.ops` only so that it traces into a SavedModel.

    Args:
        mode: str. `"tf"` (x / 127.5 - 1), `"torch"` (x / 255, then ImageNet
            mean/std per channel), `"caffe"` (RGB->BGR, then minus the ImageNet
            BGR means) or `"none"` (unchanged: the backbone rescales itself).
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> layer = tfxfer.BackbonePreprocessing("tf")  # x / 127.5 - 1
    >>> keras.ops.convert_to_numpy(layer(np.full((1, 1, 2, 3), 255.0, "float32")))
    array([[[[1., 1., 1.],
             [1., 1., 1.]]]], dtype=float32)
    """

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(
                f"mode must be one of {', '.join(MODES)} (see BackboneSpec.preprocessing). "
                f"Received: mode={mode!r}"
            )
        self.mode = mode

    def call(self, images):
        images = ops.cast(images, self.compute_dtype)
        if self.mode == "tf":
            return images / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, self.compute_dtype)
            std = ops.convert_to_tensor(_TORCH_STD, self.compute_dtype)
            return (images / 255.0 - mean) / std
        if self.mode == "caffe":
            bgr_mean = ops.convert_to_tensor(_CAFFE_BGR_MEAN, self.compute_dtype)
            return ops.flip(images, axis=-1) - bgr_mean
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config["mode"] = self.mode
        return config
