"""Export the language model as a self-contained SavedModel in TF Serving layout.

Signatures (every input and output batched along dim 0, so TF Serving's row format works):

* `generate` (= `serving_default`): `prompt` string [None], `max_tokens` int32 [None],
  `temperature` float32 [None] (0 = greedy), `top_k` int32 [None] (0 = whole vocabulary)
  -> `outputs` string [None]: the prompt followed by `max_tokens` generated tokens.
* `generate_seeded`: the same plus `seed` int32 [None]; each row samples from a stateless
  RNG keyed by (its seed, step), so a row's result does not depend on its batch mates.
* `score`: `inputs` string [None] -> `log_likelihood` float32 [None] (natural log, summed
  over the predicted tokens), `perplexity` float32 [None] (exp of minus the mean), `tokens`
  int32 [None]. Each text's lines are scored as in the training stream: every line ends
  with `<eos>` (word level) or "\\n" (char level) -- a missing final line end is added --
  and the first token is predicted after a line end.

The graph holds the vocabulary tables, the tokenizer and the generation loop, built only
from core TF ops (no tensorflow-text, no XLA-only ops, no CudnnRNN: the LSTMs are traced
with the generic kernel), so plain `tf.saved_model.load` and TF Serving run it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from components.export.checks import ExportCheckError
from components.export.servable import save_servable
from components.export.warmup import lm_warmup_requests
from components.models.cudnn import lstm_layers, portable_lstms
from components.text.vocab import TextEncoder, Vocabulary
from pipeline.tasks.lm.data import display_tokens, ids_text, join_prompt, terminator_id, text_ids

_STRINGS = tf.TensorSpec([None], tf.string)
_INTS = tf.TensorSpec([None], tf.int32)
_FLOATS = tf.TensorSpec([None], tf.float32)


def _max0(x: tf.Tensor) -> tf.Tensor:
    """max over a possibly empty vector, at least 0."""
    return tf.reduce_max(tf.concat([tf.reshape(x, [-1]), tf.zeros([1], x.dtype)], 0))


class LMServing(tf.Module):
    """generate / score around an inference-build language model (explicit states)."""

    def __init__(self, model, vocab: Vocabulary):
        super().__init__(name="lm_serving")
        self.model = model
        self.model_variables = list(model.variables)  # explicit, so the save tracks them all
        self.encoder = TextEncoder(vocab, name="encoder")
        self.display = tf.constant(display_tokens(vocab))
        self._kind = vocab.kind
        self._terminator = terminator_id(vocab)
        self._units = [layer.units for layer in lstm_layers(model)]

    # ---------------------------------------------------------------- building blocks
    def _zero_states(self, batch):
        return [tf.zeros([batch, units]) for units in self._units for _ in (0, 1)]

    def _step(self, tokens, states):
        logits, *states = self.model([tokens[:, None], *states], training=False)
        return tf.cast(logits[:, 0, :], tf.float32), states

    @staticmethod
    def _next_tokens(logits, temperature, top_k, seed, t):
        greedy = tf.argmax(logits, -1, output_type=tf.int32)
        scaled = logits / tf.where(temperature > 0, temperature, 1.0)[:, None]
        vocab = tf.shape(logits)[1]
        k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)

        def keep_top_k():
            values = tf.math.top_k(scaled, _max0(k)).values
            threshold = tf.gather(values, k - 1, batch_dims=1)
            return tf.where(scaled < threshold[:, None], tf.constant(-float("inf")), scaled)

        scaled = tf.cond(tf.reduce_any(k < vocab), keep_top_k, lambda: scaled)
        if seed is None:
            sampled = tf.random.categorical(scaled, 1, dtype=tf.int32)[:, 0]
        else:
            seeds = tf.stack([seed, tf.fill(tf.shape(seed), t)], axis=1)
            sampled = tf.map_fn(
                lambda row: tf.random.stateless_categorical(row[0][None], 1, seed=row[1], dtype=tf.int32)[0, 0],
                (scaled, seeds), fn_output_signature=tf.int32)
        return tf.where(temperature > 0, sampled, greedy)

    def generate_ids(self, prompt, max_tokens, temperature, top_k, seed=None) -> tf.RaggedTensor:
        """Prompt strings -> ragged [B, max_tokens] generated ids (one LSTM step per token)."""
        ids = text_ids(self.encoder, prompt, self._terminator, terminate_last=False)
        lengths = tf.cast(ids.row_lengths(), tf.int32)  # >= 1: the leading terminator
        max_tokens = tf.maximum(max_tokens, 0)
        batch = tf.shape(prompt)[0]
        new = _max0(max_tokens)
        width = _max0(lengths) + new
        buffer = ids.to_tensor(0, shape=tf.stack([batch, width]))
        steps = _max0(lengths - 1 + max_tokens)
        columns = tf.range(width)

        def body(t, buffer, states):
            logits, states = self._step(buffer[:, t], states)
            chosen = self._next_tokens(logits, temperature, top_k, seed, t)
            pos = t + 1
            chosen = tf.where(pos < lengths, buffer[:, tf.minimum(pos, width - 1)], chosen)
            buffer = tf.where(tf.equal(columns, pos)[None, :], chosen[:, None], buffer)
            return t + 1, buffer, states

        _, buffer, _ = tf.while_loop(lambda t, *_: t < steps, body,
                                     (tf.constant(0), buffer, self._zero_states(batch)))
        offsets = tf.range(new)[None, :]
        picked = tf.gather(buffer, tf.minimum(lengths[:, None] + offsets, width - 1), batch_dims=1)
        return tf.ragged.boolean_mask(picked, offsets < max_tokens[:, None])

    def _generate(self, prompt, max_tokens, temperature, top_k, seed=None):
        generated = self.generate_ids(prompt, max_tokens, temperature, top_k, seed)
        text = ids_text(self.display, generated, self._kind)
        return {"outputs": join_prompt(prompt, text, self._kind)}

    # ---------------------------------------------------------------- signatures
    @tf.function(input_signature=[_STRINGS, _INTS, _FLOATS, _INTS])
    def generate(self, prompt, max_tokens, temperature, top_k):
        return self._generate(prompt, max_tokens, temperature, top_k)

    @tf.function(input_signature=[_STRINGS, _INTS, _FLOATS, _INTS, _INTS])
    def generate_seeded(self, prompt, max_tokens, temperature, top_k, seed):
        return self._generate(prompt, max_tokens, temperature, top_k, seed)

    @tf.function(input_signature=[_STRINGS])
    def score(self, inputs):
        ids = text_ids(self.encoder, inputs, self._terminator, terminate_last=True)
        x, y = ids[:, :-1], ids[:, 1:]
        lengths = tf.cast(y.row_lengths(), tf.int32)
        targets = y.to_tensor(0)
        logits, *_ = self.model([x.to_tensor(0), *self._zero_states(tf.shape(inputs)[0])], training=False)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        token_ll = tf.gather(log_probs, targets, batch_dims=2)
        mask = tf.sequence_mask(lengths, tf.shape(targets)[1], tf.float32)
        log_likelihood = tf.reduce_sum(token_ll * mask, axis=1)
        perplexity = tf.exp(-log_likelihood / tf.cast(tf.maximum(lengths, 1), tf.float32))
        return {"log_likelihood": log_likelihood, "perplexity": perplexity, "tokens": lengths}


def export_language_model(model, vocab: Vocabulary, base: Path, metadata: dict | None = None) -> Path:
    """Write exports/<name>/<next version>/ atomically; returns the version folder."""
    with portable_lstms(model):
        module = LMServing(model, vocab)
        generate = module.generate.get_concrete_function()
        signatures = {
            "serving_default": generate,
            "generate": generate,
            "generate_seeded": module.generate_seeded.get_concrete_function(),
            "score": module.score.get_concrete_function(),
        }
        return save_servable(module, signatures, Path(base), warmup=lm_warmup_requests(), metadata=metadata)


def check_lm_reload(path: Path, local, prompts: list[str], tokens: int) -> dict:
    """Reload and compare greedy `generate` and `score` with the in-process `LMServing` module."""
    n = len(prompts)
    gen_args = dict(prompt=tf.constant(prompts), max_tokens=tf.fill([n], max(tokens, 1)),
                    temperature=tf.zeros([n]), top_k=tf.zeros([n], tf.int32))
    expected = [s.decode("utf-8") for s in local.generate(**gen_args)["outputs"].numpy()]
    expected_score = local.score(tf.constant(prompts))["log_likelihood"].numpy()
    loaded = tf.saved_model.load(str(path))
    got = [s.decode("utf-8") for s in loaded.signatures["generate"](**gen_args)["outputs"].numpy()]
    got_score = loaded.signatures["score"](inputs=tf.constant(prompts))["log_likelihood"].numpy()
    if got != expected:
        raise ExportCheckError(f"reloaded SavedModel generates differently: {got} != {expected}")
    if not np.allclose(got_score, expected_score, rtol=1e-4, atol=1e-3):
        raise ExportCheckError(f"reloaded SavedModel scores differently: {got_score} != {expected_score}")
    return {"generated": got, "log_likelihood": [float(x) for x in got_score],
            "signatures": sorted(loaded.signatures.keys())}
