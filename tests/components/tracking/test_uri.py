"""The one home of the tracking-URI default and the missing-sqlite-store check."""
import pytest

from components.tracking.uri import (
    DEFAULT_TRACKING_URI,
    MissingStoreError,
    check_store_exists,
    resolve_tracking_uri,
)


def test_given_uri_wins_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None) == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("sqlite:///other.db") == "sqlite:///other.db"


def test_missing_sqlite_file_names_the_file_and_the_hint(tmp_path):
    uri = f"sqlite:///{tmp_path}/none.db"
    with pytest.raises(MissingStoreError, match=r"no MLflow store at .*none\.db .*does not exist\); do this"):
        check_store_exists(uri, "do this")
    assert not (tmp_path / "none.db").exists()


def test_existing_file_memory_and_servers_pass(tmp_path):
    (tmp_path / "m.db").write_bytes(b"")
    check_store_exists(f"sqlite:///{tmp_path}/m.db", "")
    check_store_exists("sqlite:///:memory:", "")
    check_store_exists("http://127.0.0.1:5000", "")
    assert issubclass(MissingStoreError, FileNotFoundError)  # pipeline/cli.py reports it as a file error
