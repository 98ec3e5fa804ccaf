"""Reading a user's own text files (plain or .gz), failing with `path:line: what; how to fix`.

Every check runs over the whole file before tfds writes anything, so bad data never
leaves a half-built dataset behind.
"""
from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

from components.data.errors import DataError


def require_file(path: Path) -> Path:
    """The path, or a `DataError` saying it is missing (also the pre-flight check before a run)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file; give the path of the text file inside it "
                        "in the config's data section")
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path in the config's data section "
                        "(relative paths are resolved against the current folder)")
    return path


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz."""
    path = require_file(path)
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a readable gzip file ({e}); re-compress it with gzip "
                        "or drop the .gz suffix if it is plain text") from e


def decode(path: Path, data: bytes) -> str:
    """UTF-8 text, or a DataError naming the line of the first invalid byte.

    A leading byte-order mark (Windows editors write one) is dropped: it is not text, and
    kept it would become part of the first token (a vocabulary entry of its own)."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: invalid UTF-8 ({e.reason} at byte {e.start}); "
                        "convert the file to UTF-8, e.g. iconv -f LATIN1 -t UTF-8") from e


def sentence_lines(path: Path) -> list[str]:
    """One sentence per line, split on "\\n" only (a trailing "\\r" dropped).

    Not `str.splitlines()`: that also breaks on Unicode separators (U+2028, U+0085)
    which may legitimately sit inside a sentence and would misalign parallel files.
    Empty lines are errors: in a parallel corpus they mean a lost or extra line.
    """
    text = decode(path, read_bytes(path))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline terminates the last line
    lines = [line.removesuffix("\r") for line in lines]
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(f"{path}:{lineno}: empty line; every line must hold one sentence "
                            "(delete it here and the matching line of the other language)")
    if not lines:
        raise DataError(f"{path}: the file is empty; give a file with one sentence per line")
    return lines


def parallel_lines(source: Path, target: Path) -> list[tuple[int, str, str]]:
    """(line number, source, target) from two line-aligned files."""
    src, tgt = sentence_lines(source), sentence_lines(target)
    if len(src) != len(tgt):
        (longer, n_long), (shorter, n_short) = sorted([(source, len(src)), (target, len(tgt))],
                                                      key=lambda x: -x[1])
        raise DataError(f"{longer}:{n_short + 1}: no matching line in {shorter} ({n_short} lines vs "
                        f"{n_long}); the two files must be line-aligned, line i of one translating "
                        "line i of the other")
    return [(i, s, t) for i, (s, t) in enumerate(zip(src, tgt), 1)]


def tsv_pairs(path: Path, source_column: int, target_column: int) -> list[tuple[int, str, str]]:
    """(line number, source, target) from one tab-separated file; extra columns are ignored."""
    need = max(source_column, target_column) + 1
    rows = []
    for lineno, line in enumerate(sentence_lines(path), 1):
        cols = line.split("\t")
        if len(cols) < need:
            raise DataError(f"{path}:{lineno}: {len(cols)} tab-separated column(s), need {need} "
                            f"(source_column {source_column}, target_column {target_column}, counted "
                            "from 0); fix the line or the columns in the config")
        src, tgt = cols[source_column], cols[target_column]
        if not src.strip() or not tgt.strip():
            which = source_column if not src.strip() else target_column
            raise DataError(f"{path}:{lineno}: column {which} is empty; every row needs both sentences")
        rows.append((lineno, src, tgt))
    return rows


def running_text_lines(path: Path) -> list[str]:
    """Lines exactly as the classic PTB/WikiText `data.py` reads them (`for line in open(path)`).

    Python's universal newlines: "\\n", "\\r\\n" and a lone "\\r" end a line; blank lines are
    kept (each becomes one `<eos>` at word level). Only invalid UTF-8 is an error.
    """
    text = decode(path, read_bytes(path))
    lines = [line.removesuffix("\n") for line in io.StringIO(text, newline=None)]
    if not lines:
        raise DataError(f"{path}: the file is empty; give a text file with at least one line")
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: only whitespace ({len(lines)} blank line(s)); a language model needs "
                        "text to learn from: give a file with words in it")
    return lines
