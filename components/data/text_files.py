"""TFDS builder for a language-model corpus in the user's text files (the PTB/WikiText layout).

train/validation/test files are used as they are; a missing validation/test is cut from
the *end* of the train file (contiguous, like Tiny Shakespeare: held-out running text,
no context leaking across splits): both missing -> 90/5/5, one missing -> 90/10.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from components.data.builder import LocalBuilder
from components.data.errors import DataError
from components.data.splits import SPLITS
from components.data.user_files import running_text_lines


@dataclasses.dataclass(eq=False)
class TextFilesConfig(tfds.core.BuilderConfig):
    files: tuple[tuple[str, Path], ...] = ()  # (split, path), train first


def make_config(files: dict[str, Path]) -> TextFilesConfig:
    """A config named by a hash of the resolved paths, so file sets never share a folder."""
    items = tuple((s, Path(files[s])) for s in SPLITS if s in files)
    return TextFilesConfig(name="f" + hashlib.sha256(repr(items).encode()).hexdigest()[:12],
                           description="; ".join(f"{s}: {p}" for s, p in items), files=items)


def carve(lines: list[str], missing: list[str]) -> dict[str, tuple[int, int]]:
    """[start, end) line ranges of the train file for train and the missing splits."""
    n = len(lines)
    if len(missing) == 2:
        a, b = n * 90 // 100, n * 95 // 100
        return {"train": (0, a), "validation": (a, b), "test": (b, n)}
    a = n * 90 // 100
    return {"train": (0, a), missing[0]: (a, n)}


class TextFiles(LocalBuilder):
    """Ordered lines of the user's text files; consumers add `<eos>` / "\\n" back per line."""

    name = "text_files"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "train/validation/test text files, one example per line."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"User text corpus ({self.builder_config.description}).",
            features=tfds.features.FeaturesDict({"text": tfds.features.Text(), "line": np.int64}),
            disable_shuffling=True,  # line order is the data
        )

    def _split_generators(self, dl_manager):
        files = dict(self.builder_config.files)
        lines = {s: running_text_lines(p) for s, p in files.items()}  # all validated before writing
        out = {s: self._generate_examples(v, 0, len(v)) for s, v in lines.items() if s != "train"}
        missing = [s for s in SPLITS if s not in files]
        ranges = carve(lines["train"], missing) if missing else {"train": (0, len(lines["train"]))}
        for split, (a, b) in ranges.items():
            if a == b:  # tfds refuses to write an empty split
                raise DataError(f"{files['train']}: {len(lines['train'])} lines are too few to cut "
                                f"{' and '.join(missing)} from its end; add lines or give data.{split}")
            out[split] = self._generate_examples(lines["train"], a, b)
        return out

    def _generate_examples(self, lines, start, end):
        for i in range(start, end):
            yield i, {"text": lines[i], "line": i}
