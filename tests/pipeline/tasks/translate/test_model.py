import keras
import numpy as np
import pytest
import tensorflow as tf

from components.models.cudnn import assert_cudnn_eligible, cudnn_problems, lstm_layers
from components.runtime.cpu_features import native_bf16_matmul
from components.text.vocab import EOS_ID, START_ID
from pipeline.tasks.translate.config import TranslatorModelConfig
from pipeline.tasks.translate.decoding import greedy_decode
from pipeline.tasks.translate.model import build_translator, translator_parts, uses_bf16_backward

SRC_V, TGT_V = 40, 50


def _model(**kw):
    keras.utils.set_random_seed(0)
    return build_translator(TranslatorModelConfig(embedding_dim=8, units=16, dropout=0.0, **kw), SRC_V, TGT_V)


def _probe(model, names):
    return keras.Model(model.inputs, [model.get_layer(n).output for n in names])


SOURCE = np.array([[5, 6, 7, EOS_ID, 0, 0], [8, 9, EOS_ID, 0, 0, 0]], dtype="int32")
TARGET_IN = np.array([[START_ID, 11, 12], [START_ID, 13, 0]], dtype="int32")


def test_seed_layer_counts_and_every_lstm_is_cudnn_eligible():
    model = _model()
    names = [ly.name for ly in lstm_layers(model)]
    assert names == ["encoder_lstm_1", "encoder_lstm_2", "decoder_lstm_1", "decoder_lstm_2", "decoder_lstm_3"]
    for layer in lstm_layers(model):
        assert cudnn_problems(layer) == [], layer.name
        assert layer.cell.activation is keras.activations.tanh
        assert layer.cell.recurrent_activation is keras.activations.sigmoid
        assert layer.cell.recurrent_dropout == 0 and not layer.unroll and layer.cell.use_bias
    assert_cudnn_eligible(model)


def test_ineligible_lstm_is_reported():
    inp = keras.Input((None, 4))
    out = keras.layers.LSTM(4, recurrent_dropout=0.1, name="bad")(inp)
    with pytest.raises(ValueError, match="bad"):
        assert_cudnn_eligible(keras.Model(inp, out))


def test_decoder_layer1_starts_from_encoder_top_final_state():
    model = _model()
    enc_out, h, c = _probe(model, ["encoder_lstm_2"])(
        {"source": SOURCE, "target_in": TARGET_IN})
    dec1_seq = _probe(model, ["decoder_lstm_1"])({"source": SOURCE, "target_in": TARGET_IN})[0]
    dec2_seq = _probe(model, ["decoder_lstm_2"])({"source": SOURCE, "target_in": TARGET_IN})[0]
    # Replay step 1 of decoder layer 1 by hand from the encoder's final (h, c).
    emb = model.get_layer("target_embedding")(TARGET_IN[:, 0])
    step_h, _ = model.get_layer("decoder_lstm_1").cell(emb, [h, c])
    np.testing.assert_allclose(dec1_seq[:, 0], step_h, atol=1e-5)
    # ... and it differs from a zero start, so the check can fail.
    zero = tf.zeros_like(h)
    zero_h, _ = model.get_layer("decoder_lstm_1").cell(emb, [zero, zero])
    assert not np.allclose(dec1_seq[:, 0], zero_h, atol=1e-5)
    # Decoder layer 2 starts from zeros in the seed bridge.
    step2_h, _ = model.get_layer("decoder_lstm_2").cell(dec1_seq[:, 0], [zero, zero])
    np.testing.assert_allclose(dec2_seq[:, 0], step2_h, atol=1e-5)


def test_encoder_final_state_ignores_right_padding():
    model = _model()
    probe = _probe(model, ["encoder_lstm_2"])
    _, h_pad, c_pad = probe({"source": SOURCE[:1], "target_in": TARGET_IN[:1]})
    _, h, c = probe({"source": SOURCE[:1, :4], "target_in": TARGET_IN[:1]})
    np.testing.assert_allclose(h_pad, h, atol=1e-5)
    np.testing.assert_allclose(c_pad, c, atol=1e-5)


@pytest.mark.parametrize("bridge,expect", [("layerwise", [True, True, False]), ("dense", [True, True, True]),
                                           ("top_to_first", [True, False, False])])
def test_bridges(bridge, expect):
    assert translator_parts(_model(bridge=bridge)).init_mask == expect


def test_greedy_decode_matches_teacher_forced_model():
    """The step-wise decoder (cells) and the sequence model (layers) agree token by token."""
    model = _model()
    parts = translator_parts(model)
    out = tf.function(lambda s: greedy_decode(parts, s, 7))(tf.constant(SOURCE)).numpy()
    assert out.shape[0] == 2 and out.shape[1] <= 7
    target_in = np.concatenate([np.full((2, 1), START_ID), out[:, :-1]], axis=1).astype("int32")
    logits = model({"source": SOURCE, "target_in": target_in}, training=False)
    replay = np.argmax(logits, axis=-1)
    for row in range(2):
        n = int(np.argmax(out[row] == EOS_ID)) + 1 if (out[row] == EOS_ID).any() else out.shape[1]
        np.testing.assert_array_equal(replay[row, :n], out[row, :n])


