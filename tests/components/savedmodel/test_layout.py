"""The TF Serving version layout rule (components/savedmodel/layout.py), shared by export,
inference and serving."""

from __future__ import annotations

from components.savedmodel.layout import (
    METADATA_FILE,
    is_saved_model_dir,
    newest_version,
    next_version,
    version_dirs,
)


def _version(base, name, complete=True):
    folder = base / name
    folder.mkdir(parents=True)
    if complete:
        (folder / "saved_model.pb").write_bytes(b"")
    return folder


def test_versions_are_integer_folders_only(tmp_path):
    _version(tmp_path, "1")
    _version(tmp_path, "10", complete=False)  # listed: the server reports it failing to load
    _version(tmp_path, ".tmp-export-42")  # an exporter's temp folder before its rename
    _version(tmp_path, "1" * 19)  # does not fit int64, as TF Serving's ParseVersionNumber
    (tmp_path / "7").write_text("a file, not a folder")
    assert version_dirs(tmp_path) == {1: str(tmp_path / "1"), 10: str(tmp_path / "10")}
    assert version_dirs(tmp_path / "missing") is None


def test_newest_complete_version_and_next_version(tmp_path):
    assert newest_version(tmp_path) is None and next_version(tmp_path) == 1
    assert next_version(tmp_path / "not yet created") == 1
    _version(tmp_path, "2")
    _version(tmp_path, "9", complete=False)
    assert newest_version(tmp_path) == tmp_path / "2"  # what the inference commands load
    assert next_version(tmp_path) == 10  # an incomplete folder still takes its number
    assert is_saved_model_dir(tmp_path / "2") and not is_saved_model_dir(tmp_path)


def test_metadata_file_sits_in_assets_extra():
    assert METADATA_FILE.parts == ("assets.extra", "pipeline.json")
