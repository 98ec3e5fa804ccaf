"""The seed's stacked-LSTM language model as Keras functional models.

    tokens (vocab p0) -> Embedding (p0 -> p1) -> Dense (p1 -> p2, only when p1 != p2)
      -> N stacked LSTM (width p2, return_sequences) -> Dense (p2 -> p0) -> softmax

The softmax is fused into the loss (numerically stabler); the models return logits and
generation/scoring apply `log_softmax` explicitly. Dropout (Zaremba et al. 2014) sits
after the embedding, between LSTM layers and before the output layer, never inside the
recurrence, so every LSTM stays cuDNN-eligible. With `tie_weights` the output layer is
the embedding matrix transposed (Press & Wolf 2017) plus an output bias; when p2 != p1
the LSTM output is first projected back to p1 by a linear Dense.

Two builds of the same architecture, with the same layer names and weights:

* training (`stateful=True`, fixed batch size): every LSTM keeps its final (h, c) in
  non-trainable state variables and starts the next window from them -- truncated BPTT
  over contiguous streams, as the classic PTB scripts do. A callback resets them at each
  epoch start (`pipeline.tasks.lm.tbptt`). With `softmax: sampled` it takes
  `[tokens, targets]` and outputs the per-token sampled-softmax loss
  (`pipeline.tasks.lm.sampled_softmax`); its output layer has the Dense's weights.
* inference (`stateful=False`, any batch size): explicit state inputs and outputs,
  `[tokens, h_1, c_1, ..., h_N, c_N] -> [logits, h_1, c_1, ..., h_N, c_N]`, so evaluation,
  generation and the exported SavedModel carry state themselves.
"""
from __future__ import annotations

import keras
import numpy as np

from components.models.bf16_projection import Bf16BackwardDense
from components.models.cudnn import assert_cudnn_eligible, lstm_layers
from components.models.fast_lstm import FastLSTM

# The classic PyTorch word_language_model initialises embedding and decoder U(-0.1, 0.1).
_INIT_RANGE = 0.1


@keras.saving.register_keras_serializable(package="lm")
class OutputBias(keras.layers.Layer):
    """A per-vocabulary bias added to tied logits (the tied output layer has no bias of its own)."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.size,), initializer="zeros", name="bias")

    def call(self, logits):
        return logits + self.bias

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _lstm(units: int, name: str, stateful: bool) -> keras.layers.LSTM:
    # Every argument here is what cuDNN requires; do not add recurrent_dropout. FastLSTM is
    # keras.layers.LSTM with a faster CPU kernel (components/models/fast_lstm.py).
    return FastLSTM(units, return_sequences=True, return_state=not stateful, stateful=stateful,
                    activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                    unroll=False, recurrent_dropout=0.0, name=name)


def state_names(layers: int) -> list[str]:
    return [f"{kind}_{i + 1}" for i in range(layers) for kind in ("h", "c")]


def build_language_model(cfg, vocab_size: int, *, stateful: bool = False,
                         batch_size: int | None = None) -> keras.Model:
    """cfg: an LMModelConfig (embedding_dim p1, units p2, layers N, dropout, tie_weights)."""
    if stateful and not batch_size:
        raise ValueError("a stateful (training) language model needs a fixed batch_size")
    p1, p2 = cfg.embedding_dim, cfg.units
    uniform = keras.initializers.RandomUniform(-_INIT_RANGE, _INIT_RANGE)
    sampled = stateful and getattr(cfg, "softmax", "full") == "sampled"
    if sampled and cfg.tie_weights:
        raise ValueError("model.softmax=sampled does not support model.tie_weights=true")
    if stateful:
        tokens = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="tokens")
        inputs, init_states = tokens, [None] * cfg.layers
        if sampled:
            targets = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="targets")
            inputs = [tokens, targets]
    else:
        tokens = keras.Input((None,), dtype="int32", name="tokens")
        states_in = [keras.Input((p2,), name=name) for name in state_names(cfg.layers)]
        inputs = [tokens, *states_in]
        init_states = [states_in[2 * i:2 * i + 2] for i in range(cfg.layers)]

    embedding = keras.layers.ReversibleEmbedding(vocab_size, p1, tie_weights=True,
                                                 embeddings_initializer=uniform, name="embedding")
    x = embedding(tokens)
    x = keras.layers.Dropout(cfg.dropout, name="embedding_dropout")(x)
    if p1 != p2:
        x = keras.layers.Dense(p2, name="input_projection")(x)
    states_out = []
    for i in range(cfg.layers):
        layer = _lstm(p2, f"lstm_{i + 1}", stateful)
        if stateful:
            x = layer(x)
        else:
            x, h, c = layer(x, initial_state=init_states[i])
            states_out += [h, c]
        x = keras.layers.Dropout(cfg.dropout, name=f"lstm_dropout_{i + 1}")(x)
    if cfg.tie_weights:
        if p2 != p1:
            x = keras.layers.Dense(p1, name="tie_projection")(x)
        logits = OutputBias(vocab_size, name="output_bias")(embedding(x, reverse=True))
    elif sampled:
        # Training only: outputs the per-token sampled-softmax loss; the weights are the Dense's.
        from pipeline.tasks.lm.sampled_softmax import SampledSoftmaxOutput

        logits = SampledSoftmaxOutput(vocab_size, cfg.sampled_softmax_samples, kernel_initializer=uniform,
                                      name="output_projection")([x, targets])
    else:
        # bfloat16: the training build's largest matmul (units x vocabulary, every token) computes its
        # gradient in bf16; the forward logits, softmax and loss stay float32 (bf16_projection.py).
        # The inference build (evaluation, export) is the plain Dense.
        bf16 = stateful and getattr(cfg, "output_dtype", "float32") == "bfloat16"
        dense = Bf16BackwardDense if bf16 else keras.layers.Dense
        logits = dense(vocab_size, kernel_initializer=uniform, name="output_projection")(x)
    outputs = logits if stateful else [logits, *states_out]
    model = keras.Model(inputs, outputs, name="lm_train" if stateful else "lm")
    assert_cudnn_eligible(model)
    return model


def zero_states(model: keras.Model, batch_size: int) -> list[np.ndarray]:
    """Initial (h, c) for every layer of an inference model, as numpy zeros."""
    return [np.zeros((batch_size, layer.units), "float32") for layer in lstm_layers(model) for _ in (0, 1)]


def reset_lstm_states(model: keras.Model) -> None:
    """Zero the carried state of every stateful LSTM (start of an epoch / of a text)."""
    for layer in lstm_layers(model):
        if layer.stateful:
            layer.reset_state()


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy weights layer by layer (by name) between the training and inference builds.

    The stateful layers' carried states are not weights, so the two builds line up exactly.
    """
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def num_layers(model: keras.Model) -> int:
    return len(lstm_layers(model))
