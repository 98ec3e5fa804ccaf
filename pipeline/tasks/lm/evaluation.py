"""Language-model metrics and samples.

Perplexity is computed as the classic scripts do: the split is one token stream (line
terminators included), batchified into `batch_size` contiguous rows, read in windows
with the LSTM state carried across the whole split; the per-token cross-entropies are
summed over every predicted token and

    loss = sum CE / tokens,   perplexity = exp(loss),   bits per character = loss / ln 2.

Because the state carries, the window length only changes speed, not the result.
"""
from __future__ import annotations

import math

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from components.text.vocab import TextEncoder, Vocabulary
from pipeline.tasks.lm.data import display_tokens, ids_text, join_prompt, terminator_id, text_ids, windows
from pipeline.tasks.lm.model import num_layers, zero_states


def metrics_from_ce(total_ce: float, tokens: int, char_level: bool = False) -> dict[str, float]:
    """loss = mean CE per token (nats), perplexity = exp(loss); bpc = loss / ln 2 at char level."""
    loss = total_ce / max(tokens, 1)
    out = {"loss": loss, "perplexity": math.exp(loss) if loss < 700 else float("inf"), "tokens": tokens}
    if char_level:
        out["bpc"] = loss / math.log(2)
    return out


def _window_step(model: keras.Model):
    """tf.function (cached on the model): one window -> (sum of per-token CE, final states)."""
    step = getattr(model, "_lm_window_step", None)
    if step is None:
        n = num_layers(model)
        state_spec = [tf.TensorSpec([None, None], tf.float32)] * (2 * n)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                                      tf.TensorSpec([None, None], tf.int32), state_spec])
        def step(x, y, states):
            logits, *new_states = model([x, *states], training=False)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.cast(logits, tf.float32))
            return tf.reduce_sum(tf.cast(ce, tf.float64)), new_states

        model._lm_window_step = step
    return step


def stream_metrics(model: keras.Model, stream: np.ndarray, batch_size: int, seq_len: int,
                   char_level: bool = False) -> dict[str, float]:
    """Perplexity (and bpc) of an inference model over a whole token stream, state carried."""
    step = _window_step(model)
    states = [tf.constant(s) for s in zero_states(model, batch_size)]
    total, tokens = 0.0, 0
    for x, y in windows(stream, batch_size, seq_len):
        ce, states = step(tf.constant(x), tf.constant(y), states)
        total += float(ce.numpy())
        tokens += y.size
    return metrics_from_ce(total, tokens, char_level)


# ------------------------------------------------------------------ samples (keras-hub samplers)

def make_sampler(temperature: float, top_k: int, seed: int | None = None,
                 vocab_size: int | None = None) -> keras_hub.samplers.Sampler:
    """temperature 0 -> greedy; top_k > 0 -> top-k; otherwise sampling from the whole softmax.

    A top_k at or above the vocabulary size keeps every token, so it is whole-softmax sampling
    (keras-hub's TopKSampler would fail on k > vocabulary inside `tf.math.top_k`); the exported
    `generate` signature clamps the same way."""
    if temperature <= 0:
        return keras_hub.samplers.GreedySampler()
    if top_k > 0 and (vocab_size is None or top_k < vocab_size):
        return keras_hub.samplers.TopKSampler(k=top_k, temperature=temperature, seed=seed)
    return keras_hub.samplers.RandomSampler(temperature=temperature, seed=seed)


def keras_hub_generate(model: keras.Model, vocab: Vocabulary, prompts: list[str], max_tokens: int,
                       sampler: keras_hub.samplers.Sampler) -> list[str]:
    """Continue each prompt by `max_tokens` tokens with a keras-hub sampler driving the LSTM.

    keras-hub's sampler loop fills a [B, max_length] buffer left to right, calling
    `next(prompt, cache, index)` for the logits at `index`; positions inside a prompt keep
    the prompt token. With the (h, c) states as the cache, each call feeds the token at
    `index - 1` through one LSTM step, so prompts of different lengths batch naturally.
    Returns prompt + continuation, formatted like the exported `generate` signature.
    """
    encoder = TextEncoder(vocab)
    term = terminator_id(vocab)
    ids = text_ids(encoder, tf.constant(prompts), term, terminate_last=False)
    lengths = ids.row_lengths().numpy()
    width = int(lengths.max()) + max_tokens
    buffer = ids.to_tensor(0, shape=[len(prompts), width])
    mask = tf.sequence_mask(lengths, width)

    def next_fn(prompt, cache, index):
        token = prompt[:, index - 1][:, None]
        logits, *states = model([token, *cache], training=False)
        return logits[:, 0, :], None, list(states)

    @tf.function
    def run(buffer, mask, cache):
        return sampler(next_fn, buffer, cache=cache, index=1, mask=mask)

    cache = [tf.constant(s) for s in zero_states(model, len(prompts))]
    out = run(buffer, mask, cache).numpy()
    generated = [out[i, lengths[i]:lengths[i] + max_tokens] for i in range(len(prompts))]
    text = ids_text(tf.constant(display_tokens(vocab)), tf.ragged.constant(generated, dtype=tf.int32,
                                                                          ragged_rank=1), vocab.kind)
    joined = join_prompt(tf.constant(prompts), text, vocab.kind)
    return [s.decode("utf-8") for s in joined.numpy()]
