"""TFDS builder for Karpathy's Tiny Shakespeare, one example per line."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from components.data.builder import LocalBuilder
from components.data.errors import DataError
from components.data.paths import find_or_download

RELPATH = "tinyshakespeare/input.txt"
URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
    "tinyshakespeare/input.txt"
)


def split_bounds(n_lines: int) -> dict[str, tuple[int, int]]:
    """Contiguous [start, end) line ranges: 90% train, 5% validation, 5% test.

    Contiguous rather than hashed because a language model is evaluated on
    held-out *running text*; shuffled lines would leak context across splits.
    """
    train_end = n_lines * 90 // 100
    val_end = n_lines * 95 // 100
    return {
        "train": (0, train_end),
        "validation": (train_end, val_end),
        "test": (val_end, n_lines),
    }


def read_lines(path) -> list[str]:
    """Lines of the file without their "\\n" (blank lines kept, order kept)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: invalid UTF-8 at byte {e.start}; the file looks corrupt. "
            f"Get a fresh copy from {URL}."
        ) from e
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline terminates the last line
    return lines


class TinyShakespeare(LocalBuilder):
    """Tiny Shakespeare as ordered lines; consumers add "\\n" or `<eos>` back.

    Never registered (`components.data.builder.LocalBuilder`) because tfds has a
    built-in `tiny_shakespeare` (a single example per split).
    """

    name = "tiny_shakespeare"

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "One example per line, contiguous 90/5/5 splits."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Place {RELPATH} (from {URL}) in the data folder."

    @classmethod
    def local_files(cls, config: str | None) -> list[str]:
        """Raw files (relative to the data folder) this builder reads."""
        if config is not None:
            raise DataError(f"tiny_shakespeare has no configs, got {config!r}")
        return [RELPATH]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Tiny Shakespeare (char-rnn), one example per line.",
            features=tfds.features.FeaturesDict(
                {
                    "text": tfds.features.Text(),
                    # 0-based line index in input.txt; lets consumers check order.
                    "line": np.int64,
                }
            ),
            homepage="https://github.com/karpathy/char-rnn",
            # Line order is the data: never shuffle.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        path = find_or_download(
            dl_manager, corpus="tiny_shakespeare", relpath=RELPATH, url=URL
        )
        lines = read_lines(path)
        if len(lines) < 20:  # tfds refuses to write an empty split
            raise DataError(
                f"tiny_shakespeare: {path} has {len(lines)} lines; at least 20 "
                f"are needed for the 90/5/5 split. Get a fresh copy from {URL}."
            )
        return {
            split: self._generate_examples(lines, start, end)
            for split, (start, end) in split_bounds(len(lines)).items()
        }

    def _generate_examples(self, lines, start, end):
        for i in range(start, end):
            yield i, {"text": lines[i], "line": i}
