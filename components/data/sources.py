"""Where a task's data comes from, as one "source" object: its fingerprint, its splits, its name.

Three kinds behind one interface, so `corpus` (what the stages call) never branches on
where data comes from: the built-in corpora (`loading.BUILDERS`), the user's own files
(our generic `ParallelFiles` / `TextFiles` tfds builders) and TFDS catalog datasets. Each
task's data adapter (`pipeline/tasks/<task>/data.py`) makes one from its `data` section.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

from components.data import catalog, loading, user_files
from components.data.paths import locate_data_dir, resolve_data_dir
from components.data.splits import SPLITS


def user_path(path: str) -> Path:
    """A path from the config: ~ expanded, relative to the current folder."""
    return Path(path).expanduser().resolve()


@dataclass
class Builtin:
    """tatoeba / multi30k / tiny_shakespeare, read from the raw-corpora folder."""
    corpus: str
    config: str | None
    data_dir_setting: str | None

    @property
    def description(self) -> str:
        return f"{self.corpus}/{self.config}" if self.config else self.corpus

    def preflight(self) -> str:
        path, origin = locate_data_dir(self.data_dir_setting)
        missing = loading.check_available(self.corpus, self.config, path)
        note = f"; {len(missing)} file(s) to download" if missing else ""
        return f"data: {path} ({origin}{note})"

    def fingerprint(self) -> str:
        return loading.data_fingerprint(self.corpus, self.config, resolve_data_dir(self.data_dir_setting))

    def splits(self, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
        builder = loading.prepare_builder(self.corpus, self.config, resolve_data_dir(self.data_dir_setting),
                                          Path(prepare_dir) / "tfds")
        return loading.load_splits(builder)

    def uri(self, split: str) -> str:
        data_dir = resolve_data_dir(self.data_dir_setting)
        files = loading.raw_files(self.corpus, self.config, data_dir)
        return str(files[0].parent if files else data_dir)


@dataclass
class LocalFiles:
    """The user's files through one of our generic builders (`builder_cls` + `config`)."""
    builder_cls: type
    config: object  # a tfds BuilderConfig naming every file
    files: dict[str, list[Path]]  # split -> its files, as given
    description: str

    def preflight(self) -> str:
        for paths in self.files.values():
            for path in paths:
                user_files.require_file(path)
        validate = getattr(self.builder_cls, "validate", None)
        if validate is not None:  # content errors too, before any MLflow run exists
            validate(self.config)
        return f"data: {self.description} ({', '.join(self.files)})"

    def fingerprint(self) -> str:
        # The config's name hashes the resolved paths and options; the bytes are hashed here.
        paths = [p for split in SPLITS for p in self.files.get(split, [])]
        return loading.files_fingerprint(f"{self.builder_cls.name}/{self.config.name}", paths)

    def splits(self, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
        tfds_dir = os.fspath(Path(prepare_dir) / "tfds")
        builder = loading.prepare(lambda: self.builder_cls(data_dir=tfds_dir, config=self.config),
                                  self.fingerprint())
        return loading.load_splits(builder)

    def uri(self, split: str) -> str:
        return str((self.files.get(split) or self.files["train"])[0])


@dataclass
class Catalog:
    """A TFDS catalog dataset, read in place from its TFDS data dir (`prepare_dir` unused)."""
    name: str
    data_dir: Path
    split_map: dict[str, str]
    features: list[str]  # what each example must offer (after flattening)
    feature_key: str  # the config key that names those features, for errors
    text_lines: bool = False  # LM: split each example's text into lines
    _builder: object = field(default=None, repr=False)

    @property
    def description(self) -> str:
        return f"tfds:{self.name}"

    def builder(self):
        if self._builder is None:
            self._builder = catalog.prepared_builder(self.name, self.data_dir)
        return self._builder

    def preflight(self) -> str:
        return f"data: {self.description} in {self.builder().data_dir}"

    def fingerprint(self) -> str:
        return catalog.fingerprint(self.builder(), self.split_map)

    def splits(self, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
        out = {}
        for split, ds in catalog.load(self.builder(), self.split_map).items():
            ds = catalog.select(ds, self.features, self.name, self.feature_key)
            out[split] = catalog.lines(ds, self.features[0]) if self.text_lines else ds
        return out

    def uri(self, split: str) -> str:
        return os.fspath(self.builder().data_dir)


def split_map(splits) -> dict[str, str]:
    """Our split -> the TFDS split; `splits`: an object with train/validation/test names, or None."""
    return {s: getattr(splits, s) if splits else s for s in SPLITS}
