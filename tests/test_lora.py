"""LoRA in phase 2 (`FineTuneConfig.lora_rank`) on a tiny keras-hub BERT: what trains, the export's
merged kernels, backups, the refusals, and MirroredStrategy.

The MirroredStrategy check needs two logical CPU devices, configured before
TensorFlow initialises: it runs this file as a script in a process of its own
(`python tests/test_lora.py mirrored <folder>`).
"""

import json
import logging
import os
import sys
import tempfile
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging as absl_logging  # noqa: E402

import tfxfer  # noqa: E402
from tfxfer.errors import ConfigError  # noqa: E402
from tfxfer.models import lora_layers  # noqa: E402
from tfxfer.training import freezing, lora  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _text_helpers import (  # noqa: E402
    NEGATIVE,
    POSITIVE,
    save_tiny_bert_preset,
    sentences,
    write_word_vectors,
)

RANK = 2
# Both transformer blocks of the tiny BERT's 11 backbone layers, and a rate at which adapters move visibly.
CONFIG = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=2, fine_tune_at=0.5, fine_tune_learning_rate=1e-2,
                               lora_rank=RANK, early_stopping_patience=None)


def texts_and_labels():
    return sentences(POSITIVE, 16, 0) + sentences(NEGATIVE, 16, 1), [1] * 16 + [0] * 16


def tokenized(model, batch_size=8):
    texts, labels = texts_and_labels()
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(batch_size)
    return data.map(lambda text, label: (model.preprocessor(text), label))


def bert_classifier(preset):
    return tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8, dropout=0.0)


def snapshot(variables):
    return {variable.path: np.array(variable.numpy()) for variable in variables}


def lora_state(model):
    """`{path: value}` of every LoRA layer's stored kernel and adapters."""
    layers = lora_layers.lora_layers(model)
    return snapshot([v for layer in layers for v in (layer._kernel, *lora_layers.adapters(layer))])


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    return save_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert"), num_layers=2)


@pytest.fixture(scope="module")
def trained(preset):
    """One LoRA run, with layer-wise decay, that several tests look at: the model, what it started from, the logs."""
    keras.utils.set_random_seed(7)
    model = bert_classifier(preset)
    data = tokenized(model)
    before = snapshot(model.get_layer("backbone").weights)
    head_before = snapshot(model.get_layer("predictions").weights)
    records, absl_logger = _Records(), logging.getLogger("absl")
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger.addHandler(records)
    try:
        result = tfxfer.fine_tune(model, data, data, config=CONFIG.replace(layer_decay=0.8), verbose=0)
    finally:
        absl_logger.removeHandler(records)
        absl_logging.set_verbosity(verbosity)
    return {"model": model, "data": data, "before": before, "head_before": head_before, "result": result,
            "messages": records.messages}


# What phase 2 trains.

def test_phase2_trains_only_the_adapters_and_the_head(trained):
    model, before = trained["model"], trained["before"]
    after = snapshot(model.get_layer("backbone").weights)
    adapters = sorted(set(after) - set(before))
    # Every original weight of the backbone, kernels of adapted layers included, is bit for bit what it was.
    assert all(np.array_equal(before[path], after[path]) for path in before)
    # The adapters sit on the query and value projections of both blocks, and trained: B left zero.
    assert [path.split("/", 1)[1] for path in adapters[:4]] == [
        "self_attention_layer/query/lora_kernel_a", "self_attention_layer/query/lora_kernel_b",
        "self_attention_layer/value/lora_kernel_a", "self_attention_layer/value/lora_kernel_b"]
    assert {path.split("/")[0] for path in adapters} == {"transformer_layer_0", "transformer_layer_1"}
    assert all(np.abs(after[path]).max() > 1e-4 for path in adapters if path.endswith("lora_kernel_b"))
    head_after = snapshot(model.get_layer("predictions").weights)
    assert any(not np.array_equal(trained["head_before"][path], head_after[path]) for path in head_after)
    assert sorted(v.path for v in model.trainable_weights) == sorted(adapters + list(head_after))


def test_trainable_parameters_are_what_the_rank_predicts(trained):
    model = trained["model"]
    layers = lora_layers.lora_layers(model)
    assert len(layers) == 4
    # Keras' LoRA factors a kernel of shape (..., out) into A (..., rank) and B (rank, out).
    adapters = sum(RANK * (int(np.prod(layer._kernel.shape[:-1])) + layer._kernel.shape[-1]) for layer in layers)
    head = sum(int(np.prod(w.shape)) for w in model.get_layer("predictions").weights)
    assert (adapters, head) == (160, 9)
    assert trained["result"].phase2.trainable_parameters == adapters + head
    assert trained["result"].phase1.trainable_parameters == head


