"""TFDS builder for the manythings.org / Tatoeba English–X sentence pairs."""

from __future__ import annotations

import dataclasses
import pathlib

import tensorflow_datasets as tfds

from components.data.builder import LocalBuilder
from components.data.errors import DataError
from components.data.paths import find_or_download
from components.data.splits import SPLITS, split_of

_HOMEPAGE = "https://www.manythings.org/anki/"
_CITATION = "Tatoeba sentence pairs, https://tatoeba.org, CC-BY 2.0 (France)."


@dataclasses.dataclass(eq=False)
class TatoebaConfig(tfds.core.BuilderConfig):
    """One language pair: where its file lives locally and upstream.

    relpath: file path relative to the data folder (the tfds manual dir).
    url: upstream Anki export zip, whose member `basename(relpath)` is the file.
    lang: ISO 639-1 code of the non-English side; also its feature name.
    """

    relpath: str = ""
    url: str = ""
    lang: str = ""


def _config(pair: str, lang: str, filename: str, description: str) -> TatoebaConfig:
    return TatoebaConfig(
        name=pair,
        description=description,
        relpath=f"tatoeba/{pair}/{filename}",
        url=f"https://www.manythings.org/anki/{pair}.zip",
        lang=lang,
    )


def read_pairs(path: pathlib.Path, url: str) -> list[tuple[int, str, str]]:
    """Parse a manythings file into (line_number, english, other) triples.

    Accepts 2 columns (older releases) or 3 (with attribution); extra columns
    are ignored. Text is kept byte for byte: no normalisation, no case folding,
    no stripping inside a line. Lines are split on "\\n" only, not with
    `str.splitlines()`, which would also break on Unicode separators that may
    legitimately occur inside a sentence. Blank lines are skipped; anything
    else malformed means a damaged file, reported with its line number.
    """
    def corrupt(lineno: int, why: str) -> DataError:
        return DataError(
            f"{path}:{lineno}: {why}; the file looks corrupt. Get a fresh copy "
            f"from {url} (unzip it to {path})."
        )

    pairs = []
    data = path.read_bytes()
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise corrupt(lineno, f"invalid UTF-8 ({e.reason})") from e
        cols = line.split("\t")
        if len(cols) < 2:
            raise corrupt(lineno, "expected 2 or 3 tab-separated columns, found 1")
        en, other = cols[0], cols[1]
        if not en.strip() or not other.strip():
            raise corrupt(lineno, "empty sentence in column 1 or 2")
        pairs.append((lineno, en, other))
    return pairs


class Tatoeba(LocalBuilder):
    """English–X sentence pairs, split 80/10/10 by a hash of the English side.

    Never registered (`components.data.builder.LocalBuilder`): tfds ships its
    own `tatoeba`; `components.data.loading` constructs this class directly.
    """

    name = "tatoeba"

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Local-first build with hash splits."}
    BUILDER_CONFIGS = [
        _config("urd-eng", "ur", "urd.txt", "English–Urdu (the seed's pair)."),
        _config("fra-eng", "fr", "fra.txt", "English–French."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place tatoeba/<pair>/<file>.txt (unzipped from "
        "https://www.manythings.org/anki/<pair>.zip) in the data folder."
    )

    @classmethod
    def local_files(cls, config: str | None) -> list[str]:
        """Raw files (relative to the data folder) this config reads."""
        return [cls._named_config(config).relpath]

    @classmethod
    def _named_config(cls, config: str | None) -> TatoebaConfig:
        if config is None:
            return cls.BUILDER_CONFIGS[0]
        for c in cls.BUILDER_CONFIGS:
            if c.name == config:
                return c
        names = [c.name for c in cls.BUILDER_CONFIGS]
        raise DataError(f"tatoeba: unknown config {config!r}; choose one of {names}")

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"Tatoeba {cfg.name} sentence pairs (manythings.org).",
            features=tfds.features.FeaturesDict(
                {"en": tfds.features.Text(), cfg.lang: tfds.features.Text()}
            ),
            supervised_keys=("en", cfg.lang),
            homepage=_HOMEPAGE,
            citation=_CITATION,
            # Reproducible order: examples come out in file order per split.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        path = find_or_download(
            dl_manager,
            corpus=f"tatoeba/{cfg.name}",
            relpath=cfg.relpath,
            url=cfg.url,
            member=pathlib.PurePosixPath(cfg.relpath).name,
        )
        # Parse (and validate) the whole file here, before tfds starts writing,
        # so a corrupt line fails fast with our message rather than mid-write.
        by_split = {s: [] for s in SPLITS}
        for lineno, en, other in read_pairs(path, cfg.url):
            by_split[split_of(en)].append((lineno, en, other))
        empty = [s for s, rows in by_split.items() if not rows]
        if empty:
            # tfds refuses to write an empty split ("No examples were yielded").
            total = sum(len(rows) for rows in by_split.values())
            raise DataError(
                f"tatoeba/{cfg.name}: {path} has {total} sentence pairs, too few "
                f"for an 80/10/10 split (no {' or '.join(empty)} examples)."
            )
        return {s: self._generate_examples(rows) for s, rows in by_split.items()}

    def _generate_examples(self, rows):
        lang = self.builder_config.lang
        for lineno, en, other in rows:
            yield lineno, {"en": en, lang: other}
