"""A TFDS catalog dataset (e.g. wmt14_translate/de-en) as a data source.

Looked up with `tfds.builder(name, data_dir=...)` like any TFDS user would: a dataset
already prepared in that data dir loads with no network (even without its builder code,
from its files); otherwise tfds downloads and prepares it there once.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import tensorflow as tf
import tensorflow_datasets as tfds

from components.data.errors import DataError
from components.data.paths import tfds_data_dir


def default_data_dir(configured: str | None) -> Path:
    """`data.tfds_data_dir`, else `paths.tfds_data_dir()` ($TFDS_DATA_DIR or ~/tensorflow_datasets)."""
    return (Path(configured).expanduser() if configured else tfds_data_dir()).resolve()


def prepared_builder(name: str, data_dir: Path) -> tfds.core.DatasetBuilder:
    """The dataset's builder, prepared (downloaded) first if it is not yet in `data_dir`."""
    try:
        builder = tfds.builder(name, data_dir=os.fspath(data_dir))
    except tfds.core.registered.DatasetNotFoundError as e:
        first = str(e).strip().splitlines()[0]
        raise DataError(f"data.name: {first} (looked in tfds's catalog and in {data_dir}); "
                        "see https://www.tensorflow.org/datasets/catalog for names, or set "
                        "data.tfds_data_dir to the folder where it is prepared") from None
    except Exception as e:  # tfds raises bare errors for malformed names and configs
        raise DataError(f"data.name: cannot open TFDS dataset {name!r} ({type(e).__name__}: {e})") from e
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as e:  # network, checksum and manual-download errors all end here
            raise DataError(f"data.name: TFDS dataset {name!r} is not prepared in {data_dir} and preparing "
                            f"it failed ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}). "
                            "Run once with network access, or point data.tfds_data_dir at a TFDS data dir "
                            "that holds it") from e
    return builder


def fingerprint(builder: tfds.core.DatasetBuilder, splits: dict[str, str]) -> str:
    """The prepared version's identity: full name, split mapping, dataset_info.json, file sizes.

    Prepared TFDS versions are immutable, so their metadata (which records every split's
    shard lengths and byte counts) identifies the data without hashing gigabytes.
    """
    h = hashlib.sha256(json.dumps([builder.info.full_name, splits], sort_keys=True).encode())
    folder = Path(os.fspath(builder.data_dir))
    for path in sorted(folder.iterdir()):
        h.update(path.name.encode() + b"\0" + str(path.stat().st_size).encode() + b"\0")
        if path.name == "dataset_info.json":
            h.update(path.read_bytes())
    return h.hexdigest()


def load(builder: tfds.core.DatasetBuilder, splits: dict[str, str]) -> dict[str, tf.data.Dataset]:
    """Our split -> the mapped TFDS split, with nested feature dicts flattened one level."""
    out = {}
    for ours, theirs in splits.items():
        try:
            ds = builder.as_dataset(split=theirs, shuffle_files=False)
        except Exception as e:  # unknown split names raise ValueError/KeyError/AssertionError
            raise DataError(f"data.splits.{ours}: {builder.info.full_name} has no split {theirs!r} "
                            f"(its splits: {', '.join(sorted(builder.info.splits))}; slices like "
                            f"'train[:5%]' work too)") from e
        out[ours] = ds.map(_flatten)
    return out


def _flatten(example: dict) -> dict:
    """{"translation": {"de": .., "en": ..}} -> {"de": .., "en": ..}; top-level keys win."""
    flat = {}
    for key, value in example.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                flat.setdefault(inner, v)
        else:
            flat[key] = value
    return flat


def select(ds: tf.data.Dataset, keys: list[str], name: str, hint: str) -> tf.data.Dataset:
    """Keep `keys` (text features) of each example, or fail naming the features there are."""
    missing = [k for k in keys if k not in ds.element_spec]
    if missing:
        raise DataError(f"{hint}: TFDS dataset {name} has features {sorted(ds.element_spec)}, not "
                        f"{missing}; set {hint} to feature names it has")
    return ds.map(lambda ex: {k: ex[k] for k in keys})


def lines(ds: tf.data.Dataset, feature: str) -> tf.data.Dataset:
    """Each example's text split into lines ("\\n"; a final newline ends the last line), as `text`."""
    def split(ex):
        text = tf.strings.regex_replace(ex[feature], "\n$", "")
        return tf.data.Dataset.from_tensor_slices({"text": tf.strings.split(text, "\n")})
    return ds.flat_map(split)
