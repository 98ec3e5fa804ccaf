"""Masked sequence losses and metrics.

Hand-written because Keras' SparseCategoricalCrossentropy has no label smoothing and
its implicit mask handling would double-count with an explicit one. Padding (id 0)
contributes nothing: the loss is the mean over real target tokens of the (global) batch.
Under a multi-replica strategy each replica returns its share of that mean (its token-loss
sum over the global token count); Keras sums gradients across replicas and multiplies the
logged per-replica loss by the replica count, so both mean what they mean on one device.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from components.text.vocab import PAD_ID


def token_mask(y_true) -> tf.Tensor:
    return tf.cast(tf.not_equal(y_true, PAD_ID), tf.float32)


def per_token_cross_entropy(y_true, logits, label_smoothing: float = 0.0) -> tf.Tensor:
    """Per-token (label-smoothed) cross-entropy from logits, without a [.., V] log-probability tensor.

    The fused sparse op computes -log p(y) and its own gradient (softmax - onehot) in one pass.
    Label smoothing stays exact: its term -mean_v log p(v) = logsumexp(z) - mean(z), and
    logsumexp(z) = -log p(y) + z_y, so it needs only the label's logit and the logits' mean.
    """
    y_true = tf.cast(y_true, tf.int32)
    logits = tf.cast(logits, tf.float32)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_true, logits=logits)
    if label_smoothing:
        label_logit = tf.gather(logits, y_true, batch_dims=y_true.shape.rank)
        smooth = nll + label_logit - tf.reduce_mean(logits, axis=-1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    return nll


def global_token_count(mask) -> tf.Tensor:
    """Real target tokens in the whole global batch: summed over replicas when data-parallel.

    Each replica divides its token-loss sum by this, so the replicas' gradients sum to the
    single-device gradient of the batch mean, whatever the split of tokens between them."""
    tokens = tf.reduce_sum(mask)
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        tokens = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tokens)
    return tokens


def masked_cross_entropy(label_smoothing: float = 0.0):
    def masked_loss(y_true, logits):
        mask = token_mask(y_true)
        ce = per_token_cross_entropy(y_true, logits, label_smoothing)
        return tf.reduce_sum(ce * mask) / tf.maximum(global_token_count(mask), 1.0)
    masked_loss.__name__ = "masked_loss"
    return masked_loss


class MaskedTokenAccuracy(keras.metrics.Metric):
    """Accuracy over real (non-pad) target tokens, accumulated across batches."""

    def __init__(self, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, logits, sample_weight=None):
        mask = token_mask(y_true)
        hit = tf.cast(tf.equal(tf.cast(y_true, tf.int32), tf.argmax(logits, -1, output_type=tf.int32)),
                      tf.float32)
        self.correct.assign_add(tf.reduce_sum(hit * mask))
        self.total.assign_add(tf.reduce_sum(mask))

    def result(self):
        return self.correct / tf.maximum(self.total, 1.0)
