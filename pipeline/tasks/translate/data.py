"""The translator's data adapter: its `data` section -> a source object and parallel splits, and the
tf.data input pipeline: raw string pairs -> padded, bucketed id batches.

Tokenization runs in-graph (the same TextEncoder that is exported), so training and
serving cannot disagree on how text becomes ids.
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from components.data import catalog, corpus, parallel_files
from components.data.errors import DataError
from components.data.sources import Builtin, Catalog, LocalFiles, split_map, user_path
from components.data.splits import SPLITS
from components.text.framing import frame_source, frame_target
from components.text.vocab import TextEncoder


def encode_pairs(ds: tf.data.Dataset, source_key: str, target_key: str,
                 source_encoder: TextEncoder, target_encoder: TextEncoder,
                 max_source_len: int, max_target_len: int, reverse_source: bool = False) -> tf.data.Dataset:
    """Examples -> (source ids + <eos>, <start> + target ids, target ids + <eos>), unbatched."""

    def encode(batch):
        src = frame_source(source_encoder.encode(batch[source_key]), max_source_len, reverse_source)
        tgt_in, tgt_out = frame_target(target_encoder.encode(batch[target_key]), max_target_len)
        # Padded + lengths, because tf.data cannot unbatch ragged rows into dense examples.
        return {"source": src.to_tensor(), "source_len": src.row_lengths(),
                "target_in": tgt_in.to_tensor(), "target_out": tgt_out.to_tensor(),
                "target_len": tgt_in.row_lengths()}

    def trim(ex):
        return {"source": ex["source"][: ex["source_len"]],
                "target_in": ex["target_in"][: ex["target_len"]],
                "target_out": ex["target_out"][: ex["target_len"]]}

    # Tokenizing 512 sentences per call keeps the string ops vectorised (several times faster
    # than one call per sentence, which matters for WordPiece).
    return (ds.batch(512).map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
            .map(trim, num_parallel_calls=tf.data.AUTOTUNE))


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
                             shuffle_buffer=0, seed=0, cache=True, reverse_source=False) -> tf.data.Dataset:
    encoded = encode_pairs(ds, source_key, target_key, source_encoder, target_encoder,
                           max_source_len, max_target_len, reverse_source)
    if cache:
        encoded = encoded.cache()  # tokenize once; later epochs read ids from memory
    return batch_pairs(encoded, batch_size, list(bucket_boundaries), shuffle_buffer, seed)


def batches_for_config(cfg, ds, source_vocab, target_vocab, *, batch_size: int, shuffle: bool) -> tf.data.Dataset:
    """The pipeline's batches for a translator config (data/text/train/seed sections)."""
    return make_translation_dataset(
        ds, cfg.data.source_lang, cfg.data.target_lang,
        TextEncoder(source_vocab), TextEncoder(target_vocab), batch_size=batch_size,
        max_source_len=cfg.text.max_source_len, max_target_len=cfg.text.max_target_len,
        bucket_boundaries=cfg.train.bucket_boundaries,
        shuffle_buffer=cfg.train.shuffle_buffer if shuffle else 0, seed=cfg.seed,
        reverse_source=cfg.text.reverse_source)


# ------------------------------------------------------------------ the `data` section -> a source

def data_source(data_cfg):
    """The source behind a translator `data` section (`config.DataConfig`); make it once per stage."""
    if data_cfg.corpus == "files":
        specs = []
        for split in SPLITS:
            spec = getattr(data_cfg, split)
            if spec is None:
                continue
            if spec.tsv:
                specs.append(parallel_files.SplitFiles(split, tsv=user_path(spec.tsv),
                                                       source_column=spec.source_column,
                                                       target_column=spec.target_column))
            else:
                specs.append(parallel_files.SplitFiles(split, source=user_path(spec.source),
                                                       target=user_path(spec.target)))
        config = parallel_files.make_config(specs, data_cfg.source_lang, data_cfg.target_lang)
        names = "+".join(p.name for p in specs[0].paths)
        return LocalFiles(parallel_files.ParallelFiles, config, {s.split: s.paths for s in specs}, f"files:{names}")
    if data_cfg.corpus == "tfds":
        return Catalog(data_cfg.name, catalog.default_data_dir(data_cfg.tfds_data_dir), split_map(data_cfg.splits),
                       [data_cfg.source_lang, data_cfg.target_lang], "data.source_lang/target_lang")
    return Builtin(data_cfg.corpus, data_cfg.config, data_cfg.data_dir)


def splits(source, data_cfg, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
    """Parallel splits with `source_lang`/`target_lang` features checked to exist."""
    out = corpus.prepared_splits(source, prepare_dir)
    if data_cfg.max_train_examples:
        out["train"] = out["train"].take(data_cfg.max_train_examples)
    for ds in out.values():
        missing = {data_cfg.source_lang, data_cfg.target_lang} - set(ds.element_spec)
        if missing:
            raise DataError(f"data.source_lang/target_lang: corpus {source.description} has languages "
                            f"{sorted(ds.element_spec)}, not {sorted(missing)}")
    return out