def test_residual_keeps_layer_counts_and_cudnn_eligibility_and_changes_outputs():
    # With attention, so the encoder's top output (and its residual sum) is part of the graph.
    plain, residual = _model(attention="general"), _model(attention="general", residual=True)
    assert [ly.name for ly in lstm_layers(residual)] == [ly.name for ly in lstm_layers(plain)]
    assert_cudnn_eligible(residual)
    assert plain.count_params() == residual.count_params()  # an Add has no weights
    adds = sorted(ly.name for ly in residual.layers if isinstance(ly, keras.layers.Add))
    assert adds == ["decoder_residual_2", "decoder_residual_3", "encoder_residual_2"]
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    assert not np.allclose(plain(inputs), residual(inputs))  # same seed, same weights, other wiring


@pytest.mark.parametrize("attention", ["none", "general"])
def test_dropout_reaches_the_attention_query_in_training_only(attention):
    """The top decoder output is dropped too: removing that dropout cost 19 test BLEU on Multi30k."""
    keras.utils.set_random_seed(0)
    model = build_translator(TranslatorModelConfig(embedding_dim=8, units=16, dropout=0.5, attention=attention),
                             SRC_V, TGT_V)
    probe = _probe(model, ["decoder_lstm_3", "decoder_dropout_3"])
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    (lstm_out, _, _), dropped = probe(inputs, training=True)
    assert np.any(dropped.numpy() == 0) and not np.allclose(lstm_out, dropped)
    (lstm_out, _, _), kept = probe(inputs, training=False)
    np.testing.assert_allclose(lstm_out, kept)
    if attention != "none":  # and it is what the attention scores with
        assert model.get_layer("attention_query").input.name == model.get_layer("decoder_dropout_3").output.name



@pytest.mark.parametrize("attention", ["dot", "general"])
def test_scaled_attention_divides_the_scores_by_sqrt_units(attention):
    """Same weights, logits / sqrt(16) = 4: softmax(log w / 4) renormalised gives the scaled weights."""
    plain, scaled = _model(attention=attention), _model(attention=attention, attention_scaled=True)
    assert plain.count_params() == scaled.count_params()  # a fixed scale, no new weights
    for layer in lstm_layers(plain):  # saturated, token-specific outputs: peaked scores
        layer.cell.kernel.assign(layer.cell.kernel * 30.0)
    scaled.set_weights(plain.get_weights())
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    w_plain = _probe(plain, ["attention"])(inputs)[1].numpy()
    w_scaled = _probe(scaled, ["attention"])(inputs)[1].numpy()
    real = SOURCE[:, None, :] != 0  # [B, 1, S] against weights [B, T, S]
    assert np.all(w_scaled[~np.broadcast_to(real, w_scaled.shape)] == 0)
    expect = np.where(real, np.exp(np.log(np.where(real, w_plain, 1.0)) / 4), 0.0)
    expect /= expect.sum(-1, keepdims=True)
    np.testing.assert_allclose(w_scaled, expect, rtol=1e-4, atol=1e-6)
    assert w_plain.max() > 0.4 and w_scaled.max() < w_plain.max()  # peaked, then flatter


def test_bf16_backward_rounds_only_the_gradient_and_keeps_the_model_portable(tmp_path):
    """model.backward_dtype=bfloat16: the same logits and weights as float32, gradients within bf16
    rounding; every LSTM stays cuDNN-eligible and a saved model reloads with the flag."""
    kw = {"attention": "general", "attention_scaled": True, "residual": True}
    exact, bf16 = _model(**kw), _model(backward_dtype="bfloat16", **kw)
    bf16.set_weights(exact.get_weights())
    assert type(bf16.get_layer("output_projection")).__name__ == "Bf16BackwardDense"
    assert all(layer.bf16_backward for layer in lstm_layers(bf16))
    assert not any(layer.bf16_backward for layer in lstm_layers(exact))
    assert_cudnn_eligible(bf16)
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    labels = tf.constant([[11, 12, EOS_ID], [13, EOS_ID, 0]])

    def loss_and_grads(model):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            loss = tf.reduce_mean(loss)
        return logits, tape.gradient(loss, model.trainable_weights)

    (exact_logits, exact_grads), (bf16_logits, bf16_grads) = loss_and_grads(exact), loss_and_grads(bf16)
    np.testing.assert_allclose(bf16_logits.numpy(), exact_logits.numpy(), atol=1e-6)
    differ = 0
    for w, a, b in zip(exact.trainable_weights, exact_grads, bf16_grads):
        a, b = tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy()
        np.testing.assert_allclose(b, a, atol=0.03 * np.abs(a).max() + 1e-9, err_msg=w.path)
        differ += not np.array_equal(a, b)
    assert differ >= 6  # output kernel + the LSTMs' kernels and recurrent kernels at least
    bf16.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert all(layer.bf16_backward for layer in lstm_layers(reloaded))
    np.testing.assert_allclose(reloaded(inputs).numpy(), exact_logits.numpy(), atol=1e-6)


def test_backward_dtype_auto_follows_this_cpu():
    """auto builds the bf16 gradient path exactly where the CPU multiplies bf16 natively."""
    native = native_bf16_matmul()
    assert uses_bf16_backward("auto") is native
    assert uses_bf16_backward("bfloat16") and not uses_bf16_backward("float32")
    model = _model(backward_dtype="auto")
    assert (type(model.get_layer("output_projection")).__name__ == "Bf16BackwardDense") is native
    assert all(layer.bf16_backward is native for layer in lstm_layers(model))