def test_the_log_says_what_phase2_trains_with_lora_and_without(trained):
    # Without LoRA, fine_tune_at=0.5 trains the embeddings' LayerNorm, both blocks and the head.
    without = sum(int(np.prod(w.shape)) for w in trained["model"].get_layer("backbone").weights
                  if "lora" not in w.path and w.path.startswith(("embeddings_layer_norm", "transformer_layer")))
    lines = [m for m in trained["messages"] if m.startswith("LoRA rank 2 on 4 backbone layers")]
    assert len(lines) == 1, trained["messages"]
    assert f"phase 2 trains 169 parameters (160 in adapters, the rest in the head) instead of {without + 9:,}" \
        in lines[0]


def test_adapters_train_at_their_blocks_layer_decay_rate(trained):
    multipliers = trained["model"].optimizer.lr_multipliers
    adapters = {path: factor for path, factor in multipliers.items() if "lora_kernel" in path}
    assert len(adapters) == 8
    # Two blocks at decay 0.8: the top block's adapters at the full rate, the one below at 0.8 of it.
    assert {factor for path, factor in adapters.items() if path.startswith("transformer_layer_1/")} == {1.0}
    assert [factor for path, factor in adapters.items() if path.startswith("transformer_layer_0/")] == [
        pytest.approx(0.8)] * 4


def test_adapters_go_only_where_fine_tune_at_unfreezes(untrained):
    layers = lora.target_layers(untrained, "transformer_layer_1", RANK)
    assert [layer.path for layer in layers] == ["transformer_layer_1/self_attention_layer/value",
                                                "transformer_layer_1/self_attention_layer/query"]


# Export, .keras files, a second run.

def test_export_merges_the_adapters_and_predicts_as_keras(trained, tmp_path):
    model = trained["model"]
    inputs = next(iter(trained["data"]))[0]
    texts = texts_and_labels()[0][:8]
    keras_probabilities = model(inputs, training=False).numpy()[:, 0]
    state = lora_state(model)
    path = tfxfer.export_saved_model(model, tmp_path, class_names=["neg", "pos"])
    stored = [name for name, _ in tf.train.list_variables(os.path.join(path, "variables", "variables"))]
    loaded = tf.saved_model.load(path)
    assert not [v.name for v in loaded.variables if "lora" in v.name]
    # Every variable of the model (seed generators' states too) but the adapters.
    adapters = [adapter for layer in lora_layers.lora_layers(model) for adapter in lora_layers.adapters(layer)]
    assert len(loaded.variables) == len(model.variables) - len(adapters) == len(model.variables) - 8
    assert stored and not [name for name in stored if "lora" in name]
    served = loaded.signatures["serving_default"](texts=tf.constant(texts))["probabilities"].numpy()[:, 1]
    token_ids = loaded.signatures["serving_token_ids"](
        **{name: tf.cast(value, tf.int32) for name, value in inputs.items()})["probabilities"].numpy()[:, 1]
    np.testing.assert_allclose(served, keras_probabilities, atol=1e-4)
    np.testing.assert_allclose(token_ids, keras_probabilities, atol=1e-4)
    # The Keras model is as it was: adapters on, original kernels and adapters bit for bit.
    assert all(layer.lora_enabled for layer in lora_layers.lora_layers(model))
    after = lora_state(model)
    assert all(np.array_equal(state[name], after[name]) for name in state)
    np.testing.assert_array_equal(model(inputs, training=False).numpy()[:, 0], keras_probabilities)


def test_a_saved_lora_model_reloads_as_the_plain_model_it_predicts_like(trained, tmp_path):
    model = trained["model"]
    inputs = next(iter(trained["data"]))[0]
    model.save(tmp_path / "lora.keras")
    reloaded = keras.models.load_model(tmp_path / "lora.keras")
    # Keras saves the merged kernels; keras-hub's attention layers come back without adapters.
    assert lora_layers.lora_layers(reloaded) == []
    np.testing.assert_allclose(reloaded(inputs, training=False).numpy(), model(inputs, training=False).numpy(),
                               atol=1e-5)


