import numpy as np
import tensorflow as tf

from components.training.losses import MaskedTokenAccuracy, masked_cross_entropy, per_token_cross_entropy


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_masked_loss_ignores_padding_numerically():
    rng = np.random.default_rng(0)
    y = np.array([[4, 5, 3, 0, 0], [6, 3, 0, 0, 0]], dtype="int32")
    logits = rng.normal(size=(2, 5, 8)).astype("float32")
    loss = float(masked_cross_entropy()(tf.constant(y), tf.constant(logits)))
    # By hand: mean of -log p(y) over the 5 real tokens only.
    lp = _log_softmax(logits.astype("float64"))
    real = [(b, t) for b in range(2) for t in range(5) if y[b, t] != 0]
    expected = -np.mean([lp[b, t, y[b, t]] for b, t in real])
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # Changing the logits at padded positions changes nothing.
    noisy = logits.copy()
    noisy[y == 0] += rng.normal(scale=10.0, size=noisy[y == 0].shape)
    np.testing.assert_allclose(float(masked_cross_entropy()(tf.constant(y), tf.constant(noisy))), loss, rtol=1e-6)
    # Whereas an unmasked mean would differ.
    unmasked = -np.mean([lp[b, t, y[b, t]] for b in range(2) for t in range(5)])
    assert abs(unmasked - expected) > 1e-3


def test_label_smoothing_by_hand():
    y = np.array([[1, 0]], dtype="int32")
    logits = np.array([[[2.0, 0.5, -1.0], [9.0, 9.0, 9.0]]], dtype="float32")
    lp = _log_softmax(logits[0, 0].astype("float64"))
    expected = 0.9 * -lp[1] + 0.1 * -lp.mean()
    np.testing.assert_allclose(float(masked_cross_entropy(0.1)(tf.constant(y), tf.constant(logits))), expected,
                               rtol=1e-5)


def test_fused_label_smoothed_loss_and_gradient_match_the_log_softmax_formula():
    """The fused sparse form (no [.., V] log-probabilities) is the textbook formula, value and gradient."""
    rng = np.random.default_rng(1)
    y = tf.constant(rng.integers(1, 50, size=(3, 7)).astype("int32"))
    logits = tf.constant(rng.normal(scale=3.0, size=(3, 7, 50)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        fused = per_token_cross_entropy(y, logits, 0.1)
        log_probs = tf.nn.log_softmax(logits)
        reference = 0.9 * -tf.gather(log_probs, y, batch_dims=2) + 0.1 * -tf.reduce_mean(log_probs, -1)
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(fused, logits).numpy(), tape.gradient(reference, logits).numpy(),
                               atol=1e-6)


def test_masked_token_accuracy_counts_real_tokens_only():
    y = tf.constant([[1, 2, 0], [2, 0, 0]])
    logits = tf.one_hot([[1, 0, 0], [2, 1, 1]], 3)  # 2 of 3 real tokens right; padding "wrong"
    m = MaskedTokenAccuracy()
    m.update_state(y, logits)
    np.testing.assert_allclose(float(m.result()), 2 / 3, rtol=1e-6)
