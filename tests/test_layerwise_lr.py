"""Tests for layer-wise learning-rate decay: the multipliers of a tiny keras-hub BERT
and LayerwiseAdamW's update, checked against a hand-written AdamW and plain AdamW.

The MirroredStrategy check needs two logical CPU devices, which must be
configured before TensorFlow initialises: it runs this file as a script in a
subprocess (`python tests/test_layerwise_lr.py mirrored`).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxfer  # noqa: E402
from tfxfer.training.layerwise_lr import LayerwiseAdamW, layer_learning_rate_multipliers  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _text_helpers import POSITIVE, save_tiny_bert_preset, sentences, write_word_vectors  # noqa: E402

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
EMBEDDINGS = ("token_embedding/", "position_embedding/", "segment_embedding/", "embeddings_layer_norm/")


@pytest.fixture(scope="module")
def bert_classifier(tmp_path_factory):
    preset = save_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert"), num_layers=2)
    return tfxfer.build_text_classifier(preset, num_classes=2, sequence_length=8)


def toy_model(seed=3):
    """`low -> high` Dense layers with fixed initial weights."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="tanh", name="low")(inputs)
    outputs = keras.layers.Dense(2, name="high")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def toy_multipliers(model):
    low = model.get_layer("low")
    return {low.kernel.path: 0.0, low.bias.path: 0.5}


def toy_data(batch_size=8):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def reference_adamw(value, gradients, learning_rate, weight_decay):
    """AdamW as Keras defines it, in float64: decoupled decay, then the Adam step."""
    value, m, v = value.astype("float64"), 0.0, 0.0
    for step, gradient in enumerate(gradients, start=1):
        value = value - value * weight_decay * learning_rate
        m = m + (gradient - m) * (1 - BETA_1)
        v = v + (gradient**2 - v) * (1 - BETA_2)
        alpha = learning_rate * np.sqrt(1 - BETA_2**step) / (1 - BETA_1**step)
        value = value - m * alpha / (np.sqrt(v) + EPSILON)
    return value


def apply_steps(optimizer, variables, gradients_per_step):
    for gradients in gradients_per_step:
        optimizer.apply_gradients(zip([tf.constant(g) for g in gradients], variables))
    return [v.numpy() for v in variables]


# The multipliers.

def test_bert_multipliers_decay_by_block_with_embeddings_lowest(bert_classifier):
    multipliers = layer_learning_rate_multipliers(bert_classifier, decay=0.5)
    assert set(multipliers) == {v.path for v in bert_classifier.weights}
    for path, multiplier in multipliers.items():
        if path.startswith("transformer_layer_1/"):
            assert multiplier == 1.0, path
        elif path.startswith("transformer_layer_0/"):
            assert multiplier == 0.5, path
        elif path.startswith(EMBEDDINGS):
            assert multiplier == 0.25, path
        else:
            assert path.startswith("predictions/") and multiplier == 1.0, path
    assert {multipliers[p] for p in multipliers if p.startswith("token_embedding/")} == {0.25}


def test_frozen_backbone_variables_are_listed_too(bert_classifier):
    backbone = bert_classifier.get_layer("backbone")
    backbone.trainable = False
    try:
        multipliers = layer_learning_rate_multipliers(bert_classifier, decay=0.5)
    finally:
        backbone.trainable = True
    assert multipliers["token_embedding/embeddings"] == 0.25


def test_blocks_found_through_transformer_layers_of_a_wrapped_backbone(tmp_path):
    import keras_hub

    hub_backbone = keras_hub.models.Backbone.from_preset(save_tiny_bert_preset(tmp_path, num_layers=3))
    inputs = {name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in hub_backbone.input.items()}
    # Keeps the pooled output, so BERT's pooler dense sits above the last block.
    wrapper = keras.Model(inputs, hub_backbone(inputs)["pooled_output"], name="backbone")
    model = keras.Model(inputs, keras.layers.Dense(2, name="predictions")(wrapper(inputs)))
    multipliers = layer_learning_rate_multipliers(model, decay=0.5)
    assert multipliers["transformer_layer_2/feedforward_output_dense/kernel"] == 1.0
    assert multipliers["transformer_layer_1/feedforward_output_dense/kernel"] == 0.5
    assert multipliers["transformer_layer_0/feedforward_output_dense/kernel"] == 0.25
    assert multipliers["token_embedding/embeddings"] == 0.125
    assert multipliers["pooled_dense/kernel"] == 1.0
    assert multipliers["predictions/kernel"] == 1.0


def test_decay_one_gives_every_variable_one_even_without_transformer():
    model = toy_model()
    assert layer_learning_rate_multipliers(model, 1.0) == {v.path: 1.0 for v in model.weights}


