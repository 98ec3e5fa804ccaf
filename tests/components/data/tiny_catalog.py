"""Two tiny *registered* TFDS datasets, prepared into a data dir a test makes itself.

They stand in for catalog datasets (wmt14_translate, lm1b) without network: once
prepared, `tfds.builder(name, data_dir=...)` finds them like any catalog dataset, and a
fresh process (the CLI) without this module loads them from their files alone.
"""
from __future__ import annotations

import os
import random

import tensorflow_datasets as tfds
from etils import epath

TRANSLATE = "byod_tiny_translate"
TEXT = "byod_tiny_text"

EN = "the a cat dog sees runs big small red blue house tree".split()
DE = "der die katze hund sieht läuft groß klein rot blau haus baum".split()


def pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` deterministic word-for-word en/de pairs."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        idx = [rng.randrange(len(EN)) for _ in range(rng.randint(3, 7))]
        out.append((" ".join(EN[j] for j in idx), " ".join(DE[j] for j in idx)))
    return out


class ByodTinyTranslate(tfds.core.GeneratorBasedBuilder):
    """A `Translation` feature ({"de": .., "en": ..}), as wmt14_translate/ted_hrlr_translate have."""

    code_path = tfds.core.utils.classproperty(classmethod(lambda cls: epath.Path(__file__)))
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.Translation(languages=("de", "en")),
                                     supervised_keys=("de", "en"), disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(160, 0), "validation": self._generate_examples(20, 1),
                "test": self._generate_examples(20, 2)}

    def _generate_examples(self, n, seed):
        for i, (en, de) in enumerate(pairs(n, seed)):
            yield i, {"en": en, "de": de}


class ByodTinyText(tfds.core.GeneratorBasedBuilder):
    """A `text` feature holding several lines per example, as tfds's tiny_shakespeare does."""

    code_path = tfds.core.utils.classproperty(classmethod(lambda cls: epath.Path(__file__)))
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
                                     disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 30), "validation": self._generate_examples(1, 6),
                "test": self._generate_examples(2, 6)}

    def _generate_examples(self, seed, n):
        for i in range(n):
            yield i, {"text": "\n".join(en for en, _ in pairs(5, seed + i)) + "\n"}


def prepare(data_dir) -> None:
    """Prepare both datasets under `data_dir` (no network: they have no downloads)."""
    for cls in (ByodTinyTranslate, ByodTinyText):
        cls(data_dir=os.fspath(data_dir)).download_and_prepare()
