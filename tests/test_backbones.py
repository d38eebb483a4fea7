"""Tests for tfxfer.models.backbones: registry, preprocessing layer and custom backbones.

Everything builds with `weights=None` at tiny input sizes; nothing downloads.
"""

import gc
import logging
import os
import pathlib
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxfer.errors import ConfigError, MissingFileError, UserError
from tfxfer.models.backbones import (
    BackbonePreprocessing,
    BackboneSpec,
    ImageNetWeightsUnavailableError,
    backbone_from_model,
    create_backbone,
    get_backbone_spec,
    list_backbones,
)
from tfxfer.models.image_classifier import build_image_classifier, resolve_image_size

SHARED_DIR = pathlib.Path(os.environ.get("TFXFER_SHARED", pathlib.Path(__file__).parents[2] / "shared"))
SHARED_MOBILENET_V2_WEIGHTS = SHARED_DIR / "weights" / "mobilenet_v2_0.35_224_no_top.weights.h5"

# Channels of the last feature map, from the architectures' papers/keras sources;
# a wrong constructor behind a name shows up here.
EXPECTED_CHANNELS = {
    "convnext_base": 1024, "convnext_large": 1536, "convnext_small": 768,
    "convnext_tiny": 768, "convnext_xlarge": 2048,
    "densenet121": 1024, "densenet169": 1664, "densenet201": 1920,
    "efficientnet_b0": 1280, "efficientnet_b1": 1280, "efficientnet_b2": 1408,
    "efficientnet_b3": 1536, "efficientnet_b4": 1792, "efficientnet_b5": 2048,
    "efficientnet_b6": 2304, "efficientnet_b7": 2560,
    "efficientnet_v2_b0": 1280, "efficientnet_v2_b1": 1280, "efficientnet_v2_b2": 1408,
    "efficientnet_v2_b3": 1536, "efficientnet_v2_s": 1280, "efficientnet_v2_m": 1280,
    "efficientnet_v2_l": 1280,
    "inception_resnet_v2": 1536, "inception_v3": 2048,
    "mobilenet": 1024, "mobilenet_v2": 1280, "mobilenet_v3_large": 960, "mobilenet_v3_small": 576,
    "nasnet_large": 4032, "nasnet_mobile": 1056,
    "resnet50": 2048, "resnet101": 2048, "resnet152": 2048,
    "resnet50_v2": 2048, "resnet101_v2": 2048, "resnet152_v2": 2048,
    "vgg16": 512, "vgg19": 512, "xception": 2048,
}