def test_word_vector_backbone_needs_decay_one(tmp_path):
    path = tmp_path / "vectors.txt"
    write_word_vectors(path, POSITIVE + ["the", "movie", "was"], dim=4)
    backbone = tfxfer.load_word_vector_backbone(path, sentences(POSITIVE, 8, 0), sequence_length=6, units=4)
    model = tfxfer.build_text_classifier(backbone, num_classes=2)
    with pytest.raises(ValueError, match=r"needs a transformer backbone.*Pass decay=1\.0.*Received: decay=0\.8"):
        layer_learning_rate_multipliers(model, 0.8)


def test_model_without_backbone_layer_is_an_error():
    with pytest.raises(ValueError, match=r"layer named 'backbone'.*Pass decay=1\.0.*Received: layers="):
        layer_learning_rate_multipliers(toy_model(), 0.8)


@pytest.mark.parametrize("decay", [0, 0.0, -0.5, 1.5, True, "0.9", None])
def test_decay_outside_zero_one_is_an_error(decay):
    with pytest.raises(ValueError, match=r"decay must be a number in \(0, 1\].*Received: decay="):
        layer_learning_rate_multipliers(toy_model(), decay)


def test_bad_multiplier_is_an_error():
    with pytest.raises(ValueError, match=r"finite numbers >= 0. Received: lr_multipliers\['a'\]=-1"):
        LayerwiseAdamW(lr_multipliers={"a": -1})


# The optimizer.

def test_one_step_per_variable_matches_hand_computed_adamw():
    a = keras.Variable(np.array([1.0, -2.0, 0.5], "float32"), name="a")
    b = keras.Variable(np.array([[0.3, -0.7]], "float32"), name="b")
    c = keras.Variable(np.array([2.0], "float32"), name="c")
    multipliers = {a.path: 0.25, b.path: 0.5}  # c is not listed: 1.0.
    gradients = [np.array([0.1, -0.4, 2.0], "float32"), np.array([[-1.5, 0.02]], "float32"),
                 np.array([0.3], "float32")]
    optimizer = LayerwiseAdamW(learning_rate=0.1, weight_decay=0.2, lr_multipliers=multipliers)
    initial = [a.numpy(), b.numpy(), c.numpy()]
    results = apply_steps(optimizer, [a, b, c], [gradients])
    for value, gradient, result, multiplier in zip(initial, gradients, results, (0.25, 0.5, 1.0)):
        expected = reference_adamw(value, [gradient], learning_rate=0.1 * multiplier, weight_decay=0.2)
        np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-7)


def test_half_multiplier_moves_like_adamw_at_half_rate():
    gradients = [[np.array([0.5, -1.0, 3.0], "float32")], [np.array([-0.2, 0.4, 1.0], "float32")],
                 [np.array([0.1, 0.1, -2.0], "float32")]]
    start = np.array([1.0, 2.0, -3.0], "float32")
    scaled_var = keras.Variable(start, name="w")
    scaled = LayerwiseAdamW(learning_rate=0.02, weight_decay=0.1, lr_multipliers={scaled_var.path: 0.5})
    plain_var = keras.Variable(start, name="w")
    plain = keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1)
    np.testing.assert_array_equal(apply_steps(scaled, [scaled_var], gradients),
                                  apply_steps(plain, [plain_var], gradients))


def test_half_multiplier_follows_a_halved_schedule():
    gradients = [[np.array([0.5, -1.0], "float32")], [np.array([-0.2, 0.4], "float32")]] * 3
    start = np.array([1.0, 2.0], "float32")
    schedule = keras.optimizers.schedules.ExponentialDecay(0.02, decay_steps=1, decay_rate=0.5)
    scaled_var = keras.Variable(start, name="w")
    scaled = LayerwiseAdamW(learning_rate=schedule, weight_decay=0.1, lr_multipliers={scaled_var.path: 0.5})
    plain_var = keras.Variable(start, name="w")
    plain = keras.optimizers.AdamW(
        learning_rate=keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=1, decay_rate=0.5),
        weight_decay=0.1)
    np.testing.assert_allclose(apply_steps(scaled, [scaled_var], gradients),
                               apply_steps(plain, [plain_var], gradients), rtol=1e-6)


def test_decay_one_trains_exactly_like_adamw():
    weights = []
    for make_optimizer in (lambda m: LayerwiseAdamW(learning_rate=0.05, weight_decay=0.1,
                                                    lr_multipliers=layer_learning_rate_multipliers(m, 1.0)),
                           lambda m: keras.optimizers.AdamW(learning_rate=0.05, weight_decay=0.1)):
        model = toy_model()
        model.compile(make_optimizer(model), loss="mse")
        model.fit(toy_data(), epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    for scaled, plain in zip(*weights):
        np.testing.assert_array_equal(scaled, plain)


def test_exclude_from_weight_decay_still_applies():
    w = keras.Variable(np.array([1.0, -1.0], "float32"), name="w")
    optimizer = LayerwiseAdamW(learning_rate=0.1, weight_decay=0.5, lr_multipliers={w.path: 0.5})
    optimizer.exclude_from_weight_decay(var_names=["w"])
    gradient = np.array([0.3, 0.3], "float32")
    result = apply_steps(optimizer, [w], [[gradient]])[0]
    expected = reference_adamw(np.array([1.0, -1.0]), [gradient], learning_rate=0.05, weight_decay=0.0)
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_config_round_trips():
    optimizer = LayerwiseAdamW(learning_rate=0.01, weight_decay=0.05, beta_1=0.8,
                               lr_multipliers={"low/kernel": 0.25, "high/kernel": 1})
    config = optimizer.get_config()
    json.dumps(config)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, LayerwiseAdamW)
    assert restored.lr_multipliers == {"low/kernel": 0.25, "high/kernel": 1.0}
    assert restored.get_config() == config


