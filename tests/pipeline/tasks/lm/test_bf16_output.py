"""model.output_dtype=bfloat16: the training build's output projection computes its gradient matmuls in
bf16; its forward logits stay exact float32, as in the inference build (evaluation, export)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from components.models.bf16_projection import Bf16BackwardDense, matmul_bf16_backward
from pipeline.tasks.lm.config import LMModelConfig
from pipeline.tasks.lm.model import build_language_model, copy_weights, reset_lstm_states, zero_states

VOCAB, BATCH, SEQ = 60, 4, 8


def _windows(n, seed=0):
    # A learnable stream: token t is followed by t + 1 (mod the non-special range).
    starts = np.random.default_rng(seed).integers(4, VOCAB, size=(BATCH, 1))
    rows = 4 + (starts + np.arange(n * SEQ + 1)) % (VOCAB - 4)
    x = np.stack([rows[:, i * SEQ:(i + 1) * SEQ] for i in range(n)]).astype("int32")
    y = np.stack([rows[:, i * SEQ + 1:(i + 1) * SEQ + 1] for i in range(n)]).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y))


def test_bf16_projection_trains_and_inference_stays_float32():
    keras.utils.set_random_seed(0)
    cfg = LMModelConfig(embedding_dim=16, units=16, layers=1, dropout=0.0, output_dtype="bfloat16")
    train = build_language_model(cfg, VOCAB, stateful=True, batch_size=BATCH)
    projection = train.get_layer("output_projection")
    assert isinstance(projection, Bf16BackwardDense)
    assert [w.dtype for w in projection.weights] == ["float32", "float32"]  # master weights stay float32
    assert train.output.dtype == "float32"  # the softmax/loss sees float32 logits

    train.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = train.fit(_windows(20), epochs=4, verbose=0, shuffle=False).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]  # it learns

    eval_model = build_language_model(cfg, VOCAB)  # inference build: float32 throughout
    assert eval_model.get_layer("output_projection").compute_dtype == "float32"
    copy_weights(train, eval_model)
    (x, y), = _windows(1, seed=1).take(1)
    reset_lstm_states(train)
    bf16_logits = train(x, training=False)
    f32_logits = eval_model([x, *map(tf.constant, zero_states(eval_model, BATCH))])[0]
    # Same weights: the forward (logits, so the loss and perplexity) is the float32 one.
    np.testing.assert_allclose(bf16_logits.numpy(), f32_logits.numpy(), atol=1e-5)


def test_bf16_backward_gradient_is_close_but_computed_in_bf16():
    x = tf.random.stateless_normal([2, 5, 16], seed=[1, 2])
    kernel = tf.random.stateless_normal([16, 40], seed=[3, 4])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        fast = matmul_bf16_backward(x, kernel)
        exact = tf.matmul(x, kernel)
        fast_loss, exact_loss = tf.reduce_sum(tf.sin(fast)), tf.reduce_sum(tf.sin(exact))
    np.testing.assert_array_equal(fast.numpy(), exact.numpy())  # forward: plain float32
    for g_fast, g_exact in zip(tape.gradient(fast_loss, [x, kernel]), tape.gradient(exact_loss, [x, kernel])):
        assert g_fast.dtype == tf.float32
        scale = float(tf.reduce_max(tf.abs(g_exact)))
        np.testing.assert_allclose(g_fast.numpy(), g_exact.numpy(), atol=0.02 * scale)  # bf16: ~3 digits
        assert not np.array_equal(g_fast.numpy(), g_exact.numpy())  # bf16 really ran


def test_bf16_with_tied_or_sampled_output_is_a_config_error():
    with pytest.raises(ValueError, match="output_dtype"):
        LMModelConfig(output_dtype="bfloat16", tie_weights=True)
    with pytest.raises(ValueError, match="output_dtype"):
        LMModelConfig(output_dtype="bfloat16", softmax="sampled")
