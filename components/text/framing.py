"""How token ids are framed for the translator: truncation, source reversal, <start>/<eos>.

One definition shared by the training pipeline and the decode path (evaluate, export), so
a model is always served with the same source framing it was trained on.
"""
from __future__ import annotations

import tensorflow as tf

from components.text.vocab import EOS_ID, START_ID


def frame_source(ids: tf.RaggedTensor, max_len: int, reverse: bool = False) -> tf.RaggedTensor:
    """[B, (n)] ids -> first max_len-1 ids (reversed if asked) + <eos>.

    Reversal is Sutskever et al. (2014)'s trick for models without attention: the first
    source words end up next to the first target words, which shortens the path the
    gradient has to travel for the start of the sentence.
    """
    ids = ids[:, : max_len - 1]
    if reverse:
        ids = tf.reverse(ids, axis=[1])
    return tf.concat([ids, tf.fill([ids.nrows(), 1], tf.cast(EOS_ID, ids.dtype))], axis=1)


def frame_target(ids: tf.RaggedTensor, max_len: int) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """[B, (n)] ids -> (<start> + ids, ids + <eos>): teacher-forcing input and label."""
    ids = ids[:, : max_len - 1]
    n = ids.nrows()
    return (tf.concat([tf.fill([n, 1], tf.cast(START_ID, ids.dtype)), ids], axis=1),
            tf.concat([ids, tf.fill([n, 1], tf.cast(EOS_ID, ids.dtype))], axis=1))
