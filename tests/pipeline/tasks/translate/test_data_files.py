"""Parallel corpora from the user's files through the generic TFDS builder and the corpus seam."""
import gzip

import pytest
import tensorflow_datasets as tfds

from components.data.errors import DataError
from components.data.splits import split_of
from pipeline.config import parse_config
from pipeline.tasks.translate import data as translate_data
from tests.components.data.tiny_catalog import pairs

tfds.disable_progress_bar()


def translation_splits(cfg, prepare_dir):
    return translate_data.splits(translate_data.data_source(cfg), cfg, prepare_dir)


def data_cfg(**data):
    return parse_config({"name": "t", "data": {"corpus": "files", "source_lang": "en", "target_lang": "de",
                                               **data}}).data


def write_pair(folder, stem, rows, gz=False):
    paths = []
    for lang, col in (("en", 0), ("de", 1)):
        text = "".join(r[col] + "\n" for r in rows).encode()
        path = folder / f"{stem}.{lang}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(text) if gz else text)
        paths.append(str(path))
    return {"source": paths[0], "target": paths[1]}


def rows_of(ds, cfg):
    return [(ex[cfg.source_lang].decode(), ex[cfg.target_lang].decode()) for ex in tfds.as_numpy(ds)]


def prepared_folders(root):
    return sorted(p.parent for p in root.rglob("dataset_info.json"))


def test_given_validation_is_used_as_is_and_test_is_hashed_off_train(tmp_path):
    train, valid = pairs(200, 0), pairs(15, 9)
    cfg = data_cfg(train=write_pair(tmp_path, "train", train), validation=write_pair(tmp_path, "valid", valid, gz=True))
    splits = {s: rows_of(ds, cfg) for s, ds in translation_splits(cfg, tmp_path / "prep").items()}
    assert splits["validation"] == valid  # file order, byte for byte
    assert sorted(splits["train"] + splits["test"]) == sorted(train)
    assert splits["test"] == [r for r in train if split_of(r[0], 0.9, 0.1) != "train"]
    assert splits["test"] and splits["train"]
    assert translate_data.data_source(cfg).description == "files:train.en+train.de"
    assert translate_data.data_source(cfg).uri("validation").endswith("valid.en.gz")


def test_tsv_with_only_a_train_file_splits_80_10_10_by_source_hash(tmp_path):
    rows = pairs(300, 3)
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"x\t{de}\t{en}\n" for en, de in rows), encoding="utf-8")
    cfg = data_cfg(train={"tsv": str(tsv), "source_column": 2, "target_column": 1})
    splits = {s: rows_of(ds, cfg) for s, ds in translation_splits(cfg, tmp_path / "prep").items()}
    for split, got in splits.items():
        assert got == [r for r in rows if split_of(r[0]) == split], split
    sources = [{en for en, _ in got} for got in splits.values()]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])  # no leakage


def test_one_changed_byte_changes_the_fingerprint_and_rebuilds(tmp_path):
    files = write_pair(tmp_path, "train", pairs(100, 1))
    cfg = data_cfg(train=files)
    before = translate_data.data_source(cfg).fingerprint()
    assert translate_data.data_source(cfg).fingerprint() == before  # stable
    first = rows_of(translation_splits(cfg, tmp_path / "prep")["train"], cfg)
    text = open(files["target"], encoding="utf-8").read()
    open(files["target"], "w", encoding="utf-8").write(text.replace("katze", "Katze", 1))
    assert translate_data.data_source(cfg).fingerprint() != before
    second = rows_of(translation_splits(cfg, tmp_path / "prep")["train"], cfg)
    assert second != first and any("Katze" in de for _, de in second)
    assert len(prepared_folders(tmp_path / "prep")) == 1  # rebuilt in place, not beside


def test_different_file_sets_get_different_prepared_folders(tmp_path):
    a = data_cfg(train=write_pair(tmp_path, "a", pairs(60, 1)))
    b = data_cfg(train=write_pair(tmp_path, "b", pairs(60, 1)))
    for cfg in (a, b):
        translation_splits(cfg, tmp_path / "prep")
    assert len(prepared_folders(tmp_path / "prep")) == 2


@pytest.mark.parametrize("breakage, expected", [
    (lambda en, de: de.write_text(de.read_text() + "extra\n"), r"train\.de:61: no matching line in .*train\.en"),
    (lambda en, de: en.write_text(en.read_text().replace("\n", "\n\n", 1)), r"train\.en:2: empty line"),
    (lambda en, de: de.write_bytes(de.read_bytes() + b"\xff\n"), r"train\.de:61: invalid UTF-8"),
])
def test_bad_files_fail_before_anything_is_written(tmp_path, breakage, expected):
    files = write_pair(tmp_path, "train", pairs(60, 2))
    cfg = data_cfg(train=files)
    translation_splits(cfg, tmp_path / "prep")  # a good build first ...
    breakage(*(tmp_path / "train.en", tmp_path / "train.de"))
    with pytest.raises(DataError, match=expected):
        translation_splits(cfg, tmp_path / "prep")
    assert prepared_folders(tmp_path / "prep") == []  # ... is not reused once the files are bad
    assert not list((tmp_path / "prep").rglob("*incomplete*"))


def test_too_few_pairs_for_a_hash_split_is_a_data_error(tmp_path):
    cfg = data_cfg(train=write_pair(tmp_path, "train", pairs(3, 0)))
    with pytest.raises(DataError, match=r"3 sentence pairs are too few .* give data\.\w+ files"):
        translation_splits(cfg, tmp_path / "prep")