def test_a_second_lora_phase_merges_the_adapters_and_starts_new_ones(preset):
    model = bert_classifier(preset)
    inputs = next(iter(tokenized(model)))[0]
    freezing.set_trainable(model.get_layer("backbone"), 0.5)
    layers = lora.train_adapters(model, 0.5, RANK)
    rng = np.random.default_rng(0)
    for layer in layers:  # as after training: both adapters non-zero
        for adapter in lora_layers.adapters(layer):
            adapter.assign(rng.normal(0, 0.3, adapter.shape).astype("float32"))
    expected_kernels = [lora_layers.merged_kernel(layer).numpy() for layer in layers]
    predictions = model(inputs, training=False).numpy()
    lora.train_adapters(model, 0.5, RANK)
    np.testing.assert_allclose(model(inputs, training=False).numpy(), predictions, atol=1e-6)
    for layer, kernel in zip(layers, expected_kernels):
        np.testing.assert_array_equal(layer._kernel.numpy(), kernel)
        assert not np.any(layer.lora_kernel_b.numpy()) and np.any(layer.lora_kernel_a.numpy())


def test_a_second_lora_run_at_another_rank_merges_the_old_adapters_and_trains_new_ones(preset):
    model = bert_classifier(preset)
    data = tokenized(model)
    inputs = next(iter(data))[0]
    tfxfer.fine_tune(model, data, config=CONFIG.replace(fine_tune_epochs=1), verbose=0)
    layers = lora_layers.lora_layers(model)
    merged = [lora_layers.merged_kernel(layer).numpy() for layer in layers]
    predictions = model(inputs, training=False).numpy()
    freezing.set_trainable(model.get_layer("backbone"), 0.5)
    assert {layer.path for layer in lora.train_adapters(model, 0.5, 3)} == {layer.path for layer in layers}
    np.testing.assert_allclose(model(inputs, training=False).numpy(), predictions, atol=1e-6)
    for layer, kernel in zip(layers, merged):
        np.testing.assert_array_equal(layer._kernel.numpy(), kernel)
        assert (layer.lora_rank, layer.lora_kernel_a.shape, layer.lora_kernel_b.shape) == (3, (8, 2, 3), (3, 4))
    # The old adapters are gone from the model: only the new ones, which train.
    adapters = [variable for variable in model.weights if "lora_kernel" in variable.path]
    assert len(adapters) == 8 and {variable.shape[-1] for variable in adapters} == {3, 4}
    assert all(variable.trainable for variable in adapters)
    # And fine_tune trains them: rank 3 on 4 layers of 8x2x4 kernels (3 * (16 + 4) each), and the head.
    result = tfxfer.fine_tune(model, data, config=CONFIG.replace(lora_rank=3, fine_tune_epochs=1), verbose=0)
    assert result.phase2.trainable_parameters == 4 * 3 * (16 + 4) + 9
    assert all(layer.lora_rank == 3 for layer in lora_layers.lora_layers(model))


# Backups.

class _KillAfterFirstLoraEpoch(keras.callbacks.Callback):
    """Records the LoRA state at the end of phase 2's first epoch (just backed up), then stops the run."""

    def on_epoch_end(self, epoch, logs=None):
        if lora_layers.lora_layers(self.model):
            self.state = lora_state(self.model)
            raise KeyboardInterrupt("killed")


class _RecordStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        if lora_layers.lora_layers(self.model):  # phase 2: after BackupAndRestore, which comes first
            self.state = lora_state(self.model)


def test_a_killed_lora_run_resumes_with_its_adapters_and_original_kernels(preset, tmp_path):
    backup = tmp_path / "backup"
    model = bert_classifier(preset)
    original = snapshot(model.get_layer("backbone").weights)
    kill = _KillAfterFirstLoraEpoch()
    with pytest.raises(KeyboardInterrupt):
        tfxfer.fine_tune(model, tokenized(model), config=CONFIG, backup_dir=backup, callbacks=[kill], verbose=0)
    assert all(np.any(value) for path, value in kill.state.items() if path.endswith("lora_kernel_b"))

    resumed, start = bert_classifier(preset), _RecordStart()
    result = tfxfer.fine_tune(resumed, tokenized(resumed), config=CONFIG, backup_dir=backup, callbacks=[start],
                              verbose=0)
    assert sorted(start.state) == sorted(kill.state)
    for path, value in kill.state.items():
        # Restored as backed up: the adapters as trained, the kernels as pretrained (not merged with them).
        np.testing.assert_array_equal(start.state[path], value, err_msg=path)
        if path.endswith("/kernel"):
            np.testing.assert_array_equal(value, original[path], err_msg=path)
    assert result.phase2.epochs_run == 2 and not backup.exists()
    final = lora_state(resumed)
    assert any(not np.array_equal(final[path], kill.state[path]) for path in final if "lora_kernel_b" in path)


