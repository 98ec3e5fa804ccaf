"""TFDS builder for Multi30k (WMT16 multimodal task 1), en/de/fr."""

from __future__ import annotations

import gzip
import zlib

import tensorflow_datasets as tfds

from components.data.builder import LocalBuilder
from components.data.errors import DataError
from components.data.paths import find_or_download

LANGS = ("en", "de", "fr")
# Our split name -> upstream file stem.
SPLIT_FILES = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
URL_TEMPLATE = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/{file}"


def relpath(split: str, lang: str) -> str:
    return f"multi30k/{SPLIT_FILES[split]}.{lang}.gz"


def url(split: str, lang: str) -> str:
    return URL_TEMPLATE.format(file=f"{SPLIT_FILES[split]}.{lang}.gz")


def read_gzip_lines(path, source_url: str) -> list[str]:
    """Decompress and split on "\\n" only (alignment is by line number).

    Any gzip, zlib or UTF-8 failure means a damaged file: report which one.
    """
    try:
        with gzip.open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise DataError(
            f"multi30k: {path} is not a readable gzip of UTF-8 text "
            f"({type(e).__name__}: {e}). Get a fresh copy from {source_url}."
        ) from e
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class Multi30k(LocalBuilder):
    """Line-aligned en/de/fr captions with the official train/val/test_2016_flickr.

    Never registered, like our other builders (`components.data.builder.LocalBuilder`), so
    importing them never interferes with tfds's registry.
    """

    name = "multi30k"

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Local-first build of task 1 raw en/de/fr."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place multi30k/{train,val,test_2016_flickr}.{en,de,fr}.gz (from "
        + URL_TEMPLATE.format(file="")
        + ") in the data folder."
    )

    @classmethod
    def local_files(cls, config: str | None) -> list[str]:
        """Raw files (relative to the data folder) this builder reads."""
        if config is not None:
            raise DataError(f"multi30k has no configs, got {config!r}")
        return [relpath(s, lang) for s in SPLIT_FILES for lang in LANGS]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Multi30k task 1: Flickr30k captions in en, de, fr.",
            features=tfds.features.FeaturesDict(
                {lang: tfds.features.Text() for lang in LANGS}
            ),
            homepage="https://github.com/multi30k/dataset",
            citation=(
                "Elliott et al. 2016, Multi30K: Multilingual English-German "
                "Image Descriptions."
            ),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        generators = {}
        for split in SPLIT_FILES:
            columns, paths = {}, {}
            for lang in LANGS:
                paths[lang] = find_or_download(
                    dl_manager,
                    corpus="multi30k",
                    relpath=relpath(split, lang),
                    url=url(split, lang),
                )
                columns[lang] = read_gzip_lines(paths[lang], url(split, lang))
            counts = {lang: len(lines) for lang, lines in columns.items()}
            if len(set(counts.values())) != 1:
                detail = ", ".join(f"{paths[lang]}: {n} lines" for lang, n in counts.items())
                raise DataError(
                    f"multi30k {split}: the language files are not line-aligned "
                    f"({detail}). Get fresh copies from "
                    f"{URL_TEMPLATE.format(file='')}."
                )
            if not counts["en"]:  # tfds refuses to write an empty split
                raise DataError(
                    f"multi30k {split}: {paths['en']} and its de/fr siblings are "
                    f"empty. Get fresh copies from {URL_TEMPLATE.format(file='')}."
                )
            generators[split] = self._generate_examples(columns)
        return generators

    def _generate_examples(self, columns):
        for i, row in enumerate(zip(*(columns[lang] for lang in LANGS))):
            yield i, dict(zip(LANGS, row))
