"""Tests for mixed precision and XLA in `fine_tune` (`tfxfer.training.precision`, `FineTuneConfig`).

The model is test_training's tiny conv backbone with a probe layer that records
the dtype of the features it sees each time it is traced, so the tests check
what the backbone really computed in, not only the policies it was given.
"""

import json
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from tfxfer.defaults import FineTuneConfig
from tfxfer.errors import ConfigError
from tfxfer.models.heads import HeadKind
from tfxfer.training import losses, lr_finder, optimizers, precision
from tfxfer.training.loop import TrainLoop

NUM_CLASSES = 3


# The dtypes `_DtypeProbe` was traced with, in order.
_SEEN = []


class _DtypeProbe(keras.layers.Layer):
    """Passes its input through; records in `_SEEN` the dtype of every input it was traced with."""

    def call(self, inputs):
        _SEEN.append(inputs.dtype)
        return inputs


def _tiny_backbone(size=32):
    from test_training import _tiny_backbone as convolutions

    backbone = convolutions(size)
    return keras.Model(backbone.input, _DtypeProbe(name="probe")(backbone.output), name="tiny")


def _classifier():
    return tfxfer.build_image_classifier(_tiny_backbone(), num_classes=NUM_CLASSES, preprocessing="tf",
                                         augmentation=False, dropout=0.0)


def _colour_data(num_examples, seed, batch_size=8):
    """32x32 images whose channel `label` is bright (200) and the others dark (40), plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_examples) % NUM_CLASSES
    images = np.full((num_examples, 32, 32, 3), 40.0)
    images[np.arange(num_examples), :, :, labels] = 200.0
    images = np.clip(images + rng.normal(0, 25, images.shape), 0, 255).astype("float32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def _config(**changes):
    base = {"epochs": 2, "fine_tune_epochs": 2, "learning_rate": 3e-2, "fine_tune_learning_rate": 3e-3,
            "fine_tune_at": "conv_2", "label_smoothing": 0.0, "early_stopping_patience": None}
    return FineTuneConfig(**{**base, **changes})


class _RecordPolicies(keras.callbacks.Callback):
    """Records, at each epoch's end, the compute dtype of every layer of the model being trained."""

    def __init__(self):
        super().__init__()
        self.dtypes = []

    def on_epoch_end(self, epoch, logs=None):
        layers = self.model._flatten_layers(include_self=False, recursive=True)
        self.dtypes.append({layer.name: layer.compute_dtype for layer in layers})


def _fine_tune(model, config, **kwargs):
    return tfxfer.fine_tune(model, _colour_data(48, seed=0), _colour_data(24, seed=1), config=config,
                            cache_features=False, verbose=0, **kwargs)


@pytest.fixture(scope="module")
def bf16_run():
    keras.utils.set_random_seed(1234)
    model = _classifier()
    _SEEN.clear()  # after the build, which traces the probe in float32
    record = _RecordPolicies()
    result = _fine_tune(model, _config(mixed_precision="mixed_bfloat16"), callbacks=[record])
    return model, result, record, list(_SEEN)


def test_bf16_backbone_computes_in_bfloat16_during_training(bf16_run):
    _, _, record, seen = bf16_run
    # The probe sits in the backbone: every trace during training saw bfloat16 features.
    assert seen and set(seen) == {tf.bfloat16}
    for epoch in record.dtypes:
        assert epoch["conv_2"] == "bfloat16" and epoch["conv_1_bn"] == "bfloat16"
        assert epoch["predictions"] == "float32"


def test_bf16_training_learns_and_reduces_loss(bf16_run):
    _, result, _, _ = bf16_run
    assert result.phase1.history["loss"][-1] < result.phase1.history["loss"][0]
    assert result.phase2.final_metrics["val_accuracy"] >= 0.9


def test_after_bf16_fine_tune_the_model_is_float32_and_its_reload_predicts_alike(bf16_run, tmp_path):
    model, _, _, _ = bf16_run
    layers = model._flatten_layers(include_self=True, recursive=True)
    assert {layer.compute_dtype for layer in layers} == {"float32"}
    assert {weight.dtype for weight in model.weights} == {"float32"}
    images = next(iter(_colour_data(8, seed=2)))[0]
    _SEEN.clear()
    predictions = model.predict(images, verbose=0)
    assert predictions.dtype == np.float32 and set(_SEEN) == {tf.float32}
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path, custom_objects={"_DtypeProbe": _DtypeProbe})
    assert {layer.compute_dtype for layer in reloaded._flatten_layers(recursive=True)} == {"float32"}
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), predictions)


