"""A config's `data` section -> prepared TFDS splits: the one seam stages get data through.

Pure functions of (data config, prepare folder); both tasks' stages call these. Where the
data comes from (built-in corpus, the user's files, a TFDS catalog dataset) is decided
once, in `sources`, so a new kind of source is added there, not in the stage files.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import tensorflow as tf

from components.data import sources
from components.data.errors import DataError


def source(data_cfg):
    """The source object behind a translator or language-model `data` section."""
    is_translation = hasattr(data_cfg, "source_lang")
    return sources.translation_source(data_cfg) if is_translation else sources.lm_source(data_cfg)


def fingerprint(data_cfg) -> str:
    """Hash of the data the section reads (for stage skipping)."""
    return source(data_cfg).fingerprint()


def preflight(data_cfg) -> str:
    """Check the data can be read (or downloaded) before any run is opened (raises `DataError`).
    Returns a one-line description of where it comes from."""
    return source(data_cfg).preflight()


def describe(data_cfg) -> str:
    return source(data_cfg).description


def prepared_splits(data_cfg, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
    """train/validation/test datasets of feature dicts, built (or reused) under `prepare_dir/tfds`."""
    return source(data_cfg).splits(Path(prepare_dir))


def translation_splits(data_cfg, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
    """Parallel splits with `source_lang`/`target_lang` features checked to exist."""
    splits = prepared_splits(data_cfg, prepare_dir)
    if data_cfg.max_train_examples:
        splits["train"] = splits["train"].take(data_cfg.max_train_examples)
    for ds in splits.values():
        missing = {data_cfg.source_lang, data_cfg.target_lang} - set(ds.element_spec)
        if missing:
            raise DataError(f"data.source_lang/target_lang: corpus {describe(data_cfg)} has languages "
                            f"{sorted(ds.element_spec)}, not {sorted(missing)}")
    return splits


def lm_lines(data_cfg, prepare_dir: Path) -> dict[str, list[str]]:
    """Each split's lines of text, capped by `max_train_lines` / `max_eval_lines`."""
    out = {}
    for split, ds in prepared_splits(data_cfg, prepare_dir).items():
        cap = data_cfg.max_train_lines if split == "train" else data_cfg.max_eval_lines
        if cap:
            ds = ds.take(cap)
        out[split] = texts(ds, "text")
    return out


def texts(ds: tf.data.Dataset, key: str) -> list[str]:
    """One feature of every example, decoded."""
    return [t.decode("utf-8") for t in ds.map(lambda ex: ex[key]).as_numpy_iterator()]


def source_uri(data_cfg, split: str = "train") -> str:
    """Where a split's data lives (for MLflow dataset tracking): a raw file or folder, a TFDS folder."""
    return source(data_cfg).uri(split)


def log_splits(tracking, data_cfg, sizes: dict[str, int], digest: str) -> None:
    """Dataset name, split sizes and fingerprint on the stage run, and each split as an MLflow input."""
    src = source(data_cfg)
    name = src.description
    tracking.log_params({"dataset": name, "data_fingerprint": digest[:16]})
    for split in sizes:
        split_digest = hashlib.sha256(f"{digest}:{split}".encode()).hexdigest()
        tracking.log_dataset(f"{name}:{split}", src.uri(split), split_digest, context=split)
