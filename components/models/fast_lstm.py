"""FastLSTM: keras.layers.LSTM with a faster CPU kernel, and Keras' own cuDNN kernel on GPU.

Why: Keras' generic (non-cuDNN) LSTM runs the whole cell per time step, so the input
projection x_t @ W is a [batch x in x 4u] matmul per step -- at the LM's batch 20 that shape
runs at ~47 GFLOP/s on this CPU while one [time*batch x in x 4u] matmul runs at ~300. TF's
automatic gradient of that loop also accumulates dW and dU with one small matmul per step.

Here, on the CPU path (no GPU, or `use_cudnn=False` as used for portable exports):
  * x @ W + b for all time steps is ONE matmul outside the recurrence (and so are dx, dW, db);
  * only h @ U stays in the loop; the four gates are one sigmoid over [batch, 4u] (the g-gate
    columns are pre-scaled by 2, since tanh(z) = 2 sigmoid(2z) - 1), so the step is few ops;
  * a hand-written backward (tf.custom_gradient): per step only dz @ U^T and a handful of
    elementwise ops (their per-step factors are precomputed for all steps at once); dU is one
    [u x time*batch x 4u] matmul after the loop.

Everything else is Keras': the layer's class, weights, names and config are keras.layers.LSTM's
(h5 and .keras weight paths unchanged), and whenever Keras would take its cuDNN kernel (a GPU is
visible and the arguments allow it) this layer calls Keras unchanged. Configurations the fast
kernel does not cover (input or recurrent dropout, other activations, no bias, unroll) also
fall back to Keras. Masks, initial states, `return_state`, `return_sequences`, `go_backwards`
and `stateful` keep Keras' generic-kernel semantics: a masked step carries the previous state
and repeats the previous output (zeros before the first real step).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from components.models.bf16_projection import matmul_bf16_backward, matmul_in_bf16

# Gate order is Keras': i, f, g (cell candidate), o.


def _gate_vectors(units: int, dtype) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """scale (2 on the g gate), offset (-1 on g) and the derivative factor's shift (1 on g)."""
    ones = tf.ones([units], dtype)
    zeros = tf.zeros([units], dtype)
    scale = tf.concat([ones, ones, 2.0 * ones, ones], 0)
    offset = tf.concat([zeros, zeros, -ones, zeros], 0)
    return scale, offset, offset * -1.0


def _forward_loop(xw, h0, c0, u, mask):
    """Forward steps: returns per-step gate activations, tanh(c), carried h and c, outputs, final h, c."""
    n_steps = tf.shape(xw)[0]
    dtype = xw.dtype
    units = u.shape[0]
    _, offset, shift = _gate_vectors(units, dtype)
    masked = mask is not None
    state_shape = tf.TensorShape([xw.shape[1], units])
    acts = tf.TensorArray(dtype, size=n_steps, element_shape=state_shape[:1].concatenate([4 * units]))
    tcs, hs, cs = (tf.TensorArray(dtype, size=n_steps, element_shape=state_shape) for _ in range(3))
    outs = tf.TensorArray(dtype, size=n_steps, element_shape=state_shape) if masked else tf.zeros([0], dtype)
    h0 = tf.ensure_shape(h0, state_shape)
    c0 = tf.ensure_shape(c0, state_shape)

    def step(t, h, c, out, acts, tcs, hs, cs, outs):
        s = tf.sigmoid(xw[t] + tf.matmul(h, u))
        act = s * (1.0 + shift) + offset  # g = 2 sigmoid(2z) - 1 = tanh(z)
        i, f, g, o = tf.split(act, 4, axis=1)
        c_new = f * c + i * g
        tc = tf.tanh(c_new)
        h_new = o * tc
        if masked:
            m = mask[t]
            h_new = h + m * (h_new - h)
            c_new = c + m * (c_new - c)
            out = out + m * (o * tc - out)
            outs = outs.write(t, out)
        return (t + 1, h_new, c_new, out, acts.write(t, act), tcs.write(t, tc), hs.write(t, h_new),
                cs.write(t, c_new), outs)

    _, h_last, c_last, _, acts, tcs, hs, cs, outs = tf.while_loop(
        lambda t, *_: t < n_steps, step, (tf.constant(0), h0, c0, tf.zeros_like(h0), acts, tcs, hs, cs, outs))
    hs = hs.stack()
    return acts.stack(), tcs.stack(), hs, cs.stack(), outs.stack() if masked else hs, h_last, c_last


