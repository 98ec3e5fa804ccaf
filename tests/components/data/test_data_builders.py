"""TFDS builders: offline builds, split properties, byte fidelity, clear errors.

Each real corpus is built once per session (fra-eng alone has 76k pairs) with
all network access disabled, and the tests share the decoded columns.
"""

from __future__ import annotations

import dataclasses
import gzip
import socket
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from components.data import paths
from components.data.errors import DataError
from components.data.loading import load_splits, prepare_builder
from components.data.splits import split_of

tfds.disable_progress_bar()

SPLITS = ("train", "validation", "test")


def _no_network(*args, **kwargs):
    raise AssertionError("network access attempted while the data is local")


def forbid_network(mp: pytest.MonkeyPatch) -> None:
    """Make any socket connect / DNS lookup / tfds download fail the test."""
    mp.setattr(socket.socket, "connect", _no_network)
    mp.setattr(socket, "getaddrinfo", _no_network)
    mp.setattr(paths, "probe_url", _no_network)
    mp.setattr(tfds.download.DownloadManager, "download", _no_network)
    mp.setattr(tfds.download.DownloadManager, "download_and_extract", _no_network)


def columns(ds) -> dict[str, list]:
    """Whole split as {feature: [values]} (bytes for text), in dataset order."""
    out = {k: [] for k in ds.element_spec}
    for batch in tfds.as_numpy(ds.batch(100_000)):
        for k, values in batch.items():
            out[k].extend(values.tolist())
    return out


@dataclasses.dataclass
class Built:
    builder: tfds.core.DatasetBuilder
    splits: dict[str, dict[str, list]]

    def count(self, split: str) -> int:
        return len(next(iter(self.splits[split].values())))


def build(name, config, data_dir, tfds_dir) -> Built:
    builder = prepare_builder(name, config, data_dir, tfds_dir)
    return Built(builder, {s: columns(ds) for s, ds in load_splits(builder).items()})


@pytest.fixture(scope="module")
def built(shared_data_dir, tmp_path_factory):
    """`built(name, config)`: the real corpus, built offline once per module."""
    cache: dict = {}
    root = tmp_path_factory.mktemp("tfds_shared")

    def get(name: str, config: str | None = None) -> Built:
        if (name, config) not in cache:
            with pytest.MonkeyPatch.context() as mp:
                forbid_network(mp)
                cache[name, config] = build(name, config, shared_data_dir, root)
        return cache[name, config]

    return get


# --- the real corpora, offline ---------------------------------------------

def test_tatoeba_urd_eng_counts(built):
    b = built("tatoeba", "urd-eng")
    assert sum(b.count(s) for s in SPLITS) == 1143
    assert set(b.splits["train"]) == {"en", "ur"}


def test_multi30k_counts(built):
    b = built("multi30k")
    assert [b.count(s) for s in SPLITS] == [29_000, 1_014, 1_000]
    assert set(b.splits["train"]) == {"en", "de", "fr"}


def test_tiny_shakespeare_lines_in_order(built):
    b = built("tiny_shakespeare")
    assert [b.count(s) for s in SPLITS] == [36_000, 2_000, 2_000]
    train = b.splits["train"]
    assert train["text"][0] == b"First Citizen:"
    lines = [n for s in SPLITS for n in b.splits[s]["line"]]
    assert lines == list(range(40_000))
    assert not any(t.endswith(b"\n") for t in train["text"])


def test_tiny_shakespeare_round_trips_to_the_file(built, shared_data_dir):
    b = built("tiny_shakespeare")
    text = b"".join(t + b"\n" for s in SPLITS for t in b.splits[s]["text"])
    assert text == (shared_data_dir / "tinyshakespeare/input.txt").read_bytes()


def test_multi30k_matches_the_files(built, shared_data_dir):
    b = built("multi30k")
    for split, stem in [("validation", "val"), ("test", "test_2016_flickr")]:
        for lang in ("en", "de", "fr"):
            with gzip.open(shared_data_dir / f"multi30k/{stem}.{lang}.gz") as f:
                assert b.splits[split][lang] == f.read().split(b"\n")[:-1]


def _expected_tatoeba(path: Path, other: str) -> dict[str, dict[str, list]]:
    """Split the raw file ourselves, on bytes, to compare with the builder."""
    out = {s: {"en": [], other: []} for s in SPLITS}
    for line in path.read_bytes().split(b"\n"):
        if line.strip():
            en, tgt = line.split(b"\t")[:2]
            split = split_of(en.decode("utf-8"))
            out[split]["en"].append(en)
            out[split][other].append(tgt)
    return out


def test_urdu_is_byte_identical_to_column_2(built, shared_data_dir):
    b = built("tatoeba", "urd-eng")
    expected = _expected_tatoeba(shared_data_dir / "tatoeba/urd-eng/urd.txt", "ur")
    assert b.splits == expected  # same bytes, same split, same order


