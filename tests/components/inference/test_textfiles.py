"""Strict UTF-8 line reading and atomic output files."""
import os

import pytest

from components.inference.errors import InferenceError
from components.inference.textfiles import atomic_text_output, read_lines


def test_read_lines_keeps_blank_lines_and_strips_only_line_ends(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("a b \r\n\n  آپ کیسے ہیں؟\nlast".encode("utf-8"))
    assert read_lines(path) == ["a b ", "", "  آپ کیسے ہیں؟", "last"]


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("ok\ncafé\n".encode("latin-1"))
    with pytest.raises(InferenceError, match=r"latin1.txt: line 2 is not valid UTF-8.*iconv"):
        read_lines(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InferenceError, match="nope.txt: no such file"):
        read_lines(tmp_path / "nope.txt")
    with pytest.raises(InferenceError, match="not a file"):
        read_lines(tmp_path)


def test_output_replaces_only_on_success(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_text_output(out) as f:
            f.write("half")
            raise RuntimeError("model failed mid-way")
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temp file left behind
    with atomic_text_output(out) as f:
        f.write("new\n")
    assert out.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.txt"]
    assert os.stat(out).st_mode & 0o644 == 0o644  # a normal file's mode, not mkstemp's 0600


def test_output_folder_must_exist(tmp_path):
    with pytest.raises(InferenceError, match="does not exist"):
        with atomic_text_output(tmp_path / "missing" / "out.txt"):
            pass
    with pytest.raises(InferenceError, match="is a folder"):
        with atomic_text_output(tmp_path):
            pass
