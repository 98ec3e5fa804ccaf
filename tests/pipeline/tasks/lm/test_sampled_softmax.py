"""Sampled softmax trains a tiny LM; evaluation uses the exact full softmax of the same weights."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.tasks.lm.config import LMModelConfig
from pipeline.tasks.lm.model import build_language_model, copy_weights, reset_lstm_states, zero_states
from pipeline.tasks.lm.sampled_softmax import LossPerplexity, per_token_loss, with_targets

VOCAB, BATCH, SEQ = 60, 4, 8


def _windows(rng, n):
    # A learnable stream: token t is followed by t + 1 (mod the non-special range).
    starts = rng.integers(4, VOCAB, size=(BATCH, 1))
    rows = 4 + (starts + np.arange(n * SEQ + 1)) % (VOCAB - 4)
    x = [rows[:, i * SEQ:(i + 1) * SEQ] for i in range(n)]
    y = [rows[:, i * SEQ + 1:(i + 1) * SEQ + 1] for i in range(n)]
    return tf.data.Dataset.from_tensor_slices((np.stack(x).astype("int32"), np.stack(y).astype("int32")))


def test_sampled_softmax_trains_and_evaluation_uses_the_full_softmax():
    keras.utils.set_random_seed(0)
    cfg = LMModelConfig(embedding_dim=16, units=16, layers=1, dropout=0.0, softmax="sampled",
                        sampled_softmax_samples=8)
    train = build_language_model(cfg, VOCAB, stateful=True, batch_size=BATCH)
    assert [w.shape for w in train.get_layer("output_projection").weights] == [(16, VOCAB), (VOCAB,)]
    train.compile(optimizer=keras.optimizers.Adam(0.02), loss=per_token_loss, metrics=[LossPerplexity()])
    ds = with_targets(_windows(np.random.default_rng(0), 20))
    history = train.fit(ds, epochs=4, verbose=0, shuffle=False).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]  # it learns
    assert np.isclose(history["perplexity"][-1], np.exp(history["loss"][-1]), rtol=0.2)

    eval_model = build_language_model(cfg, VOCAB)  # stateless build: ordinary Dense, full softmax
    assert isinstance(eval_model.get_layer("output_projection"), keras.layers.Dense)
    copy_weights(train, eval_model)

    (x, y), _ = next(iter(with_targets(_windows(np.random.default_rng(1), 1))))
    logits = eval_model([x, *map(tf.constant, zero_states(eval_model, BATCH))])[0]
    full_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    reset_lstm_states(train)
    exact = tf.reduce_mean(train([x, y], training=False))  # the layer outside training: full softmax
    np.testing.assert_allclose(float(exact), float(full_ce), rtol=1e-5)
    reset_lstm_states(train)
    sampled = tf.reduce_mean(train([x, y], training=True))
    assert abs(float(sampled) - float(full_ce)) > 1e-3  # training really uses the sampled estimate


def test_sampled_softmax_with_tied_weights_is_a_config_error():
    with pytest.raises(ValueError, match="tie_weights"):
        LMModelConfig(softmax="sampled", tie_weights=True)
