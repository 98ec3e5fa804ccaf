"""A config's `data` section -> prepared TFDS splits: the one seam stages get data through.

Pure functions of (data config, prepare folder); both tasks' stages call these, so a new
data source is added here and in `loading.BUILDERS`, not in the stage files.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import tensorflow as tf

from components.data import loading
from components.data.paths import locate_data_dir, resolve_data_dir


def fingerprint(data_cfg) -> str:
    """Hash of the raw files the data section reads (for stage skipping)."""
    return loading.data_fingerprint(data_cfg.corpus, data_cfg.config, resolve_data_dir(data_cfg.data_dir))


def preflight(data_cfg) -> str:
    """Resolve the data folder and check the raw files are there or downloadable, before any
    run is opened (raises `DataError`). Returns a one-line description of the choice."""
    path, source = locate_data_dir(data_cfg.data_dir)
    missing = loading.check_available(data_cfg.corpus, data_cfg.config, path)
    note = f"; {len(missing)} file(s) to download" if missing else ""
    return f"data: {path} ({source}{note})"


def describe(data_cfg) -> str:
    return f"{data_cfg.corpus}/{data_cfg.config}" if data_cfg.config else data_cfg.corpus


def prepared_splits(data_cfg, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
    """train/validation/test datasets of feature dicts, built (or reused) under `prepare_dir/tfds`."""
    builder = loading.prepare_builder(data_cfg.corpus, data_cfg.config, resolve_data_dir(data_cfg.data_dir),
                                      Path(prepare_dir) / "tfds")
    return loading.load_splits(builder)


def translation_splits(data_cfg, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
    """Parallel splits with `source_lang`/`target_lang` features checked to exist."""
    splits = prepared_splits(data_cfg, prepare_dir)
    if data_cfg.max_train_examples:
        splits["train"] = splits["train"].take(data_cfg.max_train_examples)
    for ds in splits.values():
        missing = {data_cfg.source_lang, data_cfg.target_lang} - set(ds.element_spec)
        if missing:
            raise ValueError(f"data.source_lang/target_lang: corpus {describe(data_cfg)} has languages "
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


def source_uri(data_cfg) -> str:
    """Where the raw data lives (for MLflow dataset tracking): the first local raw file's folder."""
    files = loading.raw_files(data_cfg.corpus, data_cfg.config, resolve_data_dir(data_cfg.data_dir))
    return str(files[0].parent if files else resolve_data_dir(data_cfg.data_dir))


def log_splits(tracking, data_cfg, sizes: dict[str, int], digest: str) -> None:
    """Dataset name, split sizes and fingerprint on the stage run, and each split as an MLflow input."""
    name = describe(data_cfg)
    tracking.log_params({"dataset": name, "data_fingerprint": digest[:16]})
    for split in sizes:
        split_digest = hashlib.sha256(f"{digest}:{split}".encode()).hexdigest()
        tracking.log_dataset(f"{name}:{split}", source_uri(data_cfg), split_digest, context=split)
