"""The one entry point the rest of the product uses to get corpus data.

Builders are looked up in our own table (`BUILDERS`), not tfds's registry: our
names overlap tfds's built-in `tatoeba` and `tiny_shakespeare`.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil

import tensorflow as tf
import tensorflow_datasets as tfds

from components.data.errors import DataError
from components.data.multi30k import Multi30k
from components.data.paths import DATA_DIR_ENV, probe_url
from components.data.splits import SPLITS
from components.data.tatoeba import Tatoeba
from components.data.tinyshakespeare import TinyShakespeare

BUILDERS: dict[str, type[tfds.core.GeneratorBasedBuilder]] = {
    "tatoeba": Tatoeba,
    "multi30k": Multi30k,
    "tiny_shakespeare": TinyShakespeare,
}

# Written next to the prepared TFRecords: the raw-data fingerprint they were
# built from. tfds itself reuses a prepared dataset whenever its folder exists,
# even if the raw files changed since; this stamp lets us notice and rebuild.
_STAMP = "pipeline_data_fingerprint.txt"


def _builder_cls(name: str):
    try:
        return BUILDERS[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; choose one of {sorted(BUILDERS)}"
        ) from None


def raw_files(name: str, config: str | None, data_dir: os.PathLike) -> list[pathlib.Path]:
    """Local raw files the builder reads, in a fixed order (may not exist yet)."""
    return [pathlib.Path(data_dir) / rel for rel in _builder_cls(name).local_files(config)]


def data_fingerprint(name: str, config: str | None, data_dir: os.PathLike) -> str:
    """sha256 over the raw files (relative path + bytes), for stage skipping.

    A missing file contributes a "missing" marker instead of failing, because
    the builder may still fetch it upstream; the fingerprint then changes once
    the file appears locally.
    """
    data_dir = pathlib.Path(data_dir)
    files = raw_files(name, config, data_dir)
    return files_fingerprint(f"{name}/{config}", files, [p.relative_to(data_dir).as_posix() for p in files])


def files_fingerprint(label: str, files: list[pathlib.Path], names: list[str] | None = None) -> str:
    """sha256 over `label` and each file's name (default: its path), size and bytes."""
    h = hashlib.sha256()
    h.update(f"{label}\0".encode())
    for path, name in zip(files, names or [str(p) for p in files]):
        h.update(name.encode() + b"\0")
        if not path.is_file():
            h.update(b"missing\0")
            continue
        h.update(str(path.stat().st_size).encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def prepare_builder(
    name: str,
    config: str | None,
    data_dir: os.PathLike,
    tfds_data_dir: os.PathLike,
) -> tfds.core.DatasetBuilder:
    """Build (or reuse) the TFRecords for built-in corpus `name`/`config` and return the builder.

    Raw files are read from `data_dir` (passed to tfds as the manual dir) with
    no network access when present; tfds output goes under `tfds_data_dir`.
    """
    cls = _builder_cls(name)
    cls.local_files(config)  # validates `config` with a readable message
    return prepare(lambda: cls(data_dir=os.fspath(tfds_data_dir), config=config),
                   data_fingerprint(name, config, data_dir), manual_dir=data_dir)


def prepare(make_builder, fingerprint: str, manual_dir: os.PathLike | None = None) -> tfds.core.DatasetBuilder:
    """`download_and_prepare` the builder `make_builder()` returns, rebuilding a stale folder.

    A prepared folder is reused only if its stamp equals `fingerprint` (the raw
    data it was built from). tfds writes into a temporary folder and renames it
    only on success, so a build that fails (e.g. a DataError from bad lines)
    leaves nothing a later run could trust. GCS is never consulted: with a
    built-in dataset of the same name tfds could otherwise fetch *its* prepared
    data instead of building ours.
    """
    builder = make_builder()
    prepared = pathlib.Path(os.fspath(builder.data_dir))
    stamp = prepared / _STAMP
    if (prepared / "dataset_info.json").is_file():
        old = stamp.read_text().strip() if stamp.is_file() else None
        if old != fingerprint:
            shutil.rmtree(prepared)  # stale: built from different raw files
            builder = make_builder()

    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=os.fspath(manual_dir) if manual_dir else None,
            try_download_gcs=False,
        )
    )
    if not stamp.is_file():
        stamp.write_text(fingerprint + "\n")
    return builder


def load_splits(builder: tfds.core.DatasetBuilder) -> dict[str, tf.data.Dataset]:
    """train/validation/test as dict-of-feature datasets, in generation order."""
    return {
        split: builder.as_dataset(split=split, shuffle_files=False, as_supervised=False)
        for split in SPLITS
    }


def _upstream_url(name: str, config: str | None) -> str:
    """Where the builder downloads `name`/`config` from when a raw file is not local."""
    from components.data import multi30k, tinyshakespeare

    if name == "tatoeba":
        return Tatoeba._named_config(config).url
    if name == "multi30k":
        return multi30k.URL_TEMPLATE.format(file="")
    return tinyshakespeare.URL


def check_available(name: str, config: str | None, data_dir: os.PathLike) -> list[pathlib.Path]:
    """Cheap pre-flight before a run starts: every raw file is local, or the upstream host
    answers (the builder then downloads the missing ones). Returns the missing files;
    raises `DataError` naming them, the folder and the URL when neither holds."""
    missing = [p for p in raw_files(name, config, data_dir) if not p.is_file()]
    if missing:
        url = _upstream_url(name, config)
        reason = probe_url(url)
        if reason is not None:
            shown = ", ".join(str(p) for p in missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise DataError(
                f"{name}: {shown} not found and {url} is unreachable ({reason}). Put the file(s) "
                f"under {data_dir}, or set {DATA_DIR_ENV} / data.data_dir to a folder holding them.")
    return missing
