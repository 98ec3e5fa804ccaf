"""Greedy decoding as one tf.function-friendly loop.

Evaluation and the exported SavedModel call this same function, so the served
translations equal the evaluated ones by construction.
"""
from __future__ import annotations

import tensorflow as tf

from components.text.vocab import EOS_ID, PAD_ID, START_ID


def greedy_decode(parts, source_ids: tf.Tensor, max_len: int | tf.Tensor) -> tf.Tensor:
    """[B, S] source ids -> [B, <=max_len] target ids (<eos> included, <pad> after it).

    Stops early once every sequence has produced <eos>. Must run inside tf.function
    (AutoGraph turns the loop into a tf.while_loop).
    """
    _, states = parts.initial_states(source_ids)
    batch = tf.shape(source_ids)[0]
    tokens = tf.fill([batch], START_ID)
    finished = tf.zeros([batch], tf.bool)
    out = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    for t in tf.range(max_len):
        tf.autograph.experimental.set_loop_options(
            shape_invariants=[(states, tf.nest.map_structure(lambda s: tf.TensorShape([None, None]), states))])
        logits, states = parts.step(tokens, states)
        next_tokens = tf.argmax(logits, axis=-1, output_type=tf.int32)
        next_tokens = tf.where(finished, PAD_ID, next_tokens)
        out = out.write(t, next_tokens)
        finished = finished | tf.equal(next_tokens, EOS_ID)
        tokens = next_tokens
        if tf.reduce_all(finished):
            break
    return tf.transpose(out.stack())