# Refusals, before any training.

class _RecordEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


@pytest.fixture(scope="module")
def untrained(preset):
    return bert_classifier(preset)


@pytest.mark.parametrize("rank", [0, -2, 2.0, True, "4"])
def test_lora_rank_must_be_a_positive_integer(untrained, rank):
    model = untrained
    record = _RecordEpochs()
    with pytest.raises(ConfigError, match=r"lora_rank must be a positive integer.*or None.*Received: lora_rank="):
        tfxfer.fine_tune(model, tokenized(model), config=CONFIG.replace(lora_rank=rank), callbacks=[record])
    assert record.epochs == []


@pytest.mark.parametrize("rank", [4, 1000])
def test_a_rank_as_wide_as_an_adapted_layer_is_refused_before_training(untrained, rank):
    # The query and value kernels are (8, 2, 4): Keras' LoRA factors them through rank 4 at most.
    model = untrained
    record = _RecordEpochs()
    with pytest.raises(ConfigError, match=rf"lora_rank must be below the width of every layer LoRA adapts, and the "
                                          rf"narrowest, backbone layer 'transformer_layer_0/self_attention_layer/"
                                          rf"(query|value)', is 4 wide: Keras' LoRA factors its kernel of shape "
                                          rf"\(8, 2, 4\) into A \(8, 2, {rank}\) and B \({rank}, 4\).*would "
                                          rf"train {rank * 20:,} parameters where the kernel has 64\. Pass a lora_rank "
                                          rf"below 4, or lora_rank=None.*Received: lora_rank={rank}"):
        tfxfer.fine_tune(model, tokenized(model), config=CONFIG.replace(lora_rank=rank), callbacks=[record])
    assert record.epochs == [] and lora_layers.lora_layers(model) == []


def test_a_keras_applications_backbone_is_refused_before_training():
    model = tfxfer.build_image_classifier("mobilenet_v2", 2, weights=None, image_size=32, alpha=0.35)
    images = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), "float32"), [0, 1, 0, 1])).batch(2)
    record = _RecordEpochs()
    with pytest.raises(ConfigError, match=r"LoRA cannot adapt the keras.applications backbone 'mobilenet_v2': it is "
                                          r"a convolutional network.*Leave lora_rank unset.*"
                                          r"Received: lora_rank=4, backbone='mobilenet_v2'"):
        tfxfer.fine_tune(model, images, config=CONFIG.replace(lora_rank=4), callbacks=[record])
    assert record.epochs == []


@pytest.mark.parametrize("encoder", ["bilstm", "mean"])
def test_a_word_vector_encoder_is_refused_before_training(tmp_path, encoder):
    texts, labels = texts_and_labels()
    vectors = tmp_path / "vectors.txt"
    write_word_vectors(vectors, POSITIVE + NEGATIVE + ["film"], dim=4)
    backbone = tfxfer.load_word_vector_backbone(vectors, texts, sequence_length=6, encoder=encoder, units=2)
    model = tfxfer.build_text_classifier(backbone, 2)
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(8).map(
        lambda text, label: (model.preprocessor(text), label))
    record = _RecordEpochs()
    with pytest.raises(ConfigError, match=r"LoRA cannot apply to a word-vector encoder.*Leave lora_rank unset.*"
                                          r"Received: lora_rank=2"):
        tfxfer.fine_tune(model, data, config=CONFIG.replace(fine_tune_at=0), callbacks=[record])
    assert record.epochs == []


def _own_backbone():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(4, name="features")(x)
    return keras.Model(inputs, keras.layers.Activation("tanh", name="top")(x))


def test_an_own_backbone_gets_adapters_on_its_dense_layers_but_only_above_fine_tune_at():
    model = tfxfer.build_image_classifier(_own_backbone(), 2, augmentation=False)
    assert [layer.name for layer in lora.target_layers(model, 0, RANK)] == ["features"]
    images = tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 3), "float32"), [0, 1, 0, 1])).batch(2)
    with pytest.raises(ConfigError, match=r"LoRA adapts Dense and EinsumDense layers, and the part of the backbone "
                                          r"phase 2 trains \(from fine_tune_at='top': \['top'\]\) has none. Pass a "
                                          r"fine_tune_at that reaches them.*Received: lora_rank=2"):
        tfxfer.fine_tune(model, images, config=CONFIG.replace(fine_tune_at="top"))