def test_after_bf16_fine_tune_a_saved_model_export_serves_float32_equal_to_the_model(bf16_run, tmp_path):
    model, _, _, _ = bf16_run
    images = next(iter(_colour_data(8, seed=2)))[0]
    export_dir = os.path.join(tmp_path, "export")
    model.export(export_dir, verbose=False)
    loaded = tf.saved_model.load(export_dir)  # kept: its functions need the object alive
    served = loaded.serve(images)
    assert served.dtype == tf.float32
    np.testing.assert_allclose(served.numpy(), model.predict(images, verbose=0), atol=1e-6)


def test_float16_wraps_the_optimizer_in_loss_scaling_and_training_reduces_loss():
    keras.utils.set_random_seed(1234)
    model = _classifier()
    _SEEN.clear()
    result = _fine_tune(model, _config(mixed_precision="mixed_float16"))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert set(_SEEN) == {tf.float16}
    for phase in (result.phase1, result.phase2):
        assert phase.history["loss"][-1] < phase.history["loss"][0]
    assert result.phase2.final_metrics["val_accuracy"] >= 0.9
    assert {layer.compute_dtype for layer in model._flatten_layers(recursive=True)} == {"float32"}


def test_loss_scaling_scales_the_loss_and_unscales_the_gradients_in_the_loop():
    keras.utils.set_random_seed(1234)
    model = _classifier()
    phase_optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0 ** 10)
    model.compile(optimizer=phase_optimizer)
    reference = _classifier()
    reference.set_weights(model.get_weights())
    reference.compile(optimizer=keras.optimizers.SGD(0.1))
    batch = next(iter(_colour_data(8, seed=0)))
    loss = losses.loss_for(HeadKind.MULTICLASS, 0.0)
    for trained in (model, reference):
        loop = TrainLoop(trained, HeadKind.MULTICLASS, loss)
        loop.train_step(loop.strategy.experimental_distribute_values_from_function(lambda _: batch))
    # In float32 the scaled step equals the plain one: the scale was divided out again.
    for scaled, plain in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(scaled, plain, rtol=1e-5, atol=1e-6)


def test_float16_backups_resume_with_the_loss_scale_optimizer(tmp_path):
    keras.utils.set_random_seed(1234)
    model = _classifier()
    config = _config(mixed_precision="mixed_float16", epochs=1, fine_tune_epochs=1)
    result = _fine_tune(model, config, backup_dir=str(tmp_path / "backup"))
    assert result.phase2.epochs_run == 1 and not os.path.exists(tmp_path / "backup")


def test_a_float16_learning_rate_sweep_scales_the_loss_as_its_phase_will(monkeypatch):
    made = []

    def recording_for_phase(phase, learning_rate, *, loss_scaling=False):
        optimizer = for_phase(phase, learning_rate, loss_scaling=loss_scaling)
        made.append((learning_rate, optimizer))
        return optimizer

    for_phase = optimizers.for_phase
    monkeypatch.setattr(optimizers, "for_phase", recording_for_phase)
    keras.utils.set_random_seed(1234)
    model = _classifier()
    _SEEN.clear()
    result = _fine_tune(model, _config(mixed_precision="mixed_float16", fine_tune_epochs=0), find_learning_rate=1)
    sweeps = [optimizer for rate, optimizer in made if isinstance(rate, lr_finder.ExponentialSweepSchedule)]
    assert len(sweeps) == 1 and len(made) == 2  # the sweep's optimizer, then phase 1's
    assert all(isinstance(optimizer, keras.optimizers.LossScaleOptimizer) for _, optimizer in made)
    assert set(_SEEN) == {tf.float16}
    assert np.isfinite(result.phase1.learning_rate_sweep["losses"][0]) and result.phase1.learning_rate > 0


def test_find_learning_rate_sweeps_in_the_configs_precision_and_leaves_the_model_float32():
    keras.utils.set_random_seed(1234)
    model = _classifier()
    before = model.get_weights()
    _SEEN.clear()
    sweep = tfxfer.find_learning_rate(model, _colour_data(48, seed=0), config=_config(mixed_precision="mixed_float16"),
                                      cache_features=False, steps=20)
    assert set(_SEEN) == {tf.float16}
    assert len(sweep.losses) >= 2 and np.isfinite(sweep.losses[0]) and sweep.suggestion > 0
    assert {layer.compute_dtype for layer in model._flatten_layers(recursive=True)} == {"float32"}
    for restored, original in zip(model.get_weights(), before):
        np.testing.assert_array_equal(restored, original)


