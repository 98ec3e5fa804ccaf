"""FastLSTM is keras.layers.LSTM with a faster CPU kernel: same weights -> same outputs and gradients."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from components.export.checks import assert_portable
from components.export.servable import graph_op_types
from components.models.cudnn import cudnn_problems, portable_lstms
from components.models.fast_lstm import FastLSTM, fast_lstm_sequence

B, T, D, U = 3, 6, 5, 4
ATOL = 1e-5


def _pair(**kwargs):
    """A Keras LSTM and a FastLSTM with the same (non-trivial) weights."""
    ref = keras.layers.LSTM(U, **kwargs)
    fast = FastLSTM(U, **kwargs)
    ref.build((B, T, D))
    fast.build((B, T, D))
    rng = np.random.default_rng(1)
    weights = [w + 0.5 * rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    fast.set_weights(weights)
    return ref, fast


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D)).astype("float32")
    h0, c0 = (rng.normal(size=(B, U)).astype("float32") for _ in range(2))
    mask = np.ones((B, T), bool)
    mask[0, 4:] = False  # right padding
    mask[1, :2] = False  # left padding: outputs before the first real step are zeros
    mask[2, 3] = False   # a hole
    return tf.constant(x), tf.constant(h0), tf.constant(c0), tf.constant(mask)


def _outputs_and_grads(layer, x, h0, c0, mask, use_mask, use_state, graph):
    def run(x, h0, c0):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            kwargs = {"mask": mask} if use_mask else {}
            if use_state:
                kwargs["initial_state"] = [h0, c0]
            out = layer(x, **kwargs)
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
            # A loss that weights every output and state differently, so every gradient path counts.
            loss = sum(tf.reduce_sum(o * o * tf.sin(tf.range(U, dtype=tf.float32) + k)) for k, o in enumerate(outs))
        wrt = [x, *layer.trainable_weights, h0, c0]
        grads = tape.gradient(loss, wrt)
        return outs, [tf.zeros_like(v) if g is None else g for g, v in zip(grads, wrt)]

    if graph:  # unknown time and batch dimensions in the trace: the non-XLA loop
        spec = [tf.TensorSpec([None, None, D]), tf.TensorSpec([None, U]), tf.TensorSpec([None, U])]
        run = tf.function(run, input_signature=spec)
    return run(x, h0, c0)


@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("use_state", [False, True])
@pytest.mark.parametrize("layer_kwargs", [
    {"return_sequences": True, "return_state": True},
    {"return_sequences": False, "return_state": True},
    {"return_sequences": True, "go_backwards": True},
])
@pytest.mark.parametrize("graph", [False, True])
def test_same_outputs_and_gradients_as_keras_lstm(use_mask, use_state, layer_kwargs, graph):
    ref, fast = _pair(**layer_kwargs)
    x, h0, c0, mask = _data()
    ref_out, ref_grads = _outputs_and_grads(ref, x, h0, c0, mask, use_mask, use_state, graph)
    fast_out, fast_grads = _outputs_and_grads(fast, x, h0, c0, mask, use_mask, use_state, graph)
    assert len(ref_out) == len(fast_out)
    for a, b in zip(ref_out, fast_out):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=ATOL)
    for a, b in zip(ref_grads, fast_grads):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_xla_and_plain_loops_agree(jit):
    """The training path compiles the loops with XLA when shapes are static; both kernels are the same maths."""
    ref, fast = _pair(return_sequences=True, return_state=True)
    x, h0, c0, mask = _data()
    cell = fast.cell
    with tf.GradientTape() as tape:
        tape.watch(x)
        out, h, c = fast_lstm_sequence(x, h0, c0, cell.kernel, cell.recurrent_kernel, cell.bias, mask=mask, jit=jit)
        loss = tf.reduce_sum(out * out) + tf.reduce_sum(h) + tf.reduce_sum(c * c)
    dx = tape.gradient(loss, x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        ref_out, ref_h, ref_c = ref(x, initial_state=[h0, c0], mask=mask)
        ref_loss = tf.reduce_sum(ref_out * ref_out) + tf.reduce_sum(ref_h) + tf.reduce_sum(ref_c * ref_c)
    np.testing.assert_allclose(out.numpy(), ref_out.numpy(), atol=ATOL)
    np.testing.assert_allclose(dx.numpy(), tape.gradient(ref_loss, x).numpy(), atol=ATOL, rtol=1e-5)


def test_stateful_carries_state_like_keras():
    ref, fast = _pair(return_sequences=True, stateful=True)
    x, *_ = _data()
    for _ in range(2):  # the second window starts from the first window's final state
        np.testing.assert_allclose(fast(x).numpy(), ref(x).numpy(), atol=ATOL)
    for a, b in zip(ref.states, fast.states):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=ATOL)


def test_cudnn_eligible_and_fast_kernel_by_construction():
    layer = FastLSTM(U, return_sequences=True)
    assert cudnn_problems(layer) == []
    assert layer.fast_kernel_problems() == []
    assert isinstance(layer, keras.layers.LSTM)
    assert FastLSTM(U, dropout=0.1).fast_kernel_problems()  # falls back to Keras' generic kernel


def test_keras_cudnn_path_is_taken_unchanged_when_a_gpu_is_visible(monkeypatch):
    """With a GPU, Keras' own LSTM.inner_loop (and so its cuDNN kernel) runs, not the CPU kernel."""
    import importlib

    tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")

    calls = []

    def fake_cudnn(*args, **kwargs):
        calls.append(args)
        raise NotImplementedError  # no real GPU here: Keras falls back to its generic loop

    monkeypatch.setattr(tf_rnn, "_is_gpu_available", lambda: True)
    monkeypatch.setattr(tf_rnn, "_cudnn_lstm", fake_cudnn)
    ref, fast = _pair(return_sequences=True)
    x, *_ = _data()
    np.testing.assert_allclose(fast(x).numpy(), ref(x).numpy(), atol=ATOL)
    assert len(calls) == 2  # both layers asked Keras' cuDNN kernel
    with portable_lstms(keras.Sequential([fast])):
        fast(x)  # use_cudnn=False (export tracing): the portable CPU kernel, no cuDNN call
    assert len(calls) == 2


