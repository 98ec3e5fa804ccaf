"""Greedy and beam-search decoding as tf.function-friendly loops.

Evaluation and the exported SavedModel call these same functions, so the served
translations equal the evaluated ones by construction.

Beam search is hand-written: keras-hub's BeamSampler targets decoder-only models with a
single cache tensor and has no length penalty; here the per-layer (h, c) states and the
encoder outputs must be reordered with the beams, and scores length-normalised (GNMT).
"""
from __future__ import annotations

import tensorflow as tf

from components.text.vocab import EOS_ID, PAD_ID, START_ID

_NEG_INF = -1e9


def _any_shape(states):
    return tf.nest.map_structure(lambda s: tf.TensorShape([None, None]), states)


def greedy_decode(parts, source_ids: tf.Tensor, max_len: int | tf.Tensor) -> tf.Tensor:
    """[B, S] source ids -> [B, <=max_len] target ids (<eos> included, <pad> after it).

    Stops early once every sequence has produced <eos>. Must run inside tf.function
    (AutoGraph turns the loop into a tf.while_loop).
    """
    encoder_out, states = parts.initial_states(source_ids)
    source_mask = tf.not_equal(source_ids, PAD_ID)
    batch = tf.shape(source_ids)[0]
    tokens = tf.fill([batch], START_ID)
    finished = tf.zeros([batch], tf.bool)
    out = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    for t in tf.range(max_len):
        tf.autograph.experimental.set_loop_options(shape_invariants=[(states, _any_shape(states))])
        logits, states = parts.step(tokens, states, encoder_out, source_mask)
        next_tokens = tf.argmax(logits, axis=-1, output_type=tf.int32)
        next_tokens = tf.where(finished, PAD_ID, next_tokens)
        out = out.write(t, next_tokens)
        finished = finished | tf.equal(next_tokens, EOS_ID)
        tokens = next_tokens
        if tf.reduce_all(finished):
            break
    return tf.transpose(out.stack())


def length_penalty(lengths: tf.Tensor, alpha: float) -> tf.Tensor:
    """GNMT's ((5 + len) / 6) ** alpha; alpha = 0 ranks by raw log-probability."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def beam_search_decode(parts, source_ids: tf.Tensor, max_len: int | tf.Tensor, beam_size: int,
                       alpha: float = 0.6):
    """[B, S] source ids -> ([B, K, T] ids, [B, K] scores), beams sorted best first.

    Scores are sum(log p) / length_penalty(len) with <eos> counted in the length. With
    beam_size 1 this is exactly greedy decoding. Must run inside tf.function.
    """
    k = beam_size
    encoder_out, states = parts.initial_states(source_ids)
    batch = tf.shape(source_ids)[0]

    def tile(t):  # [B, ...] -> [B*K, ...], each row repeated K times
        return tf.repeat(t, k, axis=0)

    states = tf.nest.map_structure(tile, states)
    encoder_out = tile(encoder_out)
    source_mask = tile(tf.not_equal(source_ids, PAD_ID))
    # Only the first beam is live at the start, so the first step does not pick K copies.
    scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], _NEG_INF)], 0), [batch])  # [B*K]
    tokens = tf.fill([batch * k], START_ID)
    finished = tf.zeros([batch * k], tf.bool)
    lengths = tf.zeros([batch * k], tf.int32)
    sequences = tf.zeros([batch * k, 0], tf.int32)
    offsets = tf.repeat(tf.range(batch) * k, k)  # row index of each batch's first beam
    for _ in tf.range(max_len):
        tf.autograph.experimental.set_loop_options(shape_invariants=[
            (states, _any_shape(states)), (sequences, tf.TensorShape([None, None]))])
        logits, states = parts.step(tokens, states, encoder_out, source_mask)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        vocab = tf.shape(log_probs)[1]
        # A finished beam can only be extended by <pad>, at no cost: its score stays put.
        pad_only = tf.one_hot(tf.fill([batch * k], PAD_ID), vocab, on_value=0.0, off_value=_NEG_INF)
        log_probs = tf.where(finished[:, None], pad_only, log_probs)
        total = tf.reshape(scores[:, None] + log_probs, [batch, k * vocab])
        top_scores, top_index = tf.math.top_k(total, k=k)  # per batch, over all beams' extensions
        beam = tf.reshape(top_index // vocab, [-1]) + offsets
        next_tokens = tf.reshape(top_index % vocab, [-1])
        states = tf.nest.map_structure(lambda s: tf.gather(s, beam), states)
        was_finished = tf.gather(finished, beam)
        sequences = tf.concat([tf.gather(sequences, beam), next_tokens[:, None]], axis=1)
        lengths = tf.gather(lengths, beam) + tf.cast(~was_finished, tf.int32)
        finished = was_finished | tf.equal(next_tokens, EOS_ID)
        scores = tf.reshape(top_scores, [-1])
        tokens = next_tokens
        if tf.reduce_all(finished):
            break
    normalized = tf.reshape(scores / length_penalty(lengths, alpha), [batch, k])
    order = tf.argsort(normalized, axis=1, direction="DESCENDING", stable=True)
    ids = tf.gather(tf.reshape(sequences, [batch, k, -1]), order, batch_dims=1)
    return ids, tf.gather(normalized, order, batch_dims=1)
