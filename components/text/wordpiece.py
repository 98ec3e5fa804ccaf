"""WordPiece subwords with core TF ops only, on top of the reversible word pre-tokenizer.

The vocabulary is learned with Hugging Face `tokenizers`' WordPieceTrainer. keras-hub's
`compute_word_piece_vocabulary` imports and runs here since tensorflow-text 2.21.1 (2.21.0 failed
with `undefined symbol: icudt77_dat`), but it is kept out on purpose: it learns from its own
BERT pre-tokenizer (not our reversible `##`-glue words) and would change every existing
vocabulary, hence every stage fingerprint and export. Tokenizing stays hand-written in core TF
rather than keras-hub's `WordPieceTokenizer` because an export must load in plain TensorFlow and
stock TF Serving, which lack tensorflow-text's custom ops; it is the same greedy
longest-match-first algorithm as BERT's, and a test checks it against `tokenizers`' WordPiece.

Markers: a word's first piece has no prefix; its continuations carry `@@`. The word
pre-tokenizer's `##` glue marker (no space before this word) stays on the first piece, so
detokenizing is "drop ' @@', then drop ' ##'" and gives back the original text.
"""
from __future__ import annotations

import tensorflow as tf

from components.text import tokenizers

SUFFIX = "@@"
MAX_CHARS = 24  # longer words become <unk>, as in BERT (which uses 100 bytes)


def wordpiece_ids(words: tf.Tensor, table: tf.lookup.StaticHashTable, unk_id: int,
                  max_chars: int = MAX_CHARS) -> tf.RaggedTensor:
    """[N] words -> ragged [N, None] piece ids, greedy longest match first.

    `table` maps a piece to its id and anything else to `unk_id`. A word with a position no
    piece covers, or longer than `max_chars`, becomes a single `unk_id`.
    """
    words = tf.convert_to_tensor(words, tf.string)
    n = tf.shape(words)[0]
    length = tf.strings.length(words, unit="UTF8_CHAR")
    span = tf.range(max_chars)
    start = tf.broadcast_to(span[None, :, None], [n, max_chars, max_chars])
    end = tf.broadcast_to(span[None, None, :], [n, max_chars, max_chars])  # inclusive
    size = tf.maximum(end - start + 1, 0)
    tiled = tf.broadcast_to(words[:, None, None], [n, max_chars, max_chars])
    limit = length[:, None, None]
    # Substr rejects a start past the end; such spans are invalid anyway (masked below).
    pieces = tf.strings.substr(tiled, tf.minimum(start, limit), tf.where(start < limit, size, 0),
                               unit="UTF8_CHAR")
    keys = tf.where(start == 0, pieces, tf.strings.join([SUFFIX, pieces]))
    ids = tf.cast(table.lookup(keys), tf.int32)
    valid = (ids != unk_id) & (end >= start) & (end < limit)
    # best_end[w, s] = the longest valid piece starting at s, or -1.
    best_end = tf.reduce_max(tf.where(valid, end, -1), axis=2)
    best_id = tf.gather(ids, tf.maximum(best_end, 0), batch_dims=2)

    pos = tf.zeros([n], tf.int32)
    failed = length > max_chars
    out = tf.TensorArray(tf.int32, size=max_chars)
    for step in tf.range(max_chars):
        active = (pos < length) & ~failed
        at = tf.minimum(pos, max_chars - 1)
        e = tf.gather(best_end, at, batch_dims=1)
        failed = failed | (active & (e < 0))
        take = active & (e >= 0)
        out = out.write(step, tf.where(take, tf.gather(best_id, at, batch_dims=1), -1))
        pos = tf.where(take, e + 1, pos)
    ids_matrix = tf.transpose(out.stack())  # [N, max_chars], -1 = no piece
    ids_matrix = tf.where(failed[:, None], -1, ids_matrix)
    ids_matrix = tf.concat([tf.where(failed, unk_id, -1)[:, None], ids_matrix], axis=1)
    return tf.ragged.boolean_mask(ids_matrix, ids_matrix >= 0)


def encode(texts, table, unk_id: int, lowercase: bool = False) -> tf.RaggedTensor:
    """[B] strings -> ragged [B, None] WordPiece ids."""
    words = tokenizers.word_pieces(texts, lowercase=lowercase)
    return words.with_flat_values(wordpiece_ids(words.flat_values, table, unk_id)).merge_dims(1, 2)


def join_pieces(pieces: tf.RaggedTensor) -> tf.Tensor:
    joined = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
    joined = tf.strings.regex_replace(joined, " " + SUFFIX, "")
    return tokenizers.join_word_pieces(tf.strings.split(joined))


def learn_vocabulary(texts: list[str], size: int, reserved: tuple[str, ...], lowercase: bool = False) -> list[str]:
    """Learn `size` pieces on our reversible pre-tokenization (glue markers kept), deterministically.

    `tokenizers`' trainer numbers each continuation piece (`@@x`) when it first meets it while
    iterating a hash map, and breaks ties between equally frequent merges by those numbers, so
    the same text gave a different vocabulary on every call (huggingface/tokenizers#1794): two
    runs of one config trained different models. Registering every continuation piece up front,
    sorted, fixes their numbers; the alphabet is already sorted and merges are numbered in order.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    words, tails = [], set()  # tails: every character that can continue a word
    for i in range(0, len(texts), 2048):
        pieces = tokenizers.word_pieces(tf.constant(texts[i:i + 2048]), lowercase=lowercase)
        for row in pieces.to_list():
            line = [word.decode("utf-8") for word in row]
            tails.update(c for word in line for c in word[1:])
            words.append(" ".join(line))
    continuations = [SUFFIX + c for c in sorted(tails)]
    tok = Tokenizer(models.WordPiece(unk_token=reserved[1], continuing_subword_prefix=SUFFIX,
                                     max_input_chars_per_word=MAX_CHARS))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordPieceTrainer(vocab_size=size, special_tokens=list(reserved) + continuations,
                                        continuing_subword_prefix=SUFFIX, show_progress=False)
    tok.train_from_iterator(words, trainer)
    vocab = tok.get_vocab()
    return sorted(vocab, key=vocab.get)