@pytest.mark.parametrize("config", ["urd-eng", "fra-eng"])
def test_no_source_sentence_in_two_splits(built, config):
    b = built("tatoeba", config)
    seen = [set(b.splits[s]["en"]) for s in SPLITS]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


@pytest.mark.parametrize("config, tol", [("urd-eng", 0.05), ("fra-eng", 0.01)])
def test_tatoeba_split_sizes_roughly_80_10_10(built, config, tol):
    b = built("tatoeba", config)
    total = sum(b.count(s) for s in SPLITS)
    for split, share in zip(SPLITS, (0.8, 0.1, 0.1)):
        assert abs(b.count(split) / total - share) < tol, (split, b.count(split))


def test_fra_eng_total(built):
    assert sum(built("tatoeba", "fra-eng").count(s) for s in SPLITS) == 76_037


@pytest.mark.parametrize(
    "name, config",
    [("tatoeba", "urd-eng"), ("multi30k", None), ("tiny_shakespeare", None)],
)
def test_rebuild_elsewhere_is_identical(built, shared_data_dir, tmp_path, name, config):
    """Deterministic splits and order: a fresh build equals the shared one."""
    with pytest.MonkeyPatch.context() as mp:
        forbid_network(mp)
        again = build(name, config, shared_data_dir, tmp_path / "tfds")
    assert again.splits == built(name, config).splits


def test_builtin_tfds_datasets_unaffected(built):
    """Our builders must not take over (or break) tfds's own registry entries."""
    built("tatoeba", "urd-eng")
    from components.data.tatoeba import Tatoeba
    from components.data.tinyshakespeare import TinyShakespeare

    assert tfds.builder_cls("tiny_shakespeare") is not TinyShakespeare
    assert tfds.builder_cls("tatoeba") is not Tatoeba


# --- small synthetic corpora -------------------------------------------------

def write(data_dir: Path, rel: str, content: bytes) -> Path:
    path = data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# 20 filler pairs put at least one pair in each split (tfds cannot write an
# empty split; see test_too_small_corpus_is_a_data_error).
PAIRS = [("Hi.", "سلام۔"), ("How are you?", "آپ کیسے ہیں؟"), ("Run!", "Cours !")] + [
    (f"Sentence {i}.", f"جملہ {i}۔") for i in range(20)
]


def pairs_file(pairs, extra: str = "") -> bytes:
    return "".join(f"{en}\t{other}{extra}\n" for en, other in pairs).encode()


@pytest.mark.parametrize("config, lang, rel", [
    ("urd-eng", "ur", "tatoeba/urd-eng/urd.txt"),
    ("fra-eng", "fr", "tatoeba/fra-eng/fra.txt"),
])
@pytest.mark.parametrize("ncols", [2, 3])
def test_tatoeba_accepts_2_or_3_columns(tmp_path, config, lang, rel, ncols):
    extra = "\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (x)" if ncols == 3 else ""
    content = pairs_file(PAIRS[:2], extra) + b"\n  \n" + pairs_file(PAIRS[2:], extra)
    write(tmp_path / "data", rel, content)
    b = build("tatoeba", config, tmp_path / "data", tmp_path / "tfds")
    got = {
        (en, o) for s in SPLITS for en, o in zip(b.splits[s]["en"], b.splits[s][lang])
    }
    assert got == {(en.encode(), o.encode()) for en, o in PAIRS}  # blank line skipped


@pytest.mark.parametrize("bad_line", ["no tab here", "Hello.\t", "\tBonjour."])
def test_tatoeba_corrupt_line_names_file_and_line(tmp_path, bad_line):
    path = write(
        tmp_path / "data", "tatoeba/fra-eng/fra.txt",
        f"Go.\tVa !\nRun!\tCours !\n{bad_line}\n".encode() + pairs_file(PAIRS),
    )
    with pytest.raises(DataError) as e:
        prepare_builder("tatoeba", "fra-eng", tmp_path / "data", tmp_path / "tfds")
    msg = str(e.value)
    assert f"{path}:3" in msg and "https://www.manythings.org/anki/fra-eng.zip" in msg


def test_tatoeba_invalid_utf8_names_line(tmp_path):
    path = write(tmp_path / "data", "tatoeba/urd-eng/urd.txt", b"Hi.\t\xff\xfe\n")
    with pytest.raises(DataError, match=f"{path}:1"):
        prepare_builder("tatoeba", "urd-eng", tmp_path / "data", tmp_path / "tfds")


