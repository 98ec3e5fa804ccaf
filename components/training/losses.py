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

    Each form is one fused op that computes the loss and its own gradient in a single pass: the
    sparse op (-log p(y), gradient softmax - onehot) without smoothing; with smoothing the dense op
    on the smoothed target distribution (1 - e) onehot(y) + e / V, whose loss is exactly
    (1 - e)(-log p(y)) + e (-mean_v log p(v)). An earlier form added the smoothing term from a
    gather of the label's logit: its gradient, a scatter into a zero [tokens x V] tensor, cost
    as much as an output-projection matmul (Multi30k step profile, docs/benchmarks.md).
    """
    y_true = tf.cast(y_true, tf.int32)
    logits = tf.cast(logits, tf.float32)
    if not label_smoothing:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_true, logits=logits)
    vocab = tf.shape(logits)[-1]
    off = label_smoothing / tf.cast(vocab, tf.float32)
    targets = tf.one_hot(y_true, vocab, on_value=1.0 - label_smoothing + off, off_value=off)
    return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)


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
