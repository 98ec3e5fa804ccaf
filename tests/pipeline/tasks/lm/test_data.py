"""LM data conventions: the classic `line.split() + ['<eos>']` stream, characters, batchify/get_batch."""
import numpy as np
import pytest
import tensorflow as tf

from components.data import loading
from components.data.tinyshakespeare import split_bounds
from components.text.vocab import EOS, EOS_ID, UNK_ID, TextEncoder
from pipeline.tasks.lm.data import (
    batchify,
    display_tokens,
    encode_stream,
    fit_lm_vocabulary,
    ids_text,
    join_prompt,
    targets_per_pass,
    terminator_id,
    text_ids,
    window_dataset,
    windows,
)


@pytest.fixture(scope="module")
def split_lines(shared_data_dir, tmp_path_factory):
    """Lines per split through the product's TFDS builder ..."""
    builder = loading.prepare_builder("tiny_shakespeare", None, shared_data_dir, tmp_path_factory.mktemp("tfds"))
    return {split: [t.decode("utf-8") for t in ds.map(lambda ex: ex["text"]).as_numpy_iterator()]
            for split, ds in loading.load_splits(builder).items()}


@pytest.fixture(scope="module")
def file_lines(shared_data_dir):
    """... and straight from the file with plain Python, to check the builder against."""
    lines = (shared_data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    return {split: lines[a:b] for split, (a, b) in split_bounds(len(lines)).items()}


def test_word_stream_reproduces_classic_token_counts_exactly(split_lines, file_lines):
    vocab = fit_lm_vocabulary(split_lines["train"], "whitespace")
    assert [len(split_lines[s]) for s in ("train", "validation", "test")] == [36000, 2000, 2000]
    for split in ("train", "validation", "test"):
        expected = sum(len(line.split()) + 1 for line in file_lines[split])  # PTB data.py convention
        stream = encode_stream(split_lines[split], vocab)
        assert len(stream) == expected, split
        assert int(np.sum(stream == EOS_ID)) == len(file_lines[split])  # one <eos> per line, empty ones too
    # Token for token on the training split (every training word is in the vocabulary).
    train = encode_stream(split_lines["train"], vocab)
    words = [w for line in file_lines["train"] for w in line.split() + [EOS]]
    assert [vocab.tokens[i] for i in train] == words
    assert UNK_ID not in train


def test_char_stream_is_the_split_text_with_a_newline_per_line(split_lines, file_lines):
    vocab = fit_lm_vocabulary(split_lines["train"], "char")
    assert len(vocab) == 4 + 65  # specials + the 65 distinct characters of the corpus
    for split in ("train", "validation", "test"):
        stream = encode_stream(split_lines[split], vocab)
        text = "".join(line + "\n" for line in file_lines[split])
        assert len(stream) == len(text)
        assert "".join(vocab.tokens[i] for i in stream) == text
    assert terminator_id(vocab) == vocab.tokens.index("\n")


def test_min_count_shrinks_vocabulary_and_oov_maps_to_unk():
    lines = ["a a b", "a c", ""]
    full, small = fit_lm_vocabulary(lines, "whitespace"), fit_lm_vocabulary(lines, "whitespace", min_count=2)
    assert full.tokens[4:] == ("a", "b", "c") and small.tokens[4:] == ("a",)
    assert list(encode_stream(["a b z", ""], small)) == [4, UNK_ID, UNK_ID, EOS_ID, EOS_ID]


def test_batchify_and_windows_match_the_classic_get_batch():
    stream = np.arange(103, dtype=np.int32)
    data = batchify(stream, 4)  # 103 // 4 = 25 per row; 3 tokens trimmed
    assert data.shape == (4, 25) and (data[1] == np.arange(25, 50)).all()
    wins = list(windows(stream, 4, 7))
    assert [x.shape[1] for x, _ in wins] == [7, 7, 7, 3]  # the last window is shorter
    for x, y in wins:
        np.testing.assert_array_equal(y, x + 1)  # targets shifted by one
    for (x1, y1), (x2, _) in zip(wins, wins[1:]):
        np.testing.assert_array_equal(x2[:, 0], y1[:, -1])  # row b of window k+1 continues row b of window k
    assert sum(y.size for _, y in wins) == targets_per_pass(len(stream), 4) == 4 * 24
    tf_wins = list(window_dataset(stream, 4, 7).as_numpy_iterator())
    assert len(tf_wins) == len(wins)
    for (a, b), (c, d) in zip(tf_wins, wins):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_prompt_and_score_ids_follow_the_stream_conventions():
    vocab = fit_lm_vocabulary(["a b", "b c"], "whitespace")
    enc, term = TextEncoder(vocab), terminator_id(vocab)

    def tokens(texts, last):
        return [[vocab.tokens[i] for i in row] for row in text_ids(enc, tf.constant(texts), term, last).to_list()]

    e = EOS
    assert tokens(["a b", "", "a\nb", "a\n"], True) == [[e, "a", "b", e], [e, e], [e, "a", e, "b", e], [e, "a", e]]
    assert tokens(["a b", "", "a\nb", "a\n"], False) == [[e, "a", "b"], [e], [e, "a", e, "b"], [e, "a", e]]


def test_generated_ids_render_as_text():
    word = fit_lm_vocabulary(["to be or", "not"], "whitespace")
    ids = [[word.tokens.index("to"), EOS_ID, word.tokens.index("be"), 0]]
    text = ids_text(tf.constant(display_tokens(word)), tf.constant(ids), "whitespace")
    assert text.numpy().tolist() == [b"to\nbe"]
    prompts = join_prompt(tf.constant(["ROMEO:", "A\n", ""]), tf.constant(["x", "y", "z"]), "whitespace")
    assert prompts.numpy().tolist() == [b"ROMEO: x", b"A\ny", b"z"]
    char = fit_lm_vocabulary(["ab"], "char")
    ids = [[char.tokens.index("a"), char.tokens.index("\n"), char.tokens.index("b")]]
    assert ids_text(tf.constant(display_tokens(char)), tf.constant(ids), "char").numpy().tolist() == [b"a\nb"]