def test_jit_compile_trains_like_graph_mode():
    histories = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(1234)
        model = _classifier()
        result = _fine_tune(model, _config(jit_compile=jit_compile))
        histories.append(result.phase1.history["loss"] + result.phase2.history["loss"])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-3)


def test_jit_compile_compiles_the_replica_steps_with_xla():
    model = _classifier()
    model.compile(optimizer=keras.optimizers.Adam())
    loop = TrainLoop(model, HeadKind.MULTICLASS, losses.loss_for(HeadKind.MULTICLASS, 0.0), jit_compile=True)
    assert loop.jit_compile
    assert loop._train_replica_step.function_spec.jit_compile
    assert loop._eval_replica_step.function_spec.jit_compile


@pytest.mark.parametrize("changes, named", [
    ({"mixed_precision": "bfloat16"}, "mixed_precision"),
    ({"mixed_precision": True}, "mixed_precision"),
    ({"jit_compile": "yes"}, "jit_compile"),
    ({"jit_compile": 1}, "jit_compile"),
])
def test_bad_precision_settings_fail_before_training(changes, named):
    model = _classifier()
    weights = model.get_weights()
    with pytest.raises(ConfigError, match=f"{named}.*Received: {named}="):
        _fine_tune(model, _config(**changes))
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_jit_compile_with_augmentation_xla_cannot_compile_fails_before_training():
    model = tfxfer.build_image_classifier(_tiny_backbone(), num_classes=NUM_CLASSES, preprocessing="tf",
                                          augmentation=True, dropout=0.0)
    weights = model.get_weights()
    with pytest.raises(ConfigError, match=r"random_affine.*\(RandomAffine\).*augmentation=False.*"
                                          r"Received: jit_compile=True"):
        _fine_tune(model, _config(jit_compile=True))
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("setting, cpu_flags, gpus, expected", [
    (None, {"avx512_bf16"}, ["gpu"], "float32"),
    ("off", {"avx512_bf16"}, [], "float32"),
    ("auto", {"avx2", "avx512f", "avx512_bf16"}, [], "mixed_bfloat16"),
    ("auto", {"avx2", "amx_bf16"}, [], "mixed_bfloat16"),
    ("auto", {"avx2", "avx512f"}, [], "float32"),
    ("auto", set(), ["gpu"], "mixed_float16"),
    ("auto", {"avx512_bf16"}, ["gpu"], "mixed_float16"),
    ("mixed_bfloat16", set(), [], "mixed_bfloat16"),
    ("mixed_float16", set(), [], "mixed_float16"),
])
def test_auto_resolution(setting, cpu_flags, gpus, expected):
    assert precision.resolve(setting, cpu_flags=cpu_flags, gpus=gpus) == expected


def test_auto_picks_bfloat16_under_a_tpu_strategy(monkeypatch):
    monkeypatch.setattr(precision, "is_tpu_strategy", lambda strategy: True)
    assert precision.resolve("auto", tf.distribute.get_strategy(), cpu_flags=set(), gpus=["gpu"]) == "mixed_bfloat16"


def test_auto_logs_its_choice(caplog):
    caplog.set_level("INFO", logger="absl")
    precision.resolve("auto", cpu_flags={"avx2"}, gpus=[])
    assert "resolved to float32" in caplog.text


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert precision.read_cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.read_cpu_flags(str(tmp_path / "missing")) == set()


def test_phase_summary_logs_the_policy_that_ran(caplog):
    caplog.set_level("INFO", logger="absl")
    _fine_tune(_classifier(), _config(mixed_precision="mixed_bfloat16", jit_compile=True, fine_tune_epochs=0))
    assert "compute mixed_bfloat16 (predictions float32), XLA-compiled steps" in caplog.text


