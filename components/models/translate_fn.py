"""Strings in, strings out: the whole translation path, shared by evaluate and export."""
from __future__ import annotations

import tensorflow as tf

from components.models.decoding import greedy_decode
from components.text.vocab import EOS_ID, TextEncoder


def encode_sources(texts, source_encoder: TextEncoder, max_source_len: int) -> tf.Tensor:
    """Same truncation and <eos> as the training pipeline; right-padded with 0."""
    ids = source_encoder.encode(texts)[:, : max_source_len - 1]
    n = tf.shape(texts)[0]
    ids = tf.concat([ids, tf.fill([n, 1], EOS_ID)], axis=1)
    return ids.to_tensor(0)


def translate_strings(texts, parts, source_encoder: TextEncoder, target_encoder: TextEncoder,
                      max_source_len: int, max_decode_len: int) -> tf.Tensor:
    source_ids = encode_sources(texts, source_encoder, max_source_len)
    target_ids = greedy_decode(parts, source_ids, max_decode_len)
    return target_encoder.decode(target_ids)
