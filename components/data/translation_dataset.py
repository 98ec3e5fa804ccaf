"""tf.data input pipeline for translation: raw string pairs -> padded, bucketed id batches.

Tokenization runs in-graph (the same TextEncoder that is exported), so training and
serving cannot disagree on how text becomes ids.
"""
from __future__ import annotations

import tensorflow as tf

from components.text.vocab import EOS_ID, START_ID, TextEncoder


def encode_pairs(ds: tf.data.Dataset, source_key: str, target_key: str,
                 source_encoder: TextEncoder, target_encoder: TextEncoder,
                 max_source_len: int, max_target_len: int) -> tf.data.Dataset:
    """Examples -> (source ids + <eos>, <start> + target ids, target ids + <eos>), unbatched."""

    def encode(example):
        # The encoders work on batches; a batch of one, indexed back out, is a dense vector.
        src = source_encoder.encode(example[source_key][None])[0][: max_source_len - 1]
        tgt = target_encoder.encode(example[target_key][None])[0][: max_target_len - 1]
        return {"source": tf.concat([src, [EOS_ID]], axis=0),
                "target_in": tf.concat([[START_ID], tgt], axis=0),
                "target_out": tf.concat([tgt, [EOS_ID]], axis=0)}

    return ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE)


def batch_pairs(ds: tf.data.Dataset, batch_size: int, bucket_boundaries: list[int],
                shuffle_buffer: int = 0, seed: int = 0, drop_remainder: bool = False) -> tf.data.Dataset:
    """Length-bucketed padded batches of ({"source", "target_in"}, target_out)."""
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def length(ex):
        return tf.maximum(tf.shape(ex["source"])[0], tf.shape(ex["target_in"])[0])

    if bucket_boundaries:
        ds = ds.bucket_by_sequence_length(
            length, bucket_boundaries=list(bucket_boundaries),
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            drop_remainder=drop_remainder)
    else:
        ds = ds.padded_batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(lambda ex: ({"source": ex["source"], "target_in": ex["target_in"]}, ex["target_out"]),
                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def make_translation_dataset(ds, source_key, target_key, source_encoder, target_encoder, *,
                             batch_size, max_source_len, max_target_len, bucket_boundaries=(),
                             shuffle_buffer=0, seed=0, cache=True) -> tf.data.Dataset:
    encoded = encode_pairs(ds, source_key, target_key, source_encoder, target_encoder,
                           max_source_len, max_target_len)
    if cache:
        encoded = encoded.cache()  # tokenize once; later epochs read ids from memory
    return batch_pairs(encoded, batch_size, list(bucket_boundaries), shuffle_buffer, seed)
