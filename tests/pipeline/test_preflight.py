"""Pre-flight checks: no TensorFlow, no MLflow, one line each."""
import socket

import pytest

from pipeline import preflight
from pipeline.preflight import PreflightError


def test_unknown_stage_names():
    preflight.check_stages(["train", "export"], ("prepare", "train", "evaluate", "export"))
    with pytest.raises(PreflightError, match=r"\['trian'\].*prepare, train"):
        preflight.check_stages(["trian"], ("prepare", "train"))


def test_dead_tracking_server_names_the_uri():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PreflightError, match=f"http://127.0.0.1:{port} is not reachable"):
        preflight.check_tracking(f"http://127.0.0.1:{port}", timeout=1)


def test_live_tracking_server_passes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        preflight.check_tracking(f"http://127.0.0.1:{s.getsockname()[1]}", timeout=1)


def test_unwritable_folder_is_one_line_with_the_path(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(PreflightError) as err:
        preflight.check_writable(tmp_path / "f" / "exports", "export folder")
    assert str(err.value).startswith(str(tmp_path / "f")) and "export folder" in str(err.value)
    preflight.check_writable(tmp_path / "new" / "deep")
    assert not list((tmp_path / "new" / "deep").iterdir())  # the probe is gone


def test_os_error_line():
    assert preflight.os_error_line(OSError(28, "No space left on device", "/w/x")) == "/w/x: No space left on device"


def test_no_tensorflow_or_mlflow_import():
    source = preflight.__loader__.get_source(preflight.__name__)
    assert "import tensorflow" not in source and "import mlflow" not in source