def _backward_loop(d_outputs, d_h_last, d_c_last, acts, tcs, hs, cs, h0, c0, u, mask, bf16=False):
    """Backward steps: returns dz' for all steps [T, B, 4u], dU', dh0, dc0.

    bf16: dU' (one big matmul after the loop) takes bf16 inputs; the per-step dz @ U^T, which
    carries the gradient through time, stays float32.
    """
    n_steps = tf.shape(acts)[0]
    units = u.shape[0]
    _, _, shift = _gate_vectors(units, acts.dtype)
    masked = mask is not None
    # Per-step factors for all steps at once (big elementwise ops outside the loop).
    i, f, g, o = tf.split(acts, 4, axis=2)
    c_prev = tf.concat([c0[None], cs[:-1]], 0)
    h_prev = tf.concat([h0[None], hs[:-1]], 0)
    # d act / d z' (z' the prescaled pre-activation): s(1-s) for sigmoid gates; for g,
    # act = 2 s - 1 so d act / d z' = 2 s (1 - s) = (1 - g^2) / 2.
    d_act = (1.0 - acts) * (acts + shift) * (1.0 - 0.5 * shift)
    p = tf.concat([g, c_prev, i, tcs], 2) * d_act  # dz' = [dc, dc, dc, dh] * p
    r = o * (1.0 - tcs * tcs)  # dc += dh * r

    def back(t, dh, dc, d_out, dzs):
        if masked:
            m = mask[t]
            d_out = d_out + d_outputs[t]
            dh_new = m * (dh + d_out)  # grad reaching this step's fresh h
            dc_new = m * dc
            d_out_prev = d_out - m * d_out
            dh_keep, dc_keep = dh - m * dh, dc - m * dc
        else:
            dh_new, dc_new = dh + d_outputs[t], dc
        dc_new = dc_new + dh_new * r[t]
        dz = tf.concat([dc_new, dc_new, dc_new, dh_new], 1) * p[t]
        dh_prev = tf.matmul(dz, u, transpose_b=True)
        dc_prev = dc_new * f[t]
        if masked:
            dh_prev, dc_prev, d_out = dh_prev + dh_keep, dc_prev + dc_keep, d_out_prev
        return t - 1, dh_prev, dc_prev, d_out, dzs.write(t, dz)

    dzs = tf.TensorArray(acts.dtype, size=n_steps, element_shape=acts.shape[1:])
    _, dh0, dc0, _, dzs = tf.while_loop(
        lambda t, *_: t >= 0, back, (n_steps - 1, tf.ensure_shape(d_h_last, hs.shape[1:]),
                                     tf.ensure_shape(d_c_last, hs.shape[1:]), tf.zeros_like(hs[0]), dzs))
    dzs = dzs.stack()
    h_flat, dz_flat = tf.reshape(h_prev, [-1, units]), tf.reshape(dzs, [-1, 4 * units])
    if bf16:
        du = matmul_in_bf16(h_flat, dz_flat, dzs.dtype, transpose_a=True)
    else:
        du = tf.matmul(h_flat, dz_flat, transpose_a=True)
    return dzs, du, dh0, dc0


# XLA fuses each step's elementwise work into one kernel and removes the per-op dispatch of the
# loop (2x200 LSTM, batch 20 x 35 steps: forward+backward 43 -> 33 ms). It compiles once per
# shape, so FastLSTM uses it only in training and when the shapes are static at trace time (the
# LM's fixed windows): not for the translator's variable-length batches (a new shape would mean a
# new compile), and never in inference graphs, so exported SavedModels need no XLA.
_forward_jit = tf.function(_forward_loop, jit_compile=True)
_backward_jit = tf.function(_backward_loop, jit_compile=True)


def _recurrence(xw, h0, c0, u, mask, jit: bool | None = None, bf16: bool = False):
    """The LSTM recurrence over a precomputed, g-prescaled input projection (time-major).

    xw [T, B, 4u] = (x @ W + b) * scale; u [units, 4u] = U * scale; mask [T, B, 1] float or None.
    Returns outputs [T, B, units] and the final (h, c). jit None: XLA when xw's shape is static.
    """
    if jit is None:
        jit = xw.shape.is_fully_defined()
    fwd, bwd = (_forward_jit, _backward_jit) if jit else (_forward_loop, _backward_loop)

    @tf.custom_gradient
    def run(xw, h0, c0, u, mask_value):
        # stop_gradient: the gradient is `grad` below; an eager tape must not also record the
        # loop's own (XLA-incompatible) gradient accumulators.
        acts, tcs, hs, cs, outputs, h_last, c_last = fwd(*(tf.stop_gradient(v) for v in (xw, h0, c0, u)), mask)

        def grad(d_outputs, d_h_last, d_c_last):
            dzs, du, dh0, dc0 = bwd(d_outputs, d_h_last, d_c_last, acts, tcs, hs, cs, h0, c0, u, mask, bf16)
            return dzs, dh0, dc0, du, None

        return (outputs, h_last, c_last), grad

    mask_value = mask if mask is not None else tf.zeros([0], xw.dtype)
    return run(xw, h0, c0, u, mask_value)