def test_fine_tune_epochs_0_needs_no_lora_capable_backbone_but_a_valid_rank():
    model = tfxfer.build_image_classifier(_own_backbone(), 2, augmentation=False)
    images = tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 3), "float32"), [0, 1, 0, 1])).batch(2)
    result = tfxfer.fine_tune(model, images, config=CONFIG.replace(fine_tune_at="top", fine_tune_epochs=0),
                              verbose=0)
    assert result.phase2 is None and lora_layers.lora_layers(model) == []


class _MergedKernelAtPhase2End(keras.callbacks.Callback):
    def __init__(self, layer_name):
        super().__init__()
        self.layer_name, self.fits, self.kernel = layer_name, 0, None

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_train_end(self, logs=None):
        if self.fits == 2:
            self.kernel = keras.ops.convert_to_numpy(lora_layers.merged_kernel(self.model.get_layer("backbone")
                                                                               .get_layer(self.layer_name)))


def test_interpolation_moves_lora_s_merged_kernel_halfway_back_to_the_frozen_one():
    keras.utils.set_random_seed(0)
    model = tfxfer.build_image_classifier(_own_backbone(), 2, augmentation=False)
    layer = model.get_layer("backbone").get_layer("features")
    frozen = keras.ops.convert_to_numpy(layer.kernel)
    images = tf.data.Dataset.from_tensor_slices((np.random.default_rng(0).normal(size=(8, 8, 8, 3)).astype("float32"),
                                                 [0, 1] * 4)).batch(4)
    end = _MergedKernelAtPhase2End("features")
    tfxfer.fine_tune(model, images, config=CONFIG.replace(fine_tune_at=0, fine_tune_interpolation=0.5),
                     callbacks=[end], verbose=0)
    assert not np.allclose(end.kernel, frozen, atol=1e-3)  # the adapters trained
    np.testing.assert_allclose(keras.ops.convert_to_numpy(lora_layers.merged_kernel(layer)), (frozen + end.kernel) / 2,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer._kernel), frozen)


class _BadLabelsAfterPhase1(keras.callbacks.Callback):
    """Records the predictions on `images` when phase 1 ends, then turns on `bad`, which the data reads."""

    def __init__(self, images, bad):
        super().__init__()
        self.images, self.bad, self.phase1_predictions = images, bad, None

    def on_train_end(self, logs=None):
        if self.phase1_predictions is None:
            self.phase1_predictions = self.model.predict(self.images, verbose=0)
            self.bad.set()


def test_a_lora_phase_stopped_by_a_bad_batch_predicts_as_phase_1_did():
    # Undoing the steps puts B back to zero, so the merged kernel is the frozen one whatever A learned.
    keras.utils.set_random_seed(0)
    model = tfxfer.build_image_classifier(_own_backbone(), 2, augmentation=False)
    layer = model.get_layer("backbone").get_layer("features")
    frozen = keras.ops.convert_to_numpy(layer.kernel)
    images = np.random.default_rng(0).normal(size=(8, 8, 8, 3)).astype("float32")
    bad = threading.Event()
    # Two batches; once `bad` is set, the second has a label (2) past the two-class head.
    data = tf.data.Dataset.from_generator(
        lambda: iter([(images[:4], np.array([0, 1, 0, 1])), (images[4:], np.array([0, 1, 2 * bad.is_set(), 1]))]),
        output_signature=(tf.TensorSpec((None, 8, 8, 3), tf.float32), tf.TensorSpec((None,), tf.int64)))
    record = _BadLabelsAfterPhase1(images, bad)
    with pytest.raises(ConfigError, match=r"A batch of the training data has labels that fit no class"):
        tfxfer.fine_tune(model, data, config=CONFIG.replace(fine_tune_at=0), callbacks=[record], verbose=0)
    assert lora_layers.lora_layers(model) == [layer]  # phase 2 had started its adapters and taken a step
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(lora_layers.merged_kernel(layer)), frozen)
    np.testing.assert_allclose(model.predict(images, verbose=0), record.phase1_predictions, rtol=1e-6, atol=1e-7)


# Recipes.