def test_policies_are_restored_when_bfloat16_training_fails():
    model = _classifier()

    class _Fail(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        _fine_tune(model, _config(mixed_precision="mixed_bfloat16"), callbacks=[_Fail()])
    assert {layer.compute_dtype for layer in model._flatten_layers(recursive=True)} == {"float32"}


def test_for_phase_wraps_only_when_asked():
    phase = types.SimpleNamespace(weight_decay=1e-4, global_clipnorm=1.0, lr_multipliers=None, ema_momentum=None)
    plain = optimizers.for_phase(phase, 1e-3)
    assert not isinstance(plain, keras.optimizers.LossScaleOptimizer) and not plain.use_ema
    wrapped = optimizers.for_phase(phase, 1e-3, loss_scaling=True)
    assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer)
    assert isinstance(wrapped.inner_optimizer, keras.optimizers.AdamW)
    # The weight average stays on the inner optimizer, which applies the unscaled gradients.
    averaged = optimizers.for_phase(types.SimpleNamespace(**{**vars(phase), "ema_momentum": 0.9}), 1e-3,
                                    loss_scaling=True)
    assert averaged.inner_optimizer.use_ema and averaged.inner_optimizer.ema_momentum == 0.9


@pytest.mark.slow
def test_a_text_transformer_trains_in_bfloat16_with_xla_and_ends_float32(tmp_path):
    from _text_helpers import NEGATIVE, POSITIVE, save_tiny_bert_preset, sentences

    from tfxfer.data.token_batches import preprocess_dataset

    preset = save_tiny_bert_preset(tmp_path / "bert")
    texts = sentences(POSITIVE, 16, 0) + sentences(NEGATIVE, 16, 1)
    dataset = tf.data.Dataset.from_tensor_slices((texts, [1] * 16 + [0] * 16)).shuffle(32, seed=0).batch(8)
    model = tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8, pooling="mean")
    tokenized = preprocess_dataset(dataset, model.preprocessor)
    policies = {layer.name: layer.dtype_policy.name for layer in model._flatten_layers(recursive=True)}
    record = _RecordPolicies()
    config = FineTuneConfig(epochs=1, fine_tune_epochs=2, fine_tune_at="transformer_layer_1",
                            fine_tune_learning_rate=1e-2, mixed_precision="mixed_bfloat16", jit_compile=True)
    result = tfxfer.fine_tune(model, tokenized, config=config, callbacks=[record], verbose=0)
    assert record.dtypes[-1]["transformer_layer_1"] == "bfloat16"
    assert np.all(np.isfinite(result.phase1.history["loss"] + result.phase2.history["loss"]))
    # Each layer's own policy is back (keras-hub keeps some integer ones, e.g. for positions).
    assert {layer.name: layer.dtype_policy.name for layer in model._flatten_layers(recursive=True)} == policies
    inputs = next(iter(tokenized))[0]
    assert model.predict_on_batch(inputs).dtype == np.float32


@pytest.mark.slow
def test_image_recipe_bfloat16_and_xla_flags_reach_training_and_metrics(tmp_path, script_server):
    from test_recipes import _run_recipe, _tiny_backbone_file, _write_colour_folders

    _write_colour_folders(tmp_path / "data", per_class=6)
    backbone = _tiny_backbone_file(tmp_path / "own.keras")
    common = [f"--data_dir={tmp_path / 'data'}", f"--backbone={backbone}", "--backbone_output_layer=features",
              "--batch_size=8", "--epochs=1", "--fine_tune_epochs=1", "--fine_tune_at=0", "--warmup_examples=0",
              f"--export_dir={tmp_path / 'exports'}", "--model_name=m"]
    process = _run_recipe(script_server, "image_classifier.py", *common, "--mixed_precision=mixed_bfloat16",
                          "--jit_compile", "--noaugmentation", "--fine_tune_ema_momentum=0.8",
                          f"--run_dir={tmp_path / 'run'}")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["fine_tune_ema_momentum"] == 0.8
    assert "weights averaged at momentum 0.8" in process.stderr
    assert metrics["mixed_precision"] == "mixed_bfloat16" and metrics["compute_policy"] == "mixed_bfloat16"
    assert metrics["jit_compile"] is True
    assert "compute mixed_bfloat16 (predictions float32), XLA-compiled steps" in process.stderr
    # With its augmentation, XLA cannot compile RandomAffine: a usage error before training, naming the fix.
    refused = script_server.run_recipe("image_classifier.py", *common, "--jit_compile",
                                       f"--run_dir={tmp_path / 'jit'}")
    assert refused.returncode == 2 and "RandomAffine" in refused.stderr, refused.stderr[-3000:]
    assert "--noaugmentation" in refused.stderr