def _images(shape=(2, 8, 8, 3), seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _square(size):
    return (size, size, 3)


def _assert_same_weights(model_a, model_b):
    weights_a, weights_b = model_a.get_weights(), model_b.get_weights()
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


# --- registry -------------------------------------------------------------------------


def test_registry_covers_every_keras_application():
    applications = {
        getattr(keras.applications, name)
        for name in dir(keras.applications)
        if name[0].isupper() and callable(getattr(keras.applications, name))
    }
    registered = {get_backbone_spec(name).constructor for name in list_backbones()}
    assert registered == applications


def test_registry_names_match_their_constructors():
    for name in list_backbones():
        constructor = get_backbone_spec(name).constructor
        assert constructor.__name__.lower() == name.replace("_", "")


def test_preprocessing_modes_match_keras_preprocess_input():
    images = _images((2, 4, 4, 3))
    for name in list_backbones():
        spec = get_backbone_spec(name)
        family_module = spec.constructor.__module__.rsplit(".", 1)[-1]
        expected = getattr(keras.applications, family_module).preprocess_input(images.copy())
        actual = BackbonePreprocessing(spec.preprocessing)(images)
        np.testing.assert_allclose(actual, expected, atol=1e-5, err_msg=name)


def test_spec_sizes():
    assert get_backbone_spec("efficientnet_b3").pretrained_image_size == 300
    assert get_backbone_spec("xception").pretrained_image_size == 299
    assert get_backbone_spec("nasnet_large").pretrained_image_size == 331
    assert get_backbone_spec("efficientnet_v2_s").pretrained_image_size == 384
    assert get_backbone_spec("xception").min_image_size == 71
    assert get_backbone_spec("inception_v3").min_image_size == 75
    assert get_backbone_spec("resnet50").min_image_size == 32


@pytest.mark.parametrize("name, pretrained, default", [
    ("mobilenet_v2", 224, 320), ("efficientnet_b1", 240, 352), ("efficientnet_b3", 300, 416),
    ("xception", 299, 416), ("nasnet_large", 331, 480), ("efficientnet_v2_s", 384, 544)])
def test_default_size_is_ten_sevenths_of_the_pretraining_size_to_a_multiple_of_32(name, pretrained, default):
    spec = get_backbone_spec(name)
    assert (spec.pretrained_image_size, spec.default_image_size) == (pretrained, default)


def test_every_default_size_is_a_multiple_of_32_above_the_pretraining_size():
    for name in list_backbones():
        spec = get_backbone_spec(name)
        assert spec.default_image_size % 32 == 0, name
        assert 1.3 < spec.default_image_size / spec.pretrained_image_size < 1.5, name


def test_spec_is_frozen():
    spec = get_backbone_spec("mobilenet_v2")
    assert isinstance(spec, BackboneSpec) and spec.supports_alpha
    with pytest.raises(Exception):
        spec.name = "other"


def test_list_backbones_sorted_and_filtered():
    names = list_backbones()
    assert names == sorted(names) and len(names) == 40
    assert list_backbones("efficientnet_v2_*") == [
        "efficientnet_v2_b0", "efficientnet_v2_b1", "efficientnet_v2_b2", "efficientnet_v2_b3",
        "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s",
    ]
    assert list_backbones("ConvNeXt_T*") == ["convnext_tiny"]
    assert list_backbones("nothing*") == []


def test_unknown_name_lists_valid_names_and_close_matches():
    expected = r"Did you mean 'mobilenet_v2'.*Expected one of:.*resnet50_v2.*Received: name='MobileNetV2'"
    with pytest.raises(ValueError, match=expected):
        get_backbone_spec("MobileNetV2")
    with pytest.raises(ValueError, match=r"Expected one of: convnext_base, .*xception\. Received: name='bert'"):
        create_backbone("bert", weights=None)


def test_unknown_name_is_a_user_error():
    # recipes/cli.py shows UserErrors as a message without a traceback.
    with pytest.raises(ConfigError, match=r"Unknown backbone\..*Received: name='mobilenetv2'") as info:
        get_backbone_spec("mobilenetv2")
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def test_a_legacy_h5_model_file_given_as_a_backbone_is_told_to_be_saved_as_keras():
    with pytest.raises(ConfigError, match=r"Unknown backbone\. A model of your own is read from a \.keras file "
                                          r"\(tfxfer\.backbone_from_model; the recipes' --backbone\): load this one "
                                          r"with keras\.models\.load_model and save it again with "
                                          r"model\.save\('backbone\.keras'\)\. Expected one of: .*"
                                          r"Received: name='models/mine\.h5'"):
        get_backbone_spec("models/mine.h5")


# --- image sizes -----------------------------------------------------------------------


@pytest.mark.parametrize("name, too_small, minimum", [
    ("mobilenet_v2", 16, 32), ("resnet50", 31, 32), ("xception", 70, 71), ("inception_v3", 74, 75),
])
def test_resolve_image_size_rejects_sizes_below_the_family_minimum(name, too_small, minimum):
    expected = rf"'{name}' needs inputs of at least {minimum}x{minimum} pixels.*Received: input_shape=\({too_small}, "
    with pytest.raises(ConfigError, match=expected):
        resolve_image_size(name, too_small)
    assert resolve_image_size(name, minimum) == minimum


@pytest.mark.parametrize("name", ["mobilenet", "mobilenet_v2", "mobilenet_v3_small", "xception", "inception_v3"])
def test_registry_minimums_are_keras_minimums(name):
    # One pixel less is what keras.applications itself refuses.
    spec = get_backbone_spec(name)
    side = spec.min_image_size - 1
    with pytest.raises(ValueError, match=rf"at least {spec.min_image_size}x{spec.min_image_size}"):
        spec.constructor(include_top=False, weights=None, input_shape=(side, side, 3))


def test_resolve_image_size_defaults_to_the_backbone_and_keeps_a_pair():
    assert resolve_image_size("efficientnet_b3") == 416
    assert resolve_image_size("mobilenet_v2", (32, 48)) == (32, 48)
    with pytest.raises(ConfigError, match=r"Received: input_shape=\(16, 48, 3\)"):
        resolve_image_size("mobilenet_v2", (16, 48))
    with pytest.raises(ConfigError, match=r"Unknown backbone"):
        resolve_image_size("mobilenetv2", 96)


def test_resolve_image_size_of_your_own_model_must_be_its_input_size():
    model = keras.Model(*(lambda x: (x, keras.layers.Conv2D(2, 3)(x)))(keras.Input((40, 40, 3))))
    assert resolve_image_size(model) == 40
    assert resolve_image_size(model, 40) == 40
    with pytest.raises(ConfigError, match=r"takes \(40, 40\) images; image_size must match.*Received: image_size=64"):
        resolve_image_size(model, 64)


# --- create_backbone ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, input_shape, alpha, channels",
    [
        ("mobilenet_v2", (32, 32, 3), 0.35, 1280),
        ("mobilenet", (32, 48, 3), 0.25, 256),
        ("efficientnet_b0", (32, 32, 3), None, 1280),
        ("resnet50", (32, 32, 3), None, 2048),
        ("xception", (71, 71, 3), None, 2048),
    ],
)
def test_create_backbone_builds_named_feature_map(name, input_shape, alpha, channels):
    model = create_backbone(name, input_shape=input_shape, weights=None, alpha=alpha)
    assert model.name == "backbone"
    assert model.input_shape == (None, *input_shape)
    assert len(model.output_shape) == 4 and model.output_shape[-1] == channels
    features = model(_images((1, *input_shape)))
    assert features.shape[-1] == channels and np.all(np.isfinite(features))