def test_saved_model_resumes_with_its_multipliers(tmp_path):
    model = toy_model()
    model.compile(LayerwiseAdamW(learning_rate=0.05, lr_multipliers=toy_multipliers(model)), loss="mse")
    model.fit(toy_data(), epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert restored.optimizer.lr_multipliers == toy_multipliers(model)
    for m in (model, restored):
        m.fit(toy_data(), epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fine_tune_uses_layer_decay_in_phase2_only(bert_classifier):
    model = bert_classifier
    texts = sentences(POSITIVE, 8, seed=0) + sentences(["bad", "awful"], 8, seed=1)
    data = tf.data.Dataset.from_tensor_slices(
        (model.preprocessor(tf.constant(texts)), tf.constant([1] * 8 + [0] * 8))).batch(8)
    optimizers = []

    class RecordOptimizer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            optimizers.append(self.model.optimizer)

    config = tfxfer.FineTuneConfig(epochs=1, fine_tune_epochs=1, fine_tune_at=1.0, layer_decay=0.5,
                                   global_clipnorm=1.0, early_stopping_patience=None)
    tfxfer.fine_tune(model, data, config=config, callbacks=[RecordOptimizer()])
    phase1, phase2 = optimizers
    assert type(phase1) is keras.optimizers.AdamW
    assert isinstance(phase2, LayerwiseAdamW)
    assert phase1.global_clipnorm == phase2.global_clipnorm == 1.0
    assert phase2.lr_multipliers == layer_learning_rate_multipliers(model, 0.5)
    assert min(phase2.lr_multipliers.values()) == 0.25  # embeddings of the 2-block encoder


def test_fine_tune_with_layer_decay_on_a_non_transformer_fails_before_training(tmp_path):
    write_word_vectors(tmp_path / "vectors.txt", POSITIVE)
    texts = tf.data.Dataset.from_tensor_slices(tf.constant(POSITIVE)).batch(2)
    backbone = tfxfer.load_word_vector_backbone(tmp_path / "vectors.txt", texts, sequence_length=4, encoder="mean")
    model = tfxfer.build_text_classifier(backbone, num_classes=2)
    data = tf.data.Dataset.from_tensor_slices((model.preprocessor(tf.constant(POSITIVE)), [0, 1, 0, 1, 0])).batch(5)
    trained = []

    class RecordEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            trained.append(epoch)

    with pytest.raises(ValueError, match="transformer backbone"):
        tfxfer.fine_tune(model, data, config=tfxfer.FineTuneConfig(layer_decay=0.8), callbacks=[RecordEpochs()])
    assert trained == []


def test_mirrored_strategy_matches_one_device(script_server):
    # A process of its own: the two logical CPU devices must be set before TensorFlow initialises.
    process = script_server.run(os.path.abspath(__file__), "mirrored")
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["frozen_kernel_moved"] == 0.0  # Multiplier 0: no Adam step and no weight decay.
    assert result["max_difference_to_one_device"] < 1e-5
    assert result["difference_to_plain_adamw"] > 1e-3  # The multipliers did act.


def _mirrored():
    """Trains the toy model on two mirrored CPU replicas and on one device; prints JSON."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def train(strategy, layerwise=True):
        with strategy.scope():
            model = toy_model()
            optimizer = (LayerwiseAdamW(learning_rate=0.05, weight_decay=0.1, lr_multipliers=toy_multipliers(model))
                         if layerwise else keras.optimizers.AdamW(learning_rate=0.05, weight_decay=0.1))
            model.compile(optimizer, loss="mse")
        initial = model.get_layer("low").kernel.numpy()
        model.fit(toy_data(), epochs=2, verbose=0, shuffle=False)
        return model, initial

    mirrored, initial = train(strategy)
    single, _ = train(tf.distribute.get_strategy())
    plain, _ = train(tf.distribute.get_strategy(), layerwise=False)
    low_bias = [m.get_layer("low").bias.numpy() for m in (single, plain)]
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "frozen_kernel_moved": float(np.max(np.abs(mirrored.get_layer("low").kernel.numpy() - initial))),
        "max_difference_to_one_device": float(max(np.max(np.abs(a - b)) for a, b in
                                                  zip(mirrored.get_weights(), single.get_weights()))),
        "difference_to_plain_adamw": float(np.max(np.abs(low_bias[0] - low_bias[1]))),
    }))


if __name__ == "__main__" and sys.argv[1:] == ["mirrored"]:
    _mirrored()
