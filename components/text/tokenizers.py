"""Reversible in-graph tokenizers built only from core TensorFlow string ops.

Why hand-written: the exported SavedModel must load in stock TensorFlow and TF Serving,
which lack tensorflow-text's custom ops, and translation output must detokenize back
to the exact original text (Urdu included). keras-hub's word tokenizers either need
those custom ops or join pieces with spaces ("you ?"), which is not reversible.

Word level: words and punctuation are separate pieces; a piece written directly after
the previous one (no space between) carries a `##` prefix, as in WordPiece, so
detokenization knows where no space goes: "ہیں؟" -> ["ہیں", "##؟"].
Whitespace: split on whitespace only, joined back with single spaces -- the classic
PTB/WikiText language-model convention, so perplexities compare with other toolkits.
Character level: every Unicode code point is a piece (spaces and newlines included).
Round-trip is byte-exact for text with single spaces between words and no leading or
trailing whitespace (other whitespace runs are normalised to one space). Word level treats
Unicode spaces (U+00A0, U+202F before French `?!`, ...) as plain spaces: TF's split and RE2's
`\s` are ASCII-only, so without this `Cours\u202f!` kept the space as a piece of its own, which
no vocabulary learned (the trainer splits on Unicode spaces) and which encoded as `<unk>`.
"""
from __future__ import annotations

import tensorflow as tf

GLUE = "##"
_WORD_CHAR = r"\p{L}\p{M}\p{N}_\x{200C}\x{200D}"  # letters, marks, digits, ZWNJ/ZWJ
_PUNCT = rf"[^{_WORD_CHAR}\s]"
_WORD = rf"[{_WORD_CHAR}]"
_UNICODE_SPACE = r"[\p{Z}\x{0085}]"  # space separators, line/paragraph separators, NEL

KINDS = ("word", "whitespace", "char")


def word_pieces(texts: tf.Tensor, lowercase: bool = False) -> tf.RaggedTensor:
    """Split a batch of strings into word/punctuation pieces, marking glued ones."""
    texts = tf.convert_to_tensor(texts, tf.string)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, _UNICODE_SPACE, " ")
    # Every punctuation char becomes its own glued piece ...
    marked = tf.strings.regex_replace(texts, f"({_PUNCT})", r" ##\1")
    # ... unless it followed whitespace or began the text (then it is not glued).
    marked = tf.strings.regex_replace(marked, r"(\s) ##", r"\1")
    marked = tf.strings.regex_replace(marked, r"^ ##", "")
    # A word written right after punctuation ("don't" -> don ##' ##t) is glued too.
    marked = tf.strings.regex_replace(marked, f"({_PUNCT})({_WORD})", r"\1 ##\2")
    return tf.strings.split(marked)


def join_word_pieces(pieces: tf.RaggedTensor) -> tf.Tensor:
    """Inverse of `word_pieces`: join with spaces, then drop the space before glued pieces."""
    joined = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
    joined = tf.strings.regex_replace(joined, " " + GLUE, "")
    return tf.strings.regex_replace(joined, "^" + GLUE, "")


def char_pieces(texts: tf.Tensor, lowercase: bool = False) -> tf.RaggedTensor:
    texts = tf.convert_to_tensor(texts, tf.string)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.unicode_split(texts, "UTF-8")


def join_char_pieces(pieces: tf.RaggedTensor) -> tf.Tensor:
    return tf.strings.reduce_join(pieces, axis=-1, separator="")


def whitespace_pieces(texts: tf.Tensor, lowercase: bool = False) -> tf.RaggedTensor:
    texts = tf.convert_to_tensor(texts, tf.string)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.split(texts)


def join_whitespace_pieces(pieces: tf.RaggedTensor) -> tf.Tensor:
    return tf.strings.reduce_join(pieces, axis=-1, separator=" ")


def split_fn(kind: str):
    return {"word": word_pieces, "whitespace": whitespace_pieces, "char": char_pieces}[kind]


def join_fn(kind: str):
    return {"word": join_word_pieces, "whitespace": join_whitespace_pieces, "char": join_char_pieces}[kind]