def test_create_backbone_defaults_to_the_imagenet_size():
    model = create_backbone("mobilenet", weights=None, alpha=0.25)
    assert model.input_shape == (None, 224, 224, 3)


def test_alpha_rejected_for_families_without_it():
    expected = r"'resnet50' has no width multiplier alpha; only mobilenet, mobilenet_v2, .*Received: alpha=0.5"
    with pytest.raises(ValueError, match=expected):
        create_backbone("resnet50", weights=None, alpha=0.5)


def test_alpha_must_be_positive():
    with pytest.raises(ValueError, match=r"positive number.*Received: alpha=-1"):
        create_backbone("mobilenet_v2", weights=None, alpha=-1)


def test_input_below_min_size_names_the_minimum():
    expected = r"'xception' needs inputs of at least 71x71.*Received: input_shape=\(64, 64, 3\)"
    with pytest.raises(ValueError, match=expected):
        create_backbone("xception", input_shape=(64, 64, 3), weights=None)
    with pytest.raises(ValueError, match=r"at least 32x32"):
        create_backbone("mobilenet_v2", input_shape=(16, 96, 3), weights=None)


def test_input_shape_must_be_three_integers():
    with pytest.raises(ValueError, match=r"three integers.*Received: input_shape=\(96, 96\)"):
        create_backbone("mobilenet_v2", input_shape=(96, 96), weights=None)


@pytest.mark.parametrize(
    "name, alpha", [("mobilenet_v2", 0.35), ("efficientnet_b0", None)],
)
def test_weights_from_path_round_trip(tmp_path, name, alpha):
    source = create_backbone(name, input_shape=(32, 32, 3), weights=None, alpha=alpha)
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    keras.utils.set_random_seed(99)  # So equal weights cannot come from equal seeds.
    loaded = create_backbone(name, input_shape=(32, 32, 3), weights=path, alpha=alpha)
    assert loaded.name == "backbone"
    _assert_same_weights(source, loaded)


