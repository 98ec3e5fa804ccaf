"""Data folder resolution, hash splits and raw-data fingerprints."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest

from components.data.errors import DataError
from components.data.loading import data_fingerprint, raw_files
from components.data.paths import locate_data_dir, resolve_data_dir
from components.data.splits import split_of

# --- resolve_data_dir -------------------------------------------------------

def test_configured_folder_wins_over_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINE_DATA_DIR", "/elsewhere")
    assert resolve_data_dir(str(tmp_path)) == tmp_path


def test_env_used_when_not_configured(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path


def test_unset_defaults_to_shared_data_beside_the_checkout(tmp_path):
    checkout = tmp_path / "repo"
    checkout.mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    path, source = locate_data_dir(None, env={}, checkout_root=checkout)
    assert path == (tmp_path / "shared" / "data").resolve()
    assert "shared" in source


def test_unset_without_shared_data_uses_tfds_manual_dir(tmp_path):
    checkout = tmp_path / "repo"
    checkout.mkdir()  # no ../shared/data beside it
    path, source = locate_data_dir(None, env={"TFDS_DATA_DIR": str(tmp_path / "tfds")}, checkout_root=checkout)
    assert path == tmp_path / "tfds" / "downloads" / "manual"
    assert "download" in source
    home = resolve_data_dir(None, env={}, checkout_root=checkout)
    assert home == Path("~/tensorflow_datasets/downloads/manual").expanduser()


def test_env_wins_over_shared_data(tmp_path):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert resolve_data_dir(None, env={"PIPELINE_DATA_DIR": "/x"}, checkout_root=tmp_path / "repo") == Path("/x")


# --- split_of ----------------------------------------------------------------

def test_split_of_is_pinned():
    """Changing the hash would silently reshuffle every Tatoeba split."""
    assert split_of("Hi.") == "train"
    assert split_of("How are you?") == "validation"
    assert split_of("آپ کیسے ہیں؟") == "train"
    assert split_of("Hi.", train=0.05, validation=0.1) == "validation"
    assert split_of("How are you?", train=0.5, validation=0.2) == "test"


def test_split_of_fractions_roughly_respected():
    counts = collections.Counter(split_of(f"sentence {i}") for i in range(20_000))
    assert abs(counts["train"] / 20_000 - 0.8) < 0.01
    assert abs(counts["validation"] / 20_000 - 0.1) < 0.01
    assert abs(counts["test"] / 20_000 - 0.1) < 0.01


def test_split_of_rejects_bad_fractions():
    with pytest.raises(ValueError):
        split_of("x", train=0.9, validation=0.2)


# --- raw_files / data_fingerprint -------------------------------------------

def test_raw_files_layout(tmp_path):
    assert raw_files("tatoeba", "urd-eng", tmp_path) == [tmp_path / "tatoeba/urd-eng/urd.txt"]
    assert raw_files("tatoeba", None, tmp_path) == [tmp_path / "tatoeba/urd-eng/urd.txt"]
    assert raw_files("tiny_shakespeare", None, tmp_path) == [
        tmp_path / "tinyshakespeare/input.txt"
    ]
    m30k = raw_files("multi30k", None, tmp_path)
    assert len(m30k) == 9 and tmp_path / "multi30k/test_2016_flickr.fr.gz" in m30k


def test_unknown_name_or_config_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="urd-eng"):
        raw_files("tatoeba", "deu-eng", tmp_path)
    with pytest.raises(DataError, match="tiny_shakespeare"):
        raw_files("penn_treebank", None, tmp_path)


def test_fingerprint_tracks_bytes(shared_data_dir, tmp_path):
    target = tmp_path / "tatoeba/urd-eng/urd.txt"
    missing = data_fingerprint("tatoeba", "urd-eng", tmp_path)  # no file: no error
    target.parent.mkdir(parents=True)
    shutil.copy(shared_data_dir / "tatoeba/urd-eng/urd.txt", target)
    fp = data_fingerprint("tatoeba", "urd-eng", tmp_path)
    assert fp == data_fingerprint("tatoeba", "urd-eng", shared_data_dir)  # location-free
    assert fp != missing
    target.write_bytes(target.read_bytes().replace(b"Hi.", b"Hi!", 1))
    assert data_fingerprint("tatoeba", "urd-eng", tmp_path) != fp
    assert data_fingerprint("tatoeba", "fra-eng", tmp_path) != missing
