"""Strings in, strings out: the whole translation path, shared by evaluate and export."""
from __future__ import annotations

import tensorflow as tf

from components.text.framing import frame_source
from components.text.vocab import TextEncoder
from pipeline.tasks.translate.decode_spec import DecodeSpec
from pipeline.tasks.translate.decoding import beam_search_decode, greedy_decode


def encode_sources(texts, source_encoder: TextEncoder, spec: DecodeSpec) -> tf.Tensor:
    """Same framing as the training pipeline; right-padded with 0."""
    return frame_source(source_encoder.encode(texts), spec.max_source_len, spec.reverse_source).to_tensor(0)


def translate_strings(texts, parts, source_encoder: TextEncoder, target_encoder: TextEncoder,
                      spec: DecodeSpec) -> tf.Tensor:
    """[B] source strings -> [B] translations (greedy when spec.beam_size is 1, else the best beam)."""
    source_ids = encode_sources(texts, source_encoder, spec)
    if spec.beam_size <= 1:
        target_ids = greedy_decode(parts, source_ids, spec.max_decode_len)
    else:
        target_ids = beam_search_decode(parts, source_ids, spec.max_decode_len, spec.beam_size,
                                        spec.length_penalty)[0][:, 0]
    return target_encoder.decode(target_ids)


def translate_beams(texts, parts, source_encoder: TextEncoder, target_encoder: TextEncoder, spec: DecodeSpec):
    """[B] strings -> ([B, K] translations, [B, K] length-normalised log-prob scores), best first."""
    source_ids = encode_sources(texts, source_encoder, spec)
    ids, scores = beam_search_decode(parts, source_ids, spec.max_decode_len, spec.beam_size, spec.length_penalty)
    shape = tf.shape(ids)
    flat = target_encoder.decode(tf.reshape(ids, [shape[0] * shape[1], shape[2]]))
    return tf.reshape(flat, [shape[0], shape[1]]), scores


def make_translate_fn(model, source_vocab, target_vocab, spec: DecodeSpec):
    """The decode path the export traces, as an in-process strings -> strings tf.function."""
    from pipeline.tasks.translate.model import translator_parts

    parts = translator_parts(model)
    src_enc, tgt_enc = TextEncoder(source_vocab), TextEncoder(target_vocab)
    return tf.function(lambda texts: translate_strings(texts, parts, src_enc, tgt_enc, spec),
                       input_signature=[tf.TensorSpec([None], tf.string)])