def _model(layer_cls):
    inp = keras.Input((None, D))
    out = layer_cls(U, return_sequences=True, name="lstm")(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(out))


def test_save_load_keras_and_weights_round_trip(tmp_path):
    x, *_ = _data()
    model = _model(FastLSTM)
    expected = model(x).numpy()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("lstm")) is FastLSTM
    np.testing.assert_allclose(loaded(x).numpy(), expected, atol=1e-6)
    # Weight files are interchangeable with keras.layers.LSTM (same layer names and weight paths).
    model.save_weights(tmp_path / "m.weights.h5")
    plain = _model(keras.layers.LSTM)
    plain.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(plain(x).numpy(), expected, atol=ATOL)


def test_saved_model_export_has_no_cudnn_or_xla_ops(tmp_path):
    model = _model(FastLSTM)
    x, *_ = _data()
    with portable_lstms(model):
        module = tf.Module()
        module.model = model
        module.serve = tf.function(lambda x: model(x, training=False),
                                   input_signature=[tf.TensorSpec([None, None, D])])
        tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    assert_portable(tmp_path / "sm")
    ops = graph_op_types(tmp_path / "sm")
    assert "While" in ops or "StatelessWhile" in ops  # the fast kernel's loop, not an unrolled graph
    assert not any("Xla" in op for op in ops)
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(reloaded.signatures["serving_default"](x=x)["output_0"].numpy(),
                               model(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("use_mask", [False, True])
def test_bf16_backward_keeps_the_forward_and_rounds_only_the_gradient_matmuls(use_mask):
    """bf16_backward: the same outputs as float32; gradients within bf16 rounding, but not bit-equal."""
    _, exact = _pair(return_sequences=True, return_state=True)
    bf16 = FastLSTM(U, return_sequences=True, return_state=True, bf16_backward=True)
    bf16.build((B, T, D))
    bf16.set_weights(exact.get_weights())
    x, h0, c0, mask = _data()

    def run(layer):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            outs = layer(x, initial_state=[h0, c0], mask=mask if use_mask else None, training=True)
            loss = sum(tf.reduce_sum(o * o * tf.sin(tf.range(U, dtype=tf.float32) + k)) for k, o in enumerate(outs))
        return outs, tape.gradient(loss, [x, *layer.trainable_weights, h0, c0])

    exact_out, exact_grads = run(exact)
    bf16_out, bf16_grads = run(bf16)
    for a, b in zip(exact_out, bf16_out):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-6)  # forward: float32, unchanged
    names = ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0"]
    for name, a, b in zip(names, exact_grads, bf16_grads):
        assert b.dtype == tf.float32
        scale = float(tf.reduce_max(tf.abs(a)))
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=0.03 * scale, err_msg=name)
    # dx, dW and dU come from bf16 matmuls; db, dh0 and dc0 do not involve one outside the loop.
    for name in ("x", "kernel", "recurrent_kernel"):
        i = names.index(name)
        assert not np.array_equal(bf16_grads[i].numpy(), exact_grads[i].numpy()), name
    # Inference (training=False) and the config: a plain FastLSTM whose flag survives a round trip.
    inference = bf16(x, initial_state=[h0, c0], mask=mask if use_mask else None)[0]
    np.testing.assert_allclose(inference.numpy(), exact_out[0].numpy(), atol=1e-6)
    assert FastLSTM.from_config(bf16.get_config()).bf16_backward
    assert "bf16_backward" not in exact.get_config()  # default configs are unchanged