def test_weights_from_a_plain_keras_application_load_into_the_renamed_backbone(tmp_path):
    # Files made outside tfxfer come from models with keras' own names.
    source = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35, input_shape=(32, 32, 3))
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    loaded = create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=str(path), alpha=0.35)
    _assert_same_weights(source, loaded)


def test_legacy_h5_weights_load(tmp_path):
    # keras' own ImageNet files are legacy .h5; keras 3 only writes them through
    # its legacy module, hence the private import.
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    source = create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=None, alpha=0.35)
    path = tmp_path / "mobilenet_v2_no_top.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    loaded = create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=path, alpha=0.35)
    _assert_same_weights(source, loaded)


def _normalization_output(model):
    normalization = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    return keras.Model(model.input, normalization.output)


def test_efficientnet_imagenet_file_by_path_scales_like_imagenet(tmp_path):
    # The official EfficientNet files store the ImageNet stddev as the variance
    # of the input Normalization; keras corrects that only for "imagenet".
    source = create_backbone("efficientnet_b0", input_shape=(32, 32, 3), weights=None)
    normalization = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    normalization.adapt_mean.assign([0.485, 0.456, 0.406])
    normalization.adapt_variance.assign([0.229, 0.224, 0.225])
    official = tmp_path / "official.weights.h5"
    source.save_weights(official)

    loaded = create_backbone("efficientnet_b0", input_shape=(32, 32, 3), weights=official)
    images = _images((1, 32, 32, 3))
    torch_mode = keras.applications.imagenet_utils.preprocess_input(images.copy(), mode="torch")
    np.testing.assert_allclose(_normalization_output(loaded)(images), torch_mode, atol=1e-5)

    # Saving the corrected model and loading it again must not correct twice.
    resaved = tmp_path / "fine_tuned.weights.h5"
    loaded.save_weights(resaved)
    reloaded = create_backbone("efficientnet_b0", input_shape=(32, 32, 3), weights=resaved)
    np.testing.assert_allclose(_normalization_output(reloaded)(images), torch_mode, atol=1e-5)


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(FileNotFoundError, match="nope.weights.h5") as info:
        create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=missing, alpha=0.35)
    assert isinstance(info.value, MissingFileError)


def test_weights_file_of_another_width_names_the_file_the_architecture_and_the_fix(tmp_path):
    path = tmp_path / "mobilenet_v2_1.0.weights.h5"
    source = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=1.0, input_shape=(32, 32, 3))
    source.save_weights(path)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ConfigError) as info:
        warnings.simplefilter("always")
        create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=path, alpha=0.35)
    # Keras warns about every part it found no weights for before it raises; the error says it all.
    assert [str(warning.message) for warning in caught] == []
    message = str(info.value)
    assert f"The weights file {str(path)!r} does not fit backbone 'mobilenet_v2'" in message
    assert "keras.applications.MobileNetV2, alpha=0.35, include_top=False" in message
    assert "--backbone, --alpha in the recipes" in message and "weights=None" in message
    assert "variable.shape=(3, 3, 3, 16), Received: value.shape=(3, 3, 3, 32)" in message  # keras' reason, cut short
    assert len(message) < 1200
    assert message.endswith(f"Received: weights={str(path)!r}")


def test_a_weights_file_that_loads_passes_keras_warnings_on(tmp_path, monkeypatch):
    loaded = []

    def load_weights(self, path):
        warnings.warn("a warning of a load that worked", UserWarning)
        loaded.append(os.fspath(path))

    path = tmp_path / "any.weights.h5"
    path.write_bytes(b"")  # never read: load_weights is replaced
    monkeypatch.setattr(keras.Model, "load_weights", load_weights)
    with pytest.warns(UserWarning, match="a warning of a load that worked"):
        create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=path)
    assert loaded == [os.fspath(path)]


def test_weights_file_of_another_architecture_is_a_config_error(tmp_path):
    path = tmp_path / "resnet50.weights.h5"
    create_backbone("resnet50", input_shape=(32, 32, 3), weights=None).save_weights(path)
    with pytest.raises(ConfigError, match=r"resnet50\.weights\.h5' does not fit backbone 'mobilenet_v2' "
                                          r"\(keras\.applications\.MobileNetV2, alpha=1\.0, include_top=False\)"):
        create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=path)