@pytest.mark.parametrize("name, config, rel, url", [
    ("tatoeba", "urd-eng", "tatoeba/urd-eng/urd.txt",
     "https://www.manythings.org/anki/urd-eng.zip"),
    ("tatoeba", "fra-eng", "tatoeba/fra-eng/fra.txt",
     "https://www.manythings.org/anki/fra-eng.zip"),
    ("multi30k", None, "multi30k/train.en.gz",
     "https://github.com/multi30k/dataset/raw/master/data/task1/raw/train.en.gz"),
    ("tiny_shakespeare", None, "tinyshakespeare/input.txt",
     "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
     "tinyshakespeare/input.txt"),
])
@pytest.mark.parametrize("data_dir_exists", [True, False])
def test_missing_file_offline_names_path_and_url(
    tmp_path, monkeypatch, name, config, rel, url, data_dir_exists
):
    data = tmp_path / "data"
    if data_dir_exists:
        write(data, "unrelated.txt", b"x")  # tfds treats an empty manual dir specially
    monkeypatch.setattr(paths, "probe_url", lambda u, **kw: "no network (test)")
    with pytest.raises(DataError) as e:
        prepare_builder(name, config, data, tmp_path / "tfds")
    msg = str(e.value)
    assert str(data / rel) in msg and url in msg and "no network (test)" in msg
    assert "PIPELINE_DATA_DIR" in msg


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    """Host reachable but the download itself fails (HTTP error, bad zip...)."""
    def boom(self, url):
        raise ConnectionError("HTTP 406 from server")

    monkeypatch.setattr(paths, "probe_url", lambda u, **kw: None)
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", boom)
    with pytest.raises(DataError, match="HTTP 406 from server") as e:
        prepare_builder("tatoeba", "urd-eng", tmp_path / "data", tmp_path / "tfds")
    assert "https://www.manythings.org/anki/urd-eng.zip" in str(e.value)


def _write_multi30k(data_dir: Path, n=3, **overrides: bytes) -> None:
    for stem in ("train", "val", "test_2016_flickr"):
        for lang in ("en", "de", "fr"):
            rel = f"multi30k/{stem}.{lang}.gz"
            content = "".join(f"{stem} {lang} {i}\n" for i in range(n)).encode()
            write(data_dir, rel, overrides.get(rel, gzip.compress(content)))


def test_multi30k_small_builds(tmp_path):
    _write_multi30k(tmp_path / "data")
    b = build("multi30k", None, tmp_path / "data", tmp_path / "tfds")
    assert b.splits["validation"]["de"] == [b"val de 0", b"val de 1", b"val de 2"]


@pytest.mark.parametrize("corruption", [
    b"this is not gzip at all",
    gzip.compress(b"val de 0\nval de 1\nval de 2\n")[:-12],  # truncated
])
def test_multi30k_corrupt_gzip_names_file(tmp_path, corruption):
    _write_multi30k(tmp_path / "data", **{"multi30k/val.de.gz": corruption})
    with pytest.raises(DataError) as e:
        prepare_builder("multi30k", None, tmp_path / "data", tmp_path / "tfds")
    assert str(tmp_path / "data/multi30k/val.de.gz") in str(e.value)


def test_multi30k_misaligned_files_named(tmp_path):
    short = gzip.compress(b"only one line\n")
    _write_multi30k(tmp_path / "data", **{"multi30k/test_2016_flickr.fr.gz": short})
    with pytest.raises(DataError) as e:
        prepare_builder("multi30k", None, tmp_path / "data", tmp_path / "tfds")
    msg = str(e.value)
    for lang in ("en", "de", "fr"):
        assert str(tmp_path / f"data/multi30k/test_2016_flickr.{lang}.gz") in msg


def test_changed_raw_file_triggers_rebuild(tmp_path):
    """tfds alone would keep serving the old TFRecords for the same folder."""
    rel = "tatoeba/urd-eng/urd.txt"
    write(tmp_path / "data", rel, pairs_file(PAIRS))
    first = build("tatoeba", "urd-eng", tmp_path / "data", tmp_path / "tfds")
    shard = next(Path(first.builder.data_dir).glob("*train.tfrecord*"))
    mtime = shard.stat().st_mtime_ns
    again = build("tatoeba", "urd-eng", tmp_path / "data", tmp_path / "tfds")
    assert again.splits == first.splits and shard.stat().st_mtime_ns == mtime
    write(tmp_path / "data", rel, pairs_file([("Hi.", "ہیلو")] + PAIRS[1:]))
    changed = build("tatoeba", "urd-eng", tmp_path / "data", tmp_path / "tfds")
    assert changed.splits["train"]["ur"][0] == "ہیلو".encode()


def test_too_small_corpus_is_a_data_error(tmp_path):
    path = write(tmp_path / "data", "tatoeba/urd-eng/urd.txt", pairs_file(PAIRS[:3]))
    with pytest.raises(DataError, match="too few") as e:
        prepare_builder("tatoeba", "urd-eng", tmp_path / "data", tmp_path / "tfds")
    assert str(path) in str(e.value)
