"""Language-model text files (PTB/WikiText layout) through the generic TFDS builder."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from components.data.errors import DataError
from components.text.vocab import EOS
from pipeline.config import parse_config
from pipeline.tasks.lm import data as lm_data
from pipeline.tasks.lm.data import encode_stream, fit_lm_vocabulary

tfds.disable_progress_bar()

# PTB-style: space-separated tokens, a leading space, <unk>, N; plus what real files have:
# blank lines, tabs and runs of spaces, CRLF, and an unterminated last line.
PTB_TRAIN = (" the cat sat on the mat \n aer banknote <unk> N years\n\n  the\tdog  barked \r\n"
             " a b c d e f g h\n" * 12 + " end of file")
PTB_VALID = " the dog sat \n\n <unk> cat N\n"
PTB_TEST = " mat on the cat \n a new word \n"


def lm_lines(cfg, prepare_dir):
    return lm_data.lines(lm_data.data_source(cfg), cfg, prepare_dir)


def lm_cfg(**data):
    return parse_config({"name": "t", "task": "lm", "data": {"corpus": "files", **data}}).data


@pytest.fixture
def ptb(tmp_path):
    paths = {}
    for split, text in (("train", PTB_TRAIN), ("validation", PTB_VALID), ("test", PTB_TEST)):
        paths[split] = tmp_path / f"ptb.{split}.txt"
        paths[split].write_bytes(text.encode())
    return paths


def classic_tokens(path) -> list[str]:
    """The PyTorch word_language_model data.py tokenizer, verbatim in spirit."""
    words = []
    with open(path, "r", encoding="utf8") as f:
        for line in f:
            words += line.split() + ["<eos>"]
    return words


def test_word_counts_match_line_split_plus_eos_exactly(ptb, tmp_path):
    cfg = lm_cfg(**{s: str(p) for s, p in ptb.items()})
    lines = lm_lines(cfg, tmp_path / "prep")
    vocab = fit_lm_vocabulary(lines["train"], "whitespace")
    for split, path in ptb.items():
        expected = classic_tokens(path)
        stream = encode_stream(lines[split], vocab)
        assert len(stream) == len(expected), split
        assert int(np.sum(stream == vocab.tokens.index(EOS))) == expected.count(EOS), split
    train = encode_stream(lines["train"], vocab)
    assert [vocab.tokens[i] for i in train] == classic_tokens(ptb["train"])  # token for token (PTB <unk> is ours)
    assert lm_data.data_source(cfg).description == "files:ptb.train.txt"


def test_missing_validation_and_test_are_cut_from_the_end_of_train(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("".join(f"line {i}\n" for i in range(100)), encoding="utf-8")
    lines = lm_lines(lm_cfg(train=str(path)), tmp_path / "prep")
    assert lines["train"] == [f"line {i}" for i in range(90)]
    assert lines["validation"] == [f"line {i}" for i in range(90, 95)]
    assert lines["test"] == [f"line {i}" for i in range(95, 100)]
    test = tmp_path / "test.txt"
    test.write_text("held out\n", encoding="utf-8")
    lines = lm_lines(lm_cfg(train=str(path), test=str(test)), tmp_path / "prep2")
    assert (len(lines["train"]), len(lines["validation"]), lines["test"]) == (90, 10, ["held out"])


def test_fingerprint_follows_the_bytes_and_bad_utf8_names_the_line(ptb, tmp_path):
    cfg = lm_cfg(**{s: str(p) for s, p in ptb.items()})
    before = lm_data.data_source(cfg).fingerprint()
    lm_lines(cfg, tmp_path / "prep")
    ptb["test"].write_bytes(PTB_TEST.encode() + b" caf\xe9\n")
    assert lm_data.data_source(cfg).fingerprint() != before
    with pytest.raises(DataError, match=rf"^{ptb['test']}:3: invalid UTF-8"):
        lm_lines(cfg, tmp_path / "prep")
    assert not list((tmp_path / "prep").rglob("dataset_info.json"))  # the stale build is gone


def test_too_short_train_file_for_a_cut(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"2 lines are too few to cut validation and test .* give data\.\w+"):
        lm_lines(lm_cfg(train=str(path)), tmp_path / "prep")
