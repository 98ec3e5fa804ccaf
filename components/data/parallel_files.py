"""TFDS builder for a user's parallel corpus: a source + target file, or one TSV, per split.

Only a train file -> split 80/10/10 by a hash of the source sentence (as Tatoeba);
a validation/test file given -> used as is, and a missing one is carved from train
by the same hash (90/10). Going through a tfds builder gives user data the same
caching, fingerprints and skip logic as the built-in corpora.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import tensorflow_datasets as tfds

from components.data.builder import LocalBuilder
from components.data.errors import DataError
from components.data.splits import SPLITS, split_of
from components.data.user_files import parallel_lines, tsv_pairs


@dataclasses.dataclass(frozen=True)
class SplitFiles:
    """One split's files: `source` + `target`, or `tsv` with 0-based columns."""
    split: str
    source: Path | None = None
    target: Path | None = None
    tsv: Path | None = None
    source_column: int = 0
    target_column: int = 1

    @property
    def paths(self) -> list[Path]:
        return [self.tsv] if self.tsv else [self.source, self.target]

    def read(self) -> list[tuple[int, str, str]]:
        if self.tsv:
            return tsv_pairs(self.tsv, self.source_column, self.target_column)
        return parallel_lines(self.source, self.target)


@dataclasses.dataclass(eq=False)
class ParallelFilesConfig(tfds.core.BuilderConfig):
    source_lang: str = ""
    target_lang: str = ""
    files: tuple[SplitFiles, ...] = ()


def make_config(files: list[SplitFiles], source_lang: str, target_lang: str) -> ParallelFilesConfig:
    """A config named by a hash of the resolved paths and options, so file sets never share a folder."""
    key = repr((source_lang, target_lang, [dataclasses.astuple(f) for f in files]))
    return ParallelFilesConfig(
        name="f" + hashlib.sha256(key.encode()).hexdigest()[:12],
        description="; ".join(f"{f.split}: {', '.join(map(str, f.paths))}" for f in files),
        source_lang=source_lang, target_lang=target_lang, files=tuple(files))


def assign_splits(files: list[SplitFiles]) -> dict[str, list[tuple[int, str, str]]]:
    """Every split's rows: given files as they are, missing splits carved from train by hash."""
    given = {f.split: f.read() for f in files}
    missing = [s for s in SPLITS if s not in given]
    out = {s: rows for s, rows in given.items() if s != "train"}
    if not missing:
        out["train"] = given["train"]
        return out
    out.update({s: [] for s in ("train", *missing)})
    train_share = 0.8 if len(missing) == 2 else 0.9
    for row in given["train"]:
        part = split_of(row[1], train=train_share, validation=0.1)  # the source decides
        out["train" if part == "train" else missing[0] if part == "validation" else missing[-1]].append(row)
    empty = [s for s in SPLITS if not out[s]]
    if empty:  # tfds refuses to write an empty split
        train = next(f for f in files if f.split == "train")
        raise DataError(f"{', '.join(map(str, train.paths))}: {len(given['train'])} sentence pairs are too few "
                        f"to hash-split off {' and '.join(missing)} (none fell in {', '.join(empty)}); add "
                        f"lines or give data.{empty[0]} files")
    return out


class ParallelFiles(LocalBuilder):
    """Sentence pairs from the user's files; features `{source_lang: text, target_lang: text}`.

    Constructed with an explicit `config=` (see `make_config`); never registered, so it
    cannot clash with catalog names.
    """

    name = "parallel_files"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Parallel files or TSV per split, hash split of the rest."}

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"User parallel corpus ({cfg.description}).",
            features=tfds.features.FeaturesDict(
                {cfg.source_lang: tfds.features.Text(), cfg.target_lang: tfds.features.Text()}),
            supervised_keys=(cfg.source_lang, cfg.target_lang),
            disable_shuffling=True,  # file order per split, reproducibly
        )

    def _split_generators(self, dl_manager):
        # Read and validate every file before tfds starts writing.
        return {s: self._generate_examples(rows) for s, rows in assign_splits(list(self.builder_config.files)).items()}

    def _generate_examples(self, rows):
        cfg = self.builder_config
        for lineno, src, tgt in rows:
            yield lineno, {cfg.source_lang: src, cfg.target_lang: tgt}
