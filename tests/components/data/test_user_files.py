"""Reading users' files: one `path:line: what; how` error per kind of bad data."""
import gzip

import pytest

from components.data.errors import DataError
from components.data.user_files import parallel_lines, running_text_lines, sentence_lines, tsv_pairs


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_sentence_lines_keep_text_byte_for_byte_and_read_gzip(tmp_path):
    text = "Hello  world\u2028still one line\r\nآپ کیسے ہیں؟\nlast"
    plain = write(tmp_path / "a.txt", text.encode())
    packed = write(tmp_path / "a.txt.gz", gzip.compress(text.encode()))
    expected = ["Hello  world\u2028still one line", "آپ کیسے ہیں؟", "last"]
    assert sentence_lines(plain) == sentence_lines(packed) == expected


@pytest.mark.parametrize("data, line, words", [
    (b"one\n\nthree\n", 2, "empty line"),
    (b"one\n   \n", 2, "empty line"),
    (b"ok\nbad \xff byte\n", 2, "invalid UTF-8"),
    (b"", None, "empty"),
])
def test_bad_sentence_files_name_file_and_line(tmp_path, data, line, words):
    path = write(tmp_path / "src.txt", data)
    with pytest.raises(DataError) as err:
        sentence_lines(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert words in message and "\n" not in message


def test_line_count_mismatch_names_the_first_unmatched_line(tmp_path):
    src = write(tmp_path / "train.en", b"a\nb\nc\n")
    tgt = write(tmp_path / "train.de", b"x\ny\n")
    assert [r[0] for r in parallel_lines(src, write(tmp_path / "ok.de", b"x\ny\nz"))] == [1, 2, 3]
    with pytest.raises(DataError, match=rf"^{src}:3: no matching line in {tgt} \(2 lines vs 3\)"):
        parallel_lines(src, tgt)


def test_broken_gzip_says_so(tmp_path):
    path = write(tmp_path / "train.en.gz", b"not gzip at all\n")
    with pytest.raises(DataError, match=rf"^{path}: not a readable gzip file"):
        sentence_lines(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match=rf"^{tmp_path / 'nope.en'}: file not found"):
        sentence_lines(tmp_path / "nope.en")


def test_tsv_columns_and_errors(tmp_path):
    path = write(tmp_path / "p.tsv", "Hi.\tSalut.\tCC-BY\nBye.\tAu revoir.\tCC-BY\n".encode())
    assert tsv_pairs(path, 0, 1) == [(1, "Hi.", "Salut."), (2, "Bye.", "Au revoir.")]
    assert tsv_pairs(path, 1, 0)[0] == (1, "Salut.", "Hi.")
    short = write(tmp_path / "short.tsv", b"a\tb\nc\n")
    with pytest.raises(DataError, match=rf"^{short}:2: 1 tab-separated column\(s\), need 2"):
        tsv_pairs(short, 0, 1)
    blank = write(tmp_path / "blank.tsv", b"a\tb\nc\t \n")
    with pytest.raises(DataError, match=rf"^{blank}:2: column 1 is empty"):
        tsv_pairs(blank, 0, 1)


def test_running_text_reads_lines_as_pythons_open_does(tmp_path):
    """Universal newlines and kept blank lines: what `for line in open(path)` yields."""
    data = "a b\r\nc\rd\n\n  e\tf \u2028g\nlast".encode()
    path = write(tmp_path / "ptb.txt", data)
    with open(path, encoding="utf-8") as f:
        classic = [line.removesuffix("\n") for line in f]
    assert running_text_lines(path) == classic
    assert len(classic) == 6  # the blank line and the unterminated last line count
    bad = write(tmp_path / "bad.txt", b"fine\nfine\n\xc3(\n")
    with pytest.raises(DataError, match=rf"^{bad}:3: invalid UTF-8"):
        running_text_lines(bad)


# ---------------------------------------------------------------- issue 17, point 6
def test_utf8_bom_is_dropped(tmp_path):
    from components.data.user_files import running_text_lines, sentence_lines

    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffhello world\nsecond\n".encode("utf-8"))
    assert sentence_lines(path)[0] == "hello world"
    assert running_text_lines(path)[0] == "hello world"


def test_a_folder_is_reported_as_a_folder(tmp_path):
    from components.data.errors import DataError
    from components.data.user_files import require_file

    with pytest.raises(DataError, match="is a folder, not a file"):
        require_file(tmp_path)


def test_whitespace_only_lm_file_is_rejected_naming_it(tmp_path):
    from components.data.errors import DataError
    from components.data.user_files import running_text_lines

    path = tmp_path / "blank.txt"
    path.write_text("  \n\t\n\n")
    with pytest.raises(DataError, match=f"{path}: only whitespace"):
        running_text_lines(path)


def test_preflight_checks_content_before_any_run(tmp_path):
    """A content error is found by the pre-flight (before MLflow runs exist), not by prepare."""
    from components.data import sources, text_files
    from components.data.errors import DataError

    path = tmp_path / "train.txt"
    path.write_text(" \n \n")
    source = sources.LocalFiles(text_files.TextFiles, text_files.make_config({"train": path}), {"train": [path]},
                                "files:train.txt")
    with pytest.raises(DataError, match="only whitespace"):
        source.preflight()