def test_legacy_h5_weights_of_another_width_is_a_config_error(tmp_path):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    path = tmp_path / "mobilenet_v2_no_top.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(
            f, create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=None, alpha=1.0))
    with pytest.raises(ConfigError, match=r"does not fit backbone 'mobilenet_v2'.*Keras reported: Shape mismatch"):
        create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=path, alpha=0.35)


def test_weights_file_that_is_not_hdf5_is_a_config_error(tmp_path):
    path = tmp_path / "notes.weights.h5"
    path.write_text("not weights")
    with pytest.raises(ConfigError, match=r"or is not a Keras weights file.*Received: weights='.*notes\.weights\.h5'"):
        create_backbone("resnet50", input_shape=(32, 32, 3), weights=path)


@pytest.mark.parametrize(
    "weights, match",
    [
        ("imagenet21k", r"\.weights\.h5.*Received: weights='imagenet21k'"),
        ("model.keras", r"backbone_from_model"),
        (3, r"Received: weights=3"),
    ],
)
def test_invalid_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        create_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=weights)


def _go_offline(monkeypatch):
    # keras.applications call `file_utils.get_file` through the module, so
    # patching `keras.utils.get_file` (another binding) would not reach them.
    # Offline, keras turns the URLError into this bare Exception.
    from keras.src.utils import file_utils

    def offline_get_file(fname=None, origin=None, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline_get_file)


def test_offline_imagenet_says_how_to_pass_a_local_file(monkeypatch):
    _go_offline(monkeypatch)
    with pytest.raises(ImageNetWeightsUnavailableError) as info:
        create_backbone("mobilenet_v2", input_shape=(96, 96, 3), alpha=0.35)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, UserError)
    assert "ImageNet weights of backbone 'mobilenet_v2' could not be downloaded" in message
    assert "~/.keras/models" in message
    assert 'weights="/path/to/<file>.weights.h5"' in message
    assert "--weights=/path/to/" in message
    assert "URL fetch failure" in message


def test_keras_argument_errors_are_not_reported_as_offline(monkeypatch):
    _go_offline(monkeypatch)
    with pytest.raises(ValueError, match="alpha can be one of"):
        create_backbone("mobilenet_v3_small", input_shape=(32, 32, 3), alpha=0.5)


def test_lora_on_a_registry_backbone_is_refused_from_its_name_as_fine_tune_refuses_it():
    from tfxfer.models.backbones import registry
    from tfxfer.training import lora

    with pytest.raises(ConfigError) as from_name:
        registry.check_lora("mobilenet_v2", 8)
    model = build_image_classifier("mobilenet_v2", 3, weights=None, image_size=32, alpha=0.35, augmentation=False)
    with pytest.raises(ConfigError) as from_model:
        lora.target_layers(model, 0.5, 8)
    assert str(from_name.value) == str(from_model.value)
    assert str(from_name.value).endswith("Received: lora_rank=8, backbone='mobilenet_v2'")
    # LoRA off, or a backbone the registry does not build (your own model, a keras-hub one): left to the model.
    for name, rank in [("mobilenet_v2", None), ("own.keras", 8), ("bert_tiny_en_uncased", 4)]:
        registry.check_lora(name, rank)


