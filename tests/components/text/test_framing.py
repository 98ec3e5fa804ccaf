"""Source/target framing shared by training and serving."""
import tensorflow as tf

from components.text.framing import frame_source, frame_target
from components.text.vocab import EOS_ID, START_ID


def test_frame_source_truncates_then_appends_eos():
    ids = tf.ragged.constant([[5, 6, 7, 8], [9]], dtype=tf.int32)
    assert frame_source(ids, 4).to_list() == [[5, 6, 7, EOS_ID], [9, EOS_ID]]


def test_reversed_source_keeps_the_same_tokens_and_eos_last():
    # Truncation keeps the sentence start (what the model needs most), then reverses it.
    ids = tf.ragged.constant([[5, 6, 7, 8], [9, 10]], dtype=tf.int32)
    assert frame_source(ids, 4, reverse=True).to_list() == [[7, 6, 5, EOS_ID], [10, 9, EOS_ID]]


def test_frame_target_gives_shifted_input_and_label():
    ids = tf.ragged.constant([[5, 6], [7]], dtype=tf.int64)
    tgt_in, tgt_out = frame_target(ids, 10)
    assert tgt_in.to_list() == [[START_ID, 5, 6], [START_ID, 7]]
    assert tgt_out.to_list() == [[5, 6, EOS_ID], [7, EOS_ID]]