def fast_lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias, mask=None, go_backwards=False,
                       jit: bool | None = None, bf16_backward: bool = False):
    """[B, T, in] -> (outputs [B, T, units], h_T, c_T) with Keras LSTM semantics (generic kernel).

    `mask` [B, T] (bool or 0/1); with `go_backwards` the sequence is processed last step first
    and the outputs are in processing order, as Keras returns them. jit: XLA for the recurrence
    (None: when the shapes are static at trace time). bf16_backward: the gradient matmuls outside
    the loop (dx, dW, dU) take bf16 inputs (float32 results); the forward is float32 either way.
    """
    units = recurrent_kernel.shape[0]
    scale, _, _ = _gate_vectors(units, x.dtype)
    xt = tf.transpose(x, [1, 0, 2])  # time-major
    if go_backwards:
        xt = tf.reverse(xt, [0])
    shape = tf.shape(xt)
    matmul = matmul_bf16_backward if bf16_backward else tf.matmul
    xw = matmul(tf.reshape(xt, [-1, shape[2]]), kernel * scale) + bias * scale
    xw = tf.reshape(xw, [shape[0], shape[1], 4 * units])
    mask_t = None
    if mask is not None:
        mask_t = tf.cast(tf.transpose(tf.reshape(mask, tf.shape(mask)[:2]), [1, 0]), x.dtype)[:, :, None]
        if go_backwards:
            mask_t = tf.reverse(mask_t, [0])
    outputs, h, c = _recurrence(xw, h0, c0, recurrent_kernel * scale, mask_t, jit, bf16_backward)
    return tf.transpose(outputs, [1, 0, 2]), h, c


@keras.saving.register_keras_serializable(package="pipeline", name="FastLSTM")
class LSTM(keras.layers.LSTM):
    """keras.layers.LSTM with the CPU kernel above; same weights, config and GPU (cuDNN) path.

    The class is named LSTM because Keras derives weight-file paths from the class name
    (`layers/lstm/cell/vars/0`): weights saved from either class load into the other.
    Import it as FastLSTM; it is registered for .keras files as `pipeline>FastLSTM`.

    bf16_backward=True: in training on the CPU kernel, the gradient matmuls outside the recurrence
    (dx, dW, dU: three of the layer's four backward matmuls) run in bf16; the forward, the
    per-step gradient through time and the weights stay float32. It enters the config only when set.
    """

    def __init__(self, units, bf16_backward: bool = False, **kwargs):
        super().__init__(units, **kwargs)
        self.bf16_backward = bool(bf16_backward)

    def get_config(self):
        config = super().get_config()
        if self.bf16_backward:
            config["bf16_backward"] = True
        return config

    def fast_kernel_problems(self) -> list[str]:
        """Why this layer would use Keras' generic kernel on CPU (empty: the fast kernel)."""
        cell = self.cell
        problems = []
        if keras.backend.backend() != "tensorflow":
            problems.append("backend is not tensorflow")
        if cell.dropout or cell.recurrent_dropout:
            problems.append("dropout / recurrent_dropout inside the layer")
        if cell.activation is not keras.activations.tanh or \
                cell.recurrent_activation is not keras.activations.sigmoid:
            problems.append("activation must be tanh, recurrent_activation sigmoid")
        if not cell.use_bias:
            problems.append("use_bias=False")
        if self.unroll:
            problems.append("unroll=True")
        if self.compute_dtype != "float32":
            problems.append(f"compute dtype {self.compute_dtype} (the kernel is float32 only)")
        return problems

    def _keras_takes_cudnn(self) -> bool:
        from keras.src.backend.tensorflow.rnn import cudnn_ok

        cell = self.cell
        return self.use_cudnn in ("auto", True) and not cell.recurrent_dropout and cudnn_ok(
            cell.activation, cell.recurrent_activation, self.unroll, cell.use_bias)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if self._keras_takes_cudnn() or self.fast_kernel_problems():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        cell = self.cell
        outputs, h, c = fast_lstm_sequence(
            sequences, initial_state[0], initial_state[1], tf.convert_to_tensor(cell.kernel),
            tf.convert_to_tensor(cell.recurrent_kernel), tf.convert_to_tensor(cell.bias), mask=mask,
            go_backwards=self.go_backwards, jit=None if training else False,
            bf16_backward=bool(training) and self.bf16_backward)
        return outputs[:, -1], outputs, [h, c]


FastLSTM = LSTM
