"""Line-oriented text I/O for the use commands: strict UTF-8 in, atomic files out."""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, TextIO

from .errors import InferenceError


def decode_line(raw: bytes, name: str, number: int) -> str:
    """One line without its line end ("\\n" or "\\r\\n"); invalid UTF-8 names the file and line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InferenceError(f"{name}: line {number} is not valid UTF-8 (byte {err.start + 1}: "
                             f"{err.reason}); convert the file to UTF-8, e.g. iconv -f LATIN1 -t UTF-8") from None
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text


def iter_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """Decoded lines of a binary stream, one at a time (stdin streams)."""
    for number, raw in enumerate(stream, 1):
        yield decode_line(raw, name, number)


def read_lines(path: str | os.PathLike) -> list[str]:
    """All lines of a UTF-8 text file (checked before any work is done)."""
    path = Path(path)
    if not path.is_file():
        raise InferenceError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    with path.open("rb") as f:
        return list(iter_lines(f, str(path)))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_text_output(path: str | os.PathLike | None) -> Iterator[TextIO]:
    """A text stream for the output: stdout when `path` is None; else a temp file beside `path`
    renamed over it only when the block succeeds, so a failed run never leaves a half-written file."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(path)
    if path.is_dir():
        raise InferenceError(f"--output {path}: is a folder; pass a file name")
    if not path.parent.is_dir():
        raise InferenceError(f"--output {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give it a normal file's mode
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def progress(total: int, enabled: bool):
    """A progress bar on stderr (tqdm, a dependency of tensorflow-datasets); off when not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, unit="line", file=sys.stderr, disable=None if enabled else True, leave=False)
