"""The stacked-LSTM language model: seed architecture, weight tying, cuDNN eligibility, TBPTT state."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from components.models.cudnn import cudnn_problems, lstm_layers
from pipeline.tasks.lm.config import LMModelConfig
from pipeline.tasks.lm.model import build_language_model, copy_weights, reset_lstm_states, zero_states
from pipeline.tasks.lm.tbptt import ResetStates

V = 37  # p0 (not a multiple of 4 * units, so only vocab matrices have it)


def _cfg(p1=8, p2=8, n=2, tie=False, dropout=0.0):
    return LMModelConfig(embedding_dim=p1, units=p2, layers=n, dropout=dropout, tie_weights=tie)


def _model(cfg, **kw):
    keras.utils.set_random_seed(0)
    return build_language_model(cfg, V, **kw)


def _core_layers(model):
    """The layers that carry weights, in graph order (Input and Dropout left out)."""
    return [ly for ly in model.layers if not isinstance(ly, (keras.layers.InputLayer, keras.layers.Dropout))]


@pytest.mark.parametrize("stateful", [False, True])
def test_seed_architecture_when_p1_equals_p2(stateful):
    model = _model(_cfg(p1=8, p2=8, n=3), stateful=stateful, batch_size=4)
    layers = _core_layers(model)
    kinds = [type(ly).__name__ for ly in layers]
    assert kinds == ["ReversibleEmbedding", "LSTM", "LSTM", "LSTM", "Dense"]  # no Dense before the LSTMs
    emb, *lstms, out = layers
    assert emb.embeddings.shape == (V, 8)  # p0 -> p1
    for lstm in lstms:
        assert lstm.units == 8 and lstm.return_sequences  # width p2
    assert out.kernel.shape == (8, V) and out.activation is keras.activations.linear  # softmax is in the loss
    logits = model.outputs[0]
    assert logits.shape[-1] == V


def test_seed_architecture_when_p1_differs_from_p2():
    model = _model(_cfg(p1=6, p2=10, n=2))
    layers = _core_layers(model)
    assert [type(ly).__name__ for ly in layers] == ["ReversibleEmbedding", "Dense", "LSTM", "LSTM", "Dense"]
    emb, proj, l1, l2, out = layers
    assert proj.name == "input_projection" and proj.kernel.shape == (6, 10)  # Dense p1 -> p2
    assert proj.activation is keras.activations.linear
    assert l1.units == l2.units == 10 and out.kernel.shape == (10, V)


def test_dropout_between_layers_never_inside_the_recurrence():
    model = _model(_cfg(n=2, dropout=0.3))
    names = [ly.name for ly in model.layers if isinstance(ly, keras.layers.Dropout)]
    assert names == ["embedding_dropout", "lstm_dropout_1", "lstm_dropout_2"]
    assert all(ly.rate == 0.3 for ly in model.layers if isinstance(ly, keras.layers.Dropout))
    for lstm in lstm_layers(model):
        assert lstm.cell.recurrent_dropout == 0 and lstm.cell.dropout == 0


@pytest.mark.parametrize("cfg", [_cfg(), _cfg(p1=6, p2=10, tie=True), _cfg(n=3, tie=True, dropout=0.2)])
@pytest.mark.parametrize("stateful", [False, True])
def test_every_lstm_is_cudnn_eligible(cfg, stateful):
    model = _model(cfg, stateful=stateful, batch_size=3)
    assert len(lstm_layers(model)) == cfg.layers
    for layer in lstm_layers(model):
        assert cudnn_problems(layer) == [], layer.name
        assert layer.cell.activation is keras.activations.tanh
        assert layer.cell.recurrent_activation is keras.activations.sigmoid
        assert not layer.unroll and layer.cell.use_bias


def _probe(model, name):
    return keras.Model(model.inputs, model.get_layer(name).output)


@pytest.mark.parametrize("p1,p2", [(8, 8), (6, 10)])
def test_tied_weights_share_one_variable(p1, p2):
    model = _model(_cfg(p1=p1, p2=p2, tie=True))
    vocab_matrices = [w for w in model.trainable_weights if V in w.shape and len(w.shape) == 2]
    assert len(vocab_matrices) == 1 and vocab_matrices[0] is model.get_layer("embedding").embeddings
    assert "output_projection" not in [ly.name for ly in model.layers]
    if p1 != p2:
        assert model.get_layer("tie_projection").kernel.shape == (p2, p1)  # LSTM output back to p1
    # The logits really are (projected) h @ E^T + b, with the embedding's own variable.
    x = np.array([[5, 6, 7]], "int32")
    states = zero_states(model, 1)
    top = _probe(model, "tie_projection" if p1 != p2 else "lstm_dropout_2")([x, *states])
    emb = model.get_layer("embedding").embeddings
    bias = model.get_layer("output_bias").bias
    logits = model([x, *states])[0]
    np.testing.assert_allclose(logits, np.asarray(top) @ np.asarray(emb).T + np.asarray(bias), atol=1e-5)
    # Changing the one matrix changes the input embedding and the output layer alike.
    emb.assign(emb * 2.0)
    assert not np.allclose(model([x, *states])[0], logits, atol=1e-5)


def test_training_and_inference_builds_share_layout():
    cfg = _cfg(p1=6, p2=10, tie=True)
    infer, train = _model(cfg), _model(cfg, stateful=True, batch_size=2)
    assert [w.shape for w in infer.weights] == [w.shape for w in train.weights]
    copy_weights(infer, train)
    x = np.random.default_rng(0).integers(4, V, (2, 7)).astype("int32")
    np.testing.assert_allclose(train(x), infer([x, *zero_states(infer, 2)])[0], atol=1e-5)


def test_state_carries_second_window_starts_from_first_windows_final_state():
    cfg = _cfg(p1=6, p2=10, n=2)
    train, infer = _model(cfg, stateful=True, batch_size=2), _model(cfg)
    copy_weights(train, infer)
    rng = np.random.default_rng(1)
    w1, w2 = (rng.integers(4, V, (2, 5)).astype("int32") for _ in range(2))

    _, *final1 = infer([w1, *zero_states(infer, 2)])
    final1 = [np.asarray(s) for s in final1]
    train(w1)
    carried = [np.asarray(v) for layer in lstm_layers(train) for v in layer.states]
    # The state the training build holds after window 1 is window 1's final (h, c) ...
    for got, want in zip(carried, final1):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # ... and window 2 starts from it, not from zeros.
    out2 = train(w2)
    np.testing.assert_allclose(out2, infer([w2, *final1])[0], atol=1e-5)
    assert not np.allclose(out2, infer([w2, *zero_states(infer, 2)])[0], atol=1e-4)
    # Window 1 + window 2 carried == the concatenation read in one go.
    whole = infer([np.concatenate([w1, w2], 1), *zero_states(infer, 2)])[0]
    np.testing.assert_allclose(out2, np.asarray(whole)[:, 5:], atol=1e-5)
    reset_lstm_states(train)
    assert all(not np.asarray(v).any() for layer in lstm_layers(train) for v in layer.states)


class _RecordStates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []  # (epoch, batch, |state| at batch begin)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        norm = sum(float(np.abs(np.asarray(v)).sum()) for ly in lstm_layers(self.model) for v in ly.states)
        self.seen.append((self.epoch, batch, norm))


def test_fit_carries_state_across_windows_and_resets_at_each_epoch():
    cfg = _cfg(n=2)
    model = _model(cfg, stateful=True, batch_size=2)
    model.compile(optimizer=keras.optimizers.SGD(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(2).integers(4, V, (3, 2, 6)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.roll(x, -1, axis=2)))
    record = _RecordStates()
    model.fit(ds, epochs=2, callbacks=[ResetStates(), record], shuffle=False, verbose=0)
    by_batch = {(e, b): n for e, b, n in record.seen}
    assert by_batch[(0, 0)] == 0 and by_batch[(1, 0)] == 0  # zeros at every epoch start
    assert by_batch[(0, 1)] > 0 and by_batch[(0, 2)] > 0 and by_batch[(1, 1)] > 0  # carried in between


def test_inference_build_saves_and_reloads():
    import tempfile
    from pathlib import Path

    model = _model(_cfg(p1=6, p2=10, tie=True))
    x = np.array([[4, 5, 6]], "int32")
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m.keras")
        again = keras.saving.load_model(Path(tmp) / "m.keras", compile=False)
    for a, b in zip(model([x, *zero_states(model, 1)]), again([x, *zero_states(model, 1)])):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_stateful_build_needs_a_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        build_language_model(_cfg(), V, stateful=True)
