"""Vocabularies fitted on the training split, and the in-graph text <-> ids encoder.

The encoder is a `tf.Module` so its lookup tables travel inside the SavedModel.
"""
from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import tensorflow as tf

from components.text import tokenizers, wordpiece

PAD, UNK, START, EOS = "<pad>", "<unk>", "<start>", "<eos>"
SPECIALS = (PAD, UNK, START, EOS)
PAD_ID, UNK_ID, START_ID, EOS_ID = 0, 1, 2, 3


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]  # SPECIALS first, then by descending training count
    kind: str = "word"
    lowercase: bool = False

    def __len__(self) -> int:
        return len(self.tokens)

    def save(self, path: Path) -> None:
        """JSON rather than one token per line: char vocabularies contain "\\n"."""
        tmp = Path(f"{path}.tmp{os.getpid()}")
        tmp.write_text(json.dumps({"kind": self.kind, "lowercase": self.lowercase,
                                   "tokens": list(self.tokens)}, ensure_ascii=False, indent=0),
                       encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(tuple(data["tokens"]), data["kind"], data["lowercase"])


def fit_vocabulary(texts: Iterable[str], kind: str = "word", lowercase: bool = False,
                   max_size: int = 20000, min_count: int = 1, batch: int = 1024) -> Vocabulary:
    """Count pieces with the same in-graph tokenizer the model uses, so they can't disagree.

    kind "wordpiece" learns a subword vocabulary of `max_size` with Hugging Face `tokenizers`
    instead (components/text/wordpiece.py says why not keras-hub's trainer).
    """
    if kind == "wordpiece":
        learned = wordpiece.learn_vocabulary(list(texts), max_size, SPECIALS, lowercase)
        return Vocabulary(SPECIALS + tuple(t for t in learned if t not in SPECIALS), kind, lowercase)
    split = tokenizers.split_fn(kind)
    counts: collections.Counter = collections.Counter()
    chunk: list[str] = []

    def flush():
        if chunk:
            pieces = split(tf.constant(chunk), lowercase=lowercase).flat_values.numpy()
            counts.update(p.decode("utf-8") for p in pieces)
            chunk.clear()

    for text in texts:
        chunk.append(text)
        if len(chunk) >= batch:
            flush()
    flush()
    for special in SPECIALS:
        counts.pop(special, None)
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return Vocabulary(SPECIALS + tuple(kept[: max(0, max_size - len(SPECIALS))]), kind, lowercase)


class TextEncoder(tf.Module):
    """Strings -> ids and ids -> strings, entirely with core TF ops (portable SavedModels)."""

    def __init__(self, vocab: Vocabulary, name: str | None = None):
        super().__init__(name=name)
        self.kind = vocab.kind
        self.lowercase = vocab.lowercase
        self.size = len(vocab)
        self.tokens = tf.constant(list(vocab.tokens), dtype=tf.string)
        init = tf.lookup.KeyValueTensorInitializer(
            self.tokens, tf.range(self.size, dtype=tf.int64), tf.string, tf.int64)
        self.table = tf.lookup.StaticHashTable(init, default_value=UNK_ID)

    def pieces(self, texts) -> tf.RaggedTensor:
        if self.kind == "wordpiece":
            return tf.ragged.map_flat_values(tf.gather, self.tokens, self.encode(texts))
        return tokenizers.split_fn(self.kind)(texts, lowercase=self.lowercase)

    def encode(self, texts) -> tf.RaggedTensor:
        """[B] strings -> ragged [B, None] int32 ids (no specials added)."""
        if self.kind == "wordpiece":
            return wordpiece.encode(texts, self.table, UNK_ID, self.lowercase)
        pieces = self.pieces(texts)
        return tf.cast(tf.ragged.map_flat_values(self.table.lookup, pieces), tf.int32)

    def decode(self, ids) -> tf.Tensor:
        """[B, T] or ragged ids -> [B] strings. Stops at the first <eos>; drops pad/start."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids, tf.int32)
            before_eos = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=-1), 0)
            keep = before_eos & tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, START_ID)
            ids = tf.ragged.boolean_mask(ids, keep)
        pieces = tf.ragged.map_flat_values(tf.gather, self.tokens, ids)
        if self.kind == "wordpiece":
            return wordpiece.join_pieces(pieces)
        return tokenizers.join_fn(self.kind)(pieces)
