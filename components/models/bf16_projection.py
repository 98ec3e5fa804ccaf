"""Matmuls with a bfloat16 backward pass and an exact float32 forward (output projections, LSTMs).

Why not Keras' `mixed_bfloat16` Dense: it rounds the logits themselves to bf16 (8-bit mantissa),
and TF's CPU matmul has no bf16-in / float32-out kernel, so every logit carries an error of
~0.4% of its size; over a 6-epoch word-LM run that cost +7.7% validation perplexity (and +1.5%
with the bias add and softmax moved back to float32). Here the forward matmul, the logits, the
softmax and the loss stay float32, so the loss the model optimises and the perplexity it reports
are exact; only the two gradient matmuls (dW = x^T dy and dx = dy W^T, two thirds of the
layer's FLOPs) take bf16 inputs (AVX512-BF16 / AMX on this CPU) and return float32.
Used by the LM's and the translator's output projections and by FastLSTM's input-projection and
recurrent-weight gradients (`bf16_backward`). Outside training (evaluation, export) the layer is
a plain float32 Dense, so inference graphs hold no custom gradient.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def matmul_in_bf16(a, b, out_dtype=tf.float32, **kwargs):
    """tf.matmul(a, b, **kwargs) on bf16-rounded inputs (a no-op cast for inputs already in bf16),
    returned as out_dtype (TF's CPU matmul has no bf16-in / float32-out kernel, so the result is
    rounded to bf16 once more before the cast)."""
    return tf.cast(tf.matmul(tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16), **kwargs), out_dtype)


@tf.custom_gradient
def matmul_bf16_backward(x, kernel):
    """x [..., in] @ kernel [in, out] in float32; its two gradient matmuls in bf16 (float32 results)."""
    def grad(dy):
        dy16 = tf.cast(dy, tf.bfloat16)  # once: dy is the largest tensor here ([tokens, vocabulary])
        dx = matmul_in_bf16(dy16, kernel, x.dtype, transpose_b=True)
        x2 = tf.reshape(x, [-1, tf.shape(x)[-1]])
        dy2 = tf.reshape(dy16, [-1, tf.shape(dy)[-1]])
        return dx, matmul_in_bf16(x2, dy2, kernel.dtype, transpose_a=True)

    return tf.matmul(x, kernel), grad


@keras.saving.register_keras_serializable(package="lm")
class Bf16BackwardDense(keras.layers.Dense):
    """keras.layers.Dense (same weights and names) whose gradient matmuls run in bf16; no activation."""

    def call(self, inputs, training=None):
        if not training:  # same numbers either way; inference graphs stay a plain Dense
            return super().call(inputs)
        return matmul_bf16_backward(inputs, tf.convert_to_tensor(self.kernel)) + self.bias