def test_imagenet_weights_at_the_default_size_build_without_keras_warning_of_the_size(tmp_path, monkeypatch):
    # Keras' MobileNets warn that their 224 weights will be loaded at any size they have no file for, such as
    # tfxfer's default 320: what tfxfer means to do (without the top, the weights fit any size).
    from keras.src.utils import file_utils

    source = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35, input_shape=(32, 32, 3))
    path = tmp_path / "imagenet.weights.h5"
    source.save_weights(path)
    fetched = []

    def cached_get_file(fname=None, origin=None, **kwargs):  # as if keras had the file in ~/.keras/models
        fetched.append(fname)
        return str(path)

    monkeypatch.setattr(file_utils, "get_file", cached_get_file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backbone = create_backbone("mobilenet_v2", input_shape=(320, 320, 3), alpha=0.35, weights="pretrained")
    assert fetched == ["mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"]
    assert backbone.input_shape == (None, 320, 320, 3)
    _assert_same_weights(source, backbone)
    assert [str(warning.message) for warning in caught if "input_shape" in str(warning.message)] == []
    # Only that call is quiet: the filter is not left behind. Keras' "imagenet" weights come from the generated
    # file above (get_file is still replaced), never from the internet.
    with pytest.warns(UserWarning, match="undefined or non-square"):
        keras.applications.MobileNetV2(include_top=False, weights="imagenet", alpha=0.35, input_shape=(64, 64, 3))
    assert fetched == ["mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"] * 2


@pytest.mark.shared
@pytest.mark.skipif(not SHARED_MOBILENET_V2_WEIGHTS.exists(), reason=f"needs {SHARED_MOBILENET_V2_WEIGHTS}")
def test_real_imagenet_weights_file_loads():
    backbone = create_backbone("mobilenet_v2", alpha=0.35, weights=SHARED_MOBILENET_V2_WEIGHTS)
    reference = keras.applications.MobileNetV2(
        alpha=0.35, include_top=False, input_shape=(224, 224, 3), weights=str(SHARED_MOBILENET_V2_WEIGHTS)
    )
    _assert_same_weights(reference, backbone)


@pytest.mark.slow
def test_every_backbone_builds_a_classifier_at_its_min_size():
    for name in list_backbones():
        spec = get_backbone_spec(name)
        # Variables are created but never initialized: the check is about the
        # graph, and skipping initialization makes this test ~3x cheaper.
        with keras.StatelessScope(initialize_variables=False):
            classifier = build_image_classifier(
                name, 3, weights=None, image_size=spec.min_image_size, augmentation=False)
        model = classifier.get_layer("backbone")
        assert len(model.output_shape) == 4, name
        assert model.output_shape[-1] == EXPECTED_CHANNELS[name], name
        assert classifier.output_shape == (None, 3), name
        assert classifier.get_layer("preprocessing").mode == spec.preprocessing, name
        del classifier
        del model
        keras.backend.clear_session()
        gc.collect()


# --- BackbonePreprocessing ------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, family",
    [
        ("tf", keras.applications.mobilenet_v2),
        ("torch", keras.applications.densenet),
        ("caffe", keras.applications.resnet50),
        ("none", keras.applications.efficientnet),
    ],
)
def test_preprocessing_matches_preprocess_input(mode, family):
    images = _images()
    np.testing.assert_allclose(
        BackbonePreprocessing(mode)(images), family.preprocess_input(images.copy()), atol=1e-5
    )


def test_preprocessing_tf_mode_range():
    images = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    np.testing.assert_allclose(BackbonePreprocessing("tf")(images), [[[[-1.0, 0.0, 1.0]]]])


def test_preprocessing_unknown_mode():
    with pytest.raises(ValueError, match=r"tf, torch, caffe, none.*Received: mode='inception'"):
        BackbonePreprocessing("inception")


def test_preprocessing_config_round_trip():
    layer = BackbonePreprocessing("caffe", name="preprocessing")
    restored = BackbonePreprocessing.from_config(layer.get_config())
    assert restored.mode == "caffe" and restored.name == "preprocessing"


def test_preprocessing_survives_keras_file(tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, BackbonePreprocessing("torch", name="preprocessing")(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.get_layer("preprocessing"), BackbonePreprocessing)
    images = _images()
    np.testing.assert_allclose(restored(images), model(images), atol=1e-6)


def test_preprocessing_exports_to_saved_model(tmp_path):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, BackbonePreprocessing("caffe")(inputs))
    model.export(str(tmp_path / "export"), format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "export"))
    images = _images((1, 5, 7, 3))
    np.testing.assert_allclose(served.serve(images), model(images), atol=1e-5)


# --- backbone_from_model --------------------------------------------------------------


