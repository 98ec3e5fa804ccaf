"""The language model's data adapter: its `data` section -> a source object and lines of text;
then lines -> one token stream -> contiguous streams -> BPTT windows.

The conventions are those of the classic PyTorch/TensorFlow PTB scripts, so perplexities
compare with theirs on the same files:

* word level (`whitespace` tokenizer): `line.split() + ['<eos>']` for every line, empty
  lines included (PyTorch word_language_model `data.py`);
* character level (`char`): every character of the file, a "\\n" at each line end;
* `batchify`: the stream is trimmed to a multiple of `batch_size` and cut into
  `batch_size` contiguous rows; `get_batch`: windows of `seq_len` columns with targets
  shifted by one, the last window shorter. Row b of window k+1 continues row b of window
  k, so a model carrying its state from window to window sees each row as running text.
  One pass predicts `batch_size * (rows_length - 1)` tokens.

Tokenization uses the same in-graph `TextEncoder` as the exported SavedModel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf

from components.data import catalog, corpus, text_files
from components.data.sources import Builtin, Catalog, LocalFiles, split_map, user_path
from components.data.splits import SPLITS
from components.text.vocab import EOS_ID, PAD_ID, START_ID, TextEncoder, Vocabulary, fit_vocabulary

NEWLINE = "\n"


def is_char_level(kind: str) -> bool:
    return kind == "char"


def terminator_id(vocab: Vocabulary) -> int:
    """The token that ends every line: "\\n" at character level, `<eos>` otherwise."""
    if is_char_level(vocab.kind):
        try:
            return vocab.tokens.index(NEWLINE)
        except ValueError:
            raise ValueError("character vocabulary has no newline; fit it with fit_lm_vocabulary") from None
    return EOS_ID


def fit_lm_vocabulary(lines: list[str], kind: str, lowercase: bool = False, min_count: int = 1,
                      max_size: int | None = None) -> Vocabulary:
    """Vocabulary of the training lines. At character level the line ends ("\\n") count too."""
    texts = [line + NEWLINE for line in lines] if is_char_level(kind) else lines
    vocab = fit_vocabulary(texts, kind=kind, lowercase=lowercase, max_size=max_size or 10**9,
                           min_count=min_count)
    if is_char_level(kind) and NEWLINE not in vocab.tokens:
        raise ValueError("the character vocabulary lost the newline (max_vocab_size too small?)")
    return vocab


def encode_lines(encoder: TextEncoder, lines: tf.Tensor, terminator: int) -> tf.RaggedTensor:
    """[n] lines -> ragged [n, None] ids, each line followed by its terminator id."""
    ids = encoder.encode(lines)
    ends = tf.fill([tf.shape(lines)[0], 1], tf.constant(terminator, tf.int32))
    return tf.concat([ids, tf.RaggedTensor.from_tensor(ends)], axis=1)


def encode_stream(lines: Iterable[str], vocab: Vocabulary, chunk: int = 4096) -> np.ndarray:
    """All lines as one int32 token stream (line terminators included), in order."""
    encoder = TextEncoder(vocab)
    term = terminator_id(vocab)
    encode = tf.function(lambda t: encode_lines(encoder, t, term).flat_values,
                         input_signature=[tf.TensorSpec([None], tf.string)])
    parts, batch = [], []
    for line in lines:
        batch.append(line)
        if len(batch) == chunk:
            parts.append(encode(tf.constant(batch)).numpy())
            batch = []
    if batch:
        parts.append(encode(tf.constant(batch)).numpy())
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros([0], np.int32)


def batchify(stream: np.ndarray, batch_size: int) -> np.ndarray:
    """[n] -> [batch_size, n // batch_size]: row b is the b-th contiguous slice of the stream."""
    length = len(stream) // batch_size
    if length < 2:
        raise ValueError(f"a stream of {len(stream)} tokens is too short for {batch_size} rows of >= 2 tokens")
    return np.asarray(stream[: length * batch_size], np.int32).reshape(batch_size, length)


def window_starts(row_length: int, seq_len: int) -> list[int]:
    return list(range(0, row_length - 1, seq_len))


def targets_per_pass(stream_length: int, batch_size: int) -> int:
    """Tokens predicted by one pass over a batchified stream: batch_size * (row_length - 1)."""
    return batch_size * (stream_length // batch_size - 1)


def windows(stream: np.ndarray, batch_size: int, seq_len: int):
    """The classic get_batch in numpy: yields (x [B, s], y [B, s]), s = seq_len except the last."""
    data = batchify(stream, batch_size)
    length = data.shape[1]
    for i in window_starts(length, seq_len):
        s = min(seq_len, length - 1 - i)
        yield data[:, i:i + s], data[:, i + 1:i + 1 + s]


def window_dataset(stream: np.ndarray, batch_size: int, seq_len: int) -> tf.data.Dataset:
    """The same windows as a tf.data pipeline of (x, y) int32 [batch_size, <= seq_len], in order."""
    data = tf.constant(batchify(stream, batch_size))
    length = int(data.shape[1])

    def cut(start):
        size = tf.minimum(seq_len, length - 1 - start)
        return data[:, start:start + size], data[:, start + 1:start + 1 + size]

    starts = tf.data.Dataset.from_tensor_slices(tf.constant(window_starts(length, seq_len), tf.int32))
    return starts.map(cut).prefetch(tf.data.AUTOTUNE)




# ------------------------------------------------------------ in-graph text <-> ids for serving
# Used by the exported SavedModel and by in-process generation/scoring alike, so both agree.
# A text's lines ("\n"-separated) are tokenized separately and each is followed by the line
# terminator, exactly as in the training stream; every sequence starts with a terminator as
# context ("a line just ended"), so the first real token is predicted like any line start.

def text_ids(encoder: TextEncoder, texts: tf.Tensor, terminator: int, terminate_last: bool) -> tf.RaggedTensor:
    """[B] strings -> ragged [B, None] ids: terminator, then each line's ids + terminator.

    terminate_last=False (prompts): the last line stays open so generation continues it; a
    prompt ending in "\\n" therefore continues on a new line. terminate_last=True (scoring):
    a missing final line end is added (a trailing "\\n" is not doubled).
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    if terminate_last:
        texts = tf.strings.regex_replace(texts, "\n$", "")
    lines = tf.strings.split(texts, sep="\n")  # ragged [B, lines]; "" -> [""]
    ids = encoder.encode(lines.flat_values)  # ragged [lines, tokens]
    n_lines = tf.shape(lines.flat_values, out_type=tf.int64)[0]
    term = tf.fill([n_lines, 1], tf.constant(terminator, tf.int32))
    if terminate_last:
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(term)], axis=1)
    else:
        # Terminate every line except the last of each text.
        last = tf.scatter_nd(tf.expand_dims(lines.row_limits() - 1, 1), tf.ones_like(lines.row_limits(), tf.bool),
                             [n_lines])
        term = tf.RaggedTensor.from_tensor(term, lengths=tf.where(last, tf.zeros([n_lines], tf.int64),
                                                                  tf.ones([n_lines], tf.int64)))
        ids = tf.concat([ids, term], axis=1)
    per_text = tf.RaggedTensor.from_row_splits(ids, lines.row_splits).merge_dims(1, 2)
    start = tf.fill([tf.shape(texts)[0], 1], tf.constant(terminator, tf.int32))
    return tf.concat([tf.RaggedTensor.from_tensor(start), per_text], axis=1)


def display_tokens(vocab: Vocabulary) -> list[str]:
    """How each id renders in generated text: the terminator as "\\n", pad/<start> as nothing
    (and <eos> as nothing at character level, where it never occurs)."""
    term = terminator_id(vocab)
    hidden = {PAD_ID, START_ID} | ({EOS_ID} if is_char_level(vocab.kind) else set())
    return [NEWLINE if i == term else "" if i in hidden else tok for i, tok in enumerate(vocab.tokens)]


def ids_text(display: tf.Tensor, ids, kind: str) -> tf.Tensor:
    """Ragged/dense [B, T] ids -> [B] strings; `display` is `display_tokens(vocab)` as a tensor."""
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids, tf.int32))
    pieces = tf.ragged.map_flat_values(tf.gather, display, ids)
    pieces = tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)
    if is_char_level(kind):
        return tf.strings.reduce_join(pieces, axis=-1)
    joined = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
    return tf.strings.regex_replace(joined, " *\n *", "\n")


def join_prompt(prompts: tf.Tensor, continuation: tf.Tensor, kind: str) -> tf.Tensor:
    """prompt + generated text; at word level a space separates them unless one side has it."""
    if is_char_level(kind):
        return prompts + continuation
    needs_space = ((tf.strings.length(prompts) > 0) & (tf.strings.length(continuation) > 0)
                   & ~tf.strings.regex_full_match(prompts, r"(?s).*\s")
                   & ~tf.strings.regex_full_match(continuation, r"(?s)\s.*"))
    return prompts + tf.where(needs_space, " ", "") + continuation


def distribute_stream_blocks(strategy, windows: tf.data.Dataset, batch_size: int):
    """Give replica r the rows [r*b, (r+1)*b) of every window (b = batch_size / replicas).

    Truncated BPTT carries each stream's state from one window to the next, so a stream must
    stay on the same replica for the whole epoch: each replica owns one contiguous block of
    streams, with its own carried state in its copy of the LSTM state variables. Keras' default
    split would do the same for one worker, but auto-sharding across workers would hand out
    whole windows (time steps), not streams; so the split is explicit, for every strategy.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"train.batch_size ({batch_size}) must be a multiple of the {replicas} replicas")
    per_replica = batch_size // replicas

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        # This worker's replicas are global replicas [first, first + local); each takes the next
        # element of this worker's dataset in turn, so emit their blocks in that order.
        local = replicas // ctx.num_input_pipelines
        first = ctx.input_pipeline_id * local

        def blocks(x, y):
            rows = tf.range(first * per_replica, (first + local) * per_replica)
            x, y = tf.gather(x, rows), tf.gather(y, rows)
            shape = [local, per_replica, -1]
            return tf.data.Dataset.from_tensor_slices((tf.reshape(x, shape), tf.reshape(y, shape)))

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return windows.flat_map(blocks).with_options(options)

    return strategy.distribute_datasets_from_function(dataset_fn)


# ------------------------------------------------------------------ the `data` section -> a source

def data_source(data_cfg):
    """The source behind a language-model `data` section (`config.LMDataConfig`); make it once per stage."""
    if data_cfg.corpus == "files":
        files = {s: user_path(getattr(data_cfg, s)) for s in SPLITS if getattr(data_cfg, s)}
        config = text_files.make_config(files)
        return LocalFiles(text_files.TextFiles, config, {s: [p] for s, p in files.items()},
                          f"files:{files['train'].name}")
    if data_cfg.corpus == "tfds":
        return Catalog(data_cfg.name, catalog.default_data_dir(data_cfg.tfds_data_dir), split_map(data_cfg.splits),
                       [data_cfg.text_feature], "data.text_feature", text_lines=True)
    return Builtin(data_cfg.corpus, data_cfg.config, data_cfg.data_dir)


def lines(source, data_cfg, prepare_dir: Path) -> dict[str, list[str]]:
    """Each split's lines of text, capped by `max_train_lines` / `max_eval_lines`."""
    out = {}
    for split, ds in corpus.prepared_splits(source, prepare_dir).items():
        cap = data_cfg.max_train_lines if split == "train" else data_cfg.max_eval_lines
        if cap:
            ds = ds.take(cap)
        out[split] = corpus.texts(ds, "text")
    return out
