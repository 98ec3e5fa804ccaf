"""The seed's encoder-decoder translator as a Keras functional model.

    source + <eos> -> Embedding -> N_enc stacked LSTM (encoder)
    top encoder layer's final (h, c) --bridge--> initial state of decoder layer 1
    <start> + target -> Embedding -> N_dec stacked LSTM (decoder) -> Dense -> softmax

Optionally (model.attention = dot | general) Luong-style global attention: the decoder top
layer's output attends over the encoder top layer's outputs (source padding masked), and
tanh(W [context; h]) feeds the output layer. The seed's state bridge stays either way.

With model.residual, every LSTM layer above the first adds its input to its output (GNMT,
Wu et al. 2016): the same layers, but gradients reach the lower layers of a deep stack directly.

The training model returns logits; the softmax is fused into the loss (numerically
stabler) and applied explicitly at decode time. Dropout sits between layers, never
inside the recurrence, so every LSTM stays cuDNN-eligible.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from components.models.bf16_projection import Bf16BackwardDense
from components.models.cudnn import assert_cudnn_eligible
from components.models.fast_lstm import FastLSTM
from components.runtime.cpu_features import native_bf16_matmul


def _lstm(units: int, name: str, bf16_backward: bool = False) -> keras.layers.LSTM:
    # Every argument here is what cuDNN requires; do not add recurrent_dropout. FastLSTM is
    # keras.layers.LSTM with a faster CPU kernel (components/models/fast_lstm.py).
    return FastLSTM(units, return_sequences=True, return_state=True, activation="tanh",
                    recurrent_activation="sigmoid", use_bias=True, unroll=False,
                    recurrent_dropout=0.0, name=name, bf16_backward=bf16_backward)


def bridge_states(kind: str, encoder_states: list, decoder_layers: int, units: int) -> list:
    """Initial (h, c) per decoder layer; None means zeros.

    top_to_first: the seed, encoder top layer -> decoder layer 1.
    layerwise: encoder layer i -> decoder layer i (as far as both exist).
    dense: a learned tanh projection of the top state into every decoder layer.
    """
    init: list = [None] * decoder_layers
    if kind == "top_to_first":
        init[0] = list(encoder_states[-1])
    elif kind == "layerwise":
        for i in range(min(len(encoder_states), decoder_layers)):
            init[i] = list(encoder_states[i])
    elif kind == "dense":
        h, c = encoder_states[-1]
        for i in range(decoder_layers):
            init[i] = [keras.layers.Dense(units, activation="tanh", name=f"bridge_h_{i + 1}")(h),
                       keras.layers.Dense(units, activation="tanh", name=f"bridge_c_{i + 1}")(c)]
    else:
        raise ValueError(f"unknown bridge {kind!r}; allowed: top_to_first, layerwise, dense")
    return init


def uses_bf16_backward(backward_dtype: str) -> bool:
    """model.backward_dtype -> whether training's gradient matmuls take bf16 inputs (`auto`: where
    this CPU multiplies bf16 natively, components/runtime/cpu_features.py)."""
    return backward_dtype == "bfloat16" or (backward_dtype == "auto" and native_bf16_matmul())


def build_translator(cfg, source_vocab_size: int, target_vocab_size: int) -> keras.Model:
    """cfg: a TranslatorModelConfig (embedding_dim, units, encoder/decoder_layers, dropout, bridge)."""
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")

    # mask_zero: the encoder's final state must be taken at the last real token, not after padding.
    x = keras.layers.Embedding(source_vocab_size, cfg.embedding_dim, mask_zero=True,
                               name="source_embedding")(source)
    x = keras.layers.Dropout(cfg.dropout, name="source_embedding_dropout")(x)
    residual = cfg.residual
    bf16 = uses_bf16_backward(cfg.backward_dtype)  # gradient matmuls only; the forward stays float32
    encoder_states = []
    for i in range(cfg.encoder_layers):
        out, h, c = _lstm(cfg.units, f"encoder_lstm_{i + 1}", bf16)(x)
        encoder_states.append((h, c))
        x = keras.layers.Add(name=f"encoder_residual_{i + 1}")([x, out]) if residual and i > 0 else out
        if i < cfg.encoder_layers - 1:
            x = keras.layers.Dropout(cfg.dropout, name=f"encoder_dropout_{i + 1}")(x)
    init = bridge_states(cfg.bridge, encoder_states, cfg.decoder_layers, cfg.units)

    # No mask on the decoder: padding is right-aligned, so it cannot affect real steps,
    # and the loss masks it explicitly (one mechanism, not two).
    y = keras.layers.Embedding(target_vocab_size, cfg.embedding_dim, name="target_embedding")(target_in)
    y = keras.layers.Dropout(cfg.dropout, name="target_embedding_dropout")(y)
    attention = cfg.attention
    for j in range(cfg.decoder_layers):
        out, _, _ = _lstm(cfg.units, f"decoder_lstm_{j + 1}", bf16)(y, initial_state=init[j])
        # Dropout on every decoder layer, the top one (the attention query) included: without it
        # the decoder leans on its own language model and learns to use the source far later
        # (Multi30k, 12 epochs: test BLEU 7.6 without, 27.0 with; docs/training.md).
        out = keras.layers.Dropout(cfg.dropout, name=f"decoder_dropout_{j + 1}")(out)
        y = keras.layers.Add(name=f"decoder_residual_{j + 1}")([y, out]) if residual and j > 0 else out
    if attention != "none":
        y = _luong_attention(attention, cfg.units, y, x, cfg.attention_scaled)
        y = keras.layers.Dropout(cfg.dropout, name="attention_dropout")(y)
    dense = Bf16BackwardDense if bf16 else keras.layers.Dense
    logits = dense(target_vocab_size, name="output_projection")(y)
    model = keras.Model({"source": source, "target_in": target_in}, logits, name="translator")
    assert_cudnn_eligible(model)
    return model


def _luong_attention(score: str, units: int, decoder_out, encoder_out, scaled: bool = False):
    """Luong et al. (2015) global attention; the Keras layer masks source padding (mask_zero)."""
    query = decoder_out
    if score == "general":  # h_t^T W h_s == (W^T h_t) . h_s
        query = keras.layers.Dense(units, use_bias=False, name="attention_query")(query)
    if scaled:  # scores / sqrt(units): keeps the softmax soft while the alignment is learned
        query = keras.layers.Rescaling(units ** -0.5, name="attention_scale")(query)
    context, _ = keras.layers.Attention(score_mode="dot", name="attention")(
        [query, encoder_out], return_attention_scores=True)
    merged = keras.layers.Concatenate(name="attention_concat")([context, decoder_out])
    return keras.layers.Dense(units, activation="tanh", name="attention_combine")(merged)


@dataclass
class TranslatorParts:
    """The trained layers regrouped for step-by-step decoding (shared weights, no copies)."""
    encoder: keras.Model  # source ids -> [encoder outputs, *initial decoder states]
    init_mask: list[bool]  # which decoder layers get a bridged state (others start at zero)
    target_embedding: keras.layers.Embedding
    decoder_cells: list
    output_projection: keras.layers.Dense
    units: int
    attention: keras.layers.Attention | None = None
    attention_query: keras.layers.Dense | None = None
    attention_combine: keras.layers.Dense | None = None
    attention_scale: keras.layers.Rescaling | None = None
    residual: bool = False  # decoder layers above the first add their input to their output

    def initial_states(self, source_ids):
        outputs = self.encoder(source_ids, training=False)
        enc_out, flat = outputs[0], list(outputs[1:])
        batch = tf.shape(source_ids)[0]
        zeros = tf.zeros([batch, self.units], enc_out.dtype)
        states = []
        for has_state in self.init_mask:
            states.append([flat.pop(0), flat.pop(0)] if has_state else [zeros, zeros])
        return enc_out, states

    def step(self, tokens, states, encoder_out=None, source_mask=None):
        """One decoder step on [B] token ids -> ([B, V] logits, new states).

        With attention, `encoder_out` [B, S, U] and `source_mask` [B, S] are required.
        """
        x = self.target_embedding(tokens)
        new_states = []
        for j, (cell, state) in enumerate(zip(self.decoder_cells, states)):
            out, state = cell(x, state, training=False)
            x = x + out if self.residual and j > 0 else out
            new_states.append(list(state))
        if self.attention is not None:
            query = x if self.attention_query is None else self.attention_query(x)
            if self.attention_scale is not None:
                query = self.attention_scale(query)
            context = self.attention([query[:, None, :], encoder_out], mask=[None, source_mask])[:, 0, :]
            x = self.attention_combine(tf.concat([context, x], axis=-1))
        return self.output_projection(x), new_states


def translator_parts(model: keras.Model) -> TranslatorParts:
    decoder_lstms = sorted((ly for ly in model.layers if ly.name.startswith("decoder_lstm_")),
                           key=lambda ly: int(ly.name.rsplit("_", 1)[1]))
    # Recover each decoder layer's initial-state tensors from the functional graph.
    init_tensors, init_mask = [], []
    for layer in decoder_lstms:
        node = layer._inbound_nodes[0]
        state = node.arguments.kwargs.get("initial_state")
        init_mask.append(state is not None)
        if state is not None:
            init_tensors.extend(state)
    source = model.get_layer("source_embedding").input
    names = {ly.name for ly in model.layers}
    encoder_lstms = [ly for ly in model.layers if ly.name.startswith("encoder_lstm_")]
    top = f"encoder_residual_{len(encoder_lstms)}"  # with residuals the top output is a sum
    enc_out = model.get_layer(top).output if top in names else encoder_lstms[-1].output[0]
    encoder = keras.Model(source, [enc_out, *init_tensors], name="encoder")
    optional = {n: model.get_layer(n) if n in names else None
                for n in ("attention", "attention_query", "attention_combine", "attention_scale")}
    return TranslatorParts(encoder, init_mask, model.get_layer("target_embedding"),
                           [ly.cell for ly in decoder_lstms], model.get_layer("output_projection"),
                           decoder_lstms[0].units, **optional,
                           residual="decoder_residual_2" in names)