@pytest.mark.slow  # loads the images and builds the model before failing
def test_image_recipe_with_lora_rank_ends_with_the_message(tmp_path, script_server):
    for name in ("red", "blue"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for index in range(3):
            pixels = np.full((32, 32, 3), (200 if name == "red" else 30) + index, np.uint8)  # no two files alike
            (tmp_path / "data" / name / f"{index}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    stderr = script_server.usage_error(
        "image_classifier.py", f"--data_dir={tmp_path / 'data'}", "--validation_split=0.3", "--weights=none",
        "--alpha=0.35", "--image_size=32", "--lora_rank=4", f"--run_dir={tmp_path / 'run'}")
    assert ("image_classifier.py: error: LoRA cannot adapt the keras.applications backbone 'mobilenet_v2'"
            in stderr)
    assert "phase 1 epoch" not in stderr


@pytest.mark.slow
def test_text_recipe_trains_lora_adapters_and_reports_the_rank(tmp_path, script_server, preset):
    path = tmp_path / "reviews.csv"
    texts, labels = texts_and_labels()
    path.write_text("\n".join(["text,label"] + [f"{text},{'pos' if label else 'neg'}" for text, label in
                                                zip(texts, labels)]) + "\n", encoding="utf-8")
    process = script_server.run_recipe(
        "text_classifier.py", f"--data_dir={path}", f"--backbone={preset}", "--sequence_length=8", "--batch_size=8",
        "--epochs=1", "--fine_tune_epochs=1", "--fine_tune_at=0.5", f"--lora_rank={RANK}", "--warmup_examples=0",
        f"--run_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}", "--model_name=reviews",
        timeout=600)
    assert process.returncode == 0, process.stderr[-4000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["lora_rank"] == RANK
    # --fine_tune_learning_rate left unset: LoRA's own default, not the text defaults' 5e-5.
    assert metrics["fine_tune_learning_rate"] == tfxfer.defaults.LORA_FINE_TUNE_LEARNING_RATE
    # The adapters of both blocks' query and value (160) and the head (8 + 1).
    assert metrics["phase2"]["trainable_parameters"] == 169
    assert "LoRA rank 2 on 4 backbone layers" in process.stderr
    loaded = tf.saved_model.load(str(tmp_path / "exports" / "reviews" / "1"))
    assert not [v.name for v in loaded.variables if "lora" in v.name]


# MirroredStrategy: a process of its own.

def test_lora_trains_and_exports_under_a_mirrored_strategy(script_server, tmp_path):
    process = script_server.run(os.path.abspath(__file__), "mirrored", str(tmp_path))
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["adapters_mirrored"] and result["adapter_count"] == 8
    assert result["kernels_moved"] == 0.0 and result["adapters_b_max"] > 1e-4
    assert result["export_difference"] < 1e-4 and result["lora_variables_exported"] == 0


def _mirrored(folder):
    """Phase 2 with LoRA on two mirrored CPU replicas, then the export; prints JSON."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    keras.utils.set_random_seed(0)
    preset = save_tiny_bert_preset(os.path.join(folder, "bert"), num_layers=2)
    with strategy.scope():
        model = bert_classifier(preset)
    before = snapshot(model.get_layer("backbone").weights)
    data = tokenized(model, batch_size=tfxfer.global_batch_size(4, strategy))
    tfxfer.fine_tune(model, data, data, config=CONFIG.replace(fine_tune_epochs=1), verbose=0)
    layers = lora_layers.lora_layers(model)
    adapters = [adapter for layer in layers for adapter in lora_layers.adapters(layer)]
    inputs = next(iter(data))[0]
    keras_probabilities = model(inputs, training=False).numpy()[:, 0]
    path = tfxfer.export_saved_model(model, os.path.join(folder, "export"))
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_token_ids"](
        **{name: tf.cast(value, tf.int32) for name, value in inputs.items()})["probabilities"].numpy()[:, 1]
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "adapter_count": len(adapters),
        "adapters_mirrored": all(isinstance(a.value, tf.distribute.DistributedValues) for a in adapters),
        "kernels_moved": float(max(np.max(np.abs(layer._kernel.numpy() - before[layer._kernel.path]))
                                   for layer in layers)),
        "adapters_b_max": float(min(np.max(np.abs(layer.lora_kernel_b.numpy())) for layer in layers)),
        "export_difference": float(np.max(np.abs(served - keras_probabilities))),
        "lora_variables_exported": len([v for v in loaded.variables if "lora" in v.name]),
    }))


if __name__ == "__main__" and sys.argv[1:2] == ["mirrored"]:
    with tempfile.TemporaryDirectory() as scratch:
        _mirrored(sys.argv[2] if len(sys.argv) > 2 else scratch)