def _task_a_model(name="task_a"):
    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def test_backbone_from_model_cut_at_layer_shares_weights():
    source = _task_a_model()
    backbone = backbone_from_model(source, output_layer="conv")
    assert backbone.name == "backbone"
    assert backbone.output_shape == (None, 6, 6, 4)
    assert backbone.get_layer("conv") is source.get_layer("conv")
    assert source.name == "task_a"  # The source model is left as it was.


def test_backbone_from_model_whole_model_is_a_feature_vector():
    backbone = backbone_from_model(_task_a_model())
    assert backbone.name == "backbone" and backbone.output_shape == (None, 2)


def test_backbone_from_a_whole_classifier_warns_that_its_features_are_class_scores(caplog):
    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.Conv2D(4, 3, name="conv")(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(x))
    with caplog.at_level(logging.WARNING, logger="absl"):
        backbone_from_model(classifier)
    assert ("The backbone's features are the softmax scores of its last layer, 'probabilities' (2 values): the new "
            "head would read another task's probabilities. Pass output_layer= (recipes: --backbone_output_layer) with "
            "the layer before the old head, e.g. one of ['conv', 'pool']. Received: output_layer=None") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="absl"):
        backbone_from_model(classifier, output_layer="pool")
        backbone_from_model(_task_a_model())  # logits without an activation: features a head can read
    assert "scores" not in caplog.text


def test_backbone_from_keras_file(tmp_path):
    source = _task_a_model()
    path = tmp_path / "task_a.keras"
    source.save(path)
    backbone = backbone_from_model(path, output_layer="pool")
    assert backbone.name == "backbone" and backbone.output_shape == (None, 4)
    images = _images((2, 8, 8, 3))
    cut_source = keras.Model(source.input, source.get_layer("pool").output)
    np.testing.assert_allclose(backbone(images), cut_source(images), atol=1e-6)


def test_backbone_from_model_unknown_layer_lists_layers():
    expected = (
        r"no layer named 'pooll'\. Did you mean 'pool'\? "
        r"Its layers: images, conv, pool, logits\. Received: output_layer='pooll'"
    )
    with pytest.raises(ValueError, match=expected):
        backbone_from_model(_task_a_model(), output_layer="pooll")


def test_backbone_from_model_long_layer_list_is_truncated():
    inputs = keras.Input((4,))
    x = inputs
    for index in range(60):
        x = keras.layers.Dense(2, name=f"dense_{index}")(x)
    with pytest.raises(ValueError, match=r"dense_8, \.\.\. \(\d+ more\) \.\.\., dense_40") as info:
        backbone_from_model(keras.Model(inputs, x), output_layer="missing")
    assert "dense_20," not in str(info.value)


def test_backbone_from_model_bad_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.keras file.*Received: model='.*task_a\.h5'"):
        backbone_from_model(tmp_path / "task_a.h5")


def test_backbone_from_model_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        backbone_from_model(tmp_path / "missing.keras")


def test_backbone_from_model_rejects_non_feature_output():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Reshape((36, 4), name="tokens")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    expected = r"pick another output_layer\. Received: output_layer='tokens' with output shape \(None, 36, 4\)"
    with pytest.raises(ValueError, match=expected):
        backbone_from_model(model, output_layer="tokens")


def test_backbone_from_model_rejects_other_types():
    with pytest.raises(TypeError, match="Received: model of type int"):
        backbone_from_model(3)


def test_backbone_from_a_classifier_with_a_nested_backbone():
    # The task-A model tfxfer builds nests its backbone as a layer named "backbone".
    inner = backbone_from_model(_task_a_model(), output_layer="conv")
    inputs = keras.Input((8, 8, 3))
    features = inner(BackbonePreprocessing("tf", name="preprocessing")(inputs))
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(features))
    classifier = keras.Model(inputs, outputs, name="task_a_classifier")
    backbone = backbone_from_model(classifier, output_layer="backbone")
    assert backbone.name == "backbone" and backbone.output_shape == (None, 6, 6, 4)
    images = _images((1, 8, 8, 3))
    np.testing.assert_allclose(backbone(images), inner(BackbonePreprocessing("tf")(images)), atol=1e-6)
