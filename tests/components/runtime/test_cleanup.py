"""Temp folders of dead pids are removed; a live process's are kept."""
import os
import subprocess
import sys

from components.runtime.cleanup import remove_dead_temps, temp_owner


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_owner_parses_project_temp_names():
    assert temp_owner(".prepare.tmp-123") == 123
    assert temp_owner(".train.old-7") == 7
    assert temp_owner(".tmp-export-55") == 55
    assert temp_owner(".tmp-9-epoch-0003.weights.h5") == 9
    assert temp_owner("prepare") is None and temp_owner(".lock") is None and temp_owner("3") is None


def test_removes_only_dead_owners(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    (tmp_path / f".prepare.tmp-{dead}").mkdir()
    (tmp_path / f".prepare.tmp-{dead}" / "big").write_text("x")
    (tmp_path / f".tmp-export-{dead}").mkdir()
    (tmp_path / f".train.tmp-{live}").mkdir()
    (tmp_path / "train").mkdir()
    removed = remove_dead_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f".prepare.tmp-{dead}", f".tmp-export-{dead}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".train.tmp-{live}", "train"])
