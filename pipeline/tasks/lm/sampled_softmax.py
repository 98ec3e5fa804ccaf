"""Sampled softmax for language models with large vocabularies (Jean et al. 2015).

With a vocabulary of V words the output layer's matmul, softmax and gradient cost
O(batch x steps x V) per window and dominate a small LSTM's training time. Sampled softmax
trains on the target plus `num_sampled` classes drawn from a log-uniform (Zipfian)
distribution, which suits frequency-sorted vocabularies (ids 4.. are sorted by count),
with the expected-count correction of `tf.nn.sampled_softmax_loss` (a well-kept TF op, not
hand-rolled maths). Only training uses it: evaluation, generation and the export use the
stateless build with the ordinary full-softmax `Dense` output, whose weights are this
layer's (same name and shapes: kernel [units, V], bias [V]), so every reported perplexity
is the exact one.

The training build feeds the targets into the model (`[tokens, targets] -> per-token loss`),
so Keras' loss is the identity on that output (`per_token_loss`), and the dataset yields
`((x, y), y)` (`with_targets`).
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="lm")
class SampledSoftmaxOutput(keras.layers.Layer):
    """`[hidden [B, T, p], targets [B, T]] -> per-token loss [B, T]`.

    training=True: sampled-softmax loss; otherwise the exact full-softmax cross-entropy (so a
    training build evaluated by Keras still reports the true loss).
    """

    def __init__(self, vocab_size: int, num_sampled: int, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.num_sampled = min(num_sampled, vocab_size - 1)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        units = input_shape[0][-1]
        # Same names, shapes and order as keras.layers.Dense, so weights copy to the eval build.
        self.kernel = self.add_weight(shape=(units, self.vocab_size), initializer=self.kernel_initializer,
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")

    def call(self, inputs, training=None):
        hidden, targets = inputs
        hidden = tf.cast(hidden, self.kernel.dtype)
        shape = tf.shape(targets)
        flat_hidden = tf.reshape(hidden, [-1, tf.shape(hidden)[-1]])
        flat_targets = tf.reshape(tf.cast(targets, tf.int64), [-1, 1])
        if training:
            loss = tf.nn.sampled_softmax_loss(
                weights=tf.transpose(self.kernel), biases=self.bias, labels=flat_targets, inputs=flat_hidden,
                num_sampled=self.num_sampled, num_classes=self.vocab_size, remove_accidental_hits=True)
        else:
            logits = tf.matmul(flat_hidden, self.kernel) + self.bias
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=flat_targets[:, 0], logits=logits)
        return tf.reshape(loss, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "num_sampled": self.num_sampled,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


def per_token_loss(y_true, y_pred):
    """Keras loss for a model whose output already is the per-token loss."""
    del y_true
    return y_pred


class LossPerplexity(keras.metrics.Mean):
    """exp(mean per-token loss) of a model that outputs its loss. Under sampled softmax this is
    the sampled estimate (lower than the true perplexity), hence only for training logs."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_pred, sample_weight=sample_weight)

    def result(self):
        return tf.exp(super().result())


def with_targets(ds: tf.data.Dataset) -> tf.data.Dataset:
    """(x, y) windows -> ((x, y), y): the sampled-softmax training build takes the targets as input."""
    return ds.map(lambda x, y: ((x, y), y))
