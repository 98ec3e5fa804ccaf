"""Runs that survive kills and each other, with real processes (issue 17).

One scenario on configs/test_translate_tiny.yaml (prepare + train only, 8 epochs), shared by
the tests below so TensorFlow starts as few times as possible:

1. run A, SIGTERM after its first checkpoint            -> exit 143, one line, runs KILLED
2. run B (same command), kill -9 after 2 more epochs     -> runs left RUNNING
3. truncate B's newest checkpoint to half its size
4. run C (same command) and, while C trains, run D       -> D exits 1 naming C's pid
   C: one line about the bad checkpoint, resumes from the one before it, B's runs -> FAILED,
   and its metrics, history.json and MLflow curves cover all 8 epochs exactly once.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.subprocess_run import ROOT

pytestmark = pytest.mark.slow

EPOCHS = 8
NAME = "test_translate_tiny"


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}:\n{out[-3000:]}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _checkpoints(work: Path) -> list[int]:
    return sorted(int(p.name[6:10]) for p in work.glob(".train-backup-*/epoch-*.json"))


def _runs(db: Path) -> list[tuple[str, str, str]]:
    """(run id, name, status) of every run in the store."""
    with sqlite3.connect(db) as con:
        return con.execute("select run_uuid, name, status from runs order by start_time").fetchall()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    db = root / "mlflow.db"
    work = root / "work" / NAME
    args = ["run", "configs/test_translate_tiny.yaml", "--stages", "prepare,train",
            "--set", f"work_dir={root}/work", "--set", f"export.export_dir={root}/exports",
            "--set", f"mlflow.tracking_uri=sqlite:///{db}", "--set", f"train.epochs={EPOCHS}"]
    out: dict = {"root": root, "db": db, "work": work}

    a = _start(args)
    _wait_for(lambda: _checkpoints(work), a, "run A's first checkpoint")
    a.send_signal(signal.SIGTERM)
    out["a"] = (a.wait(timeout=300), *a.communicate())
    out["runs_after_a"] = _runs(db)

    b = _start(args)
    first = max(_checkpoints(work))
    _wait_for(lambda: _checkpoints(work) and max(_checkpoints(work)) >= first + 2, b, "run B's checkpoints")
    b.kill()  # SIGKILL: no handler, no cleanup
    b.wait(timeout=60)
    out["b_pid"] = b.pid
    out["runs_after_b"] = _runs(db)
    newest = max(_checkpoints(work))
    weights = next(work.glob(f".train-backup-*/epoch-{newest:04d}.weights.h5"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out["truncated_epoch"] = newest

    c = _start(args)
    _wait_for(lambda: f"pid {c.pid} " in ((work / ".lock").read_text() if (work / ".lock").exists() else ""),
              c, "run C to take the lock")
    d = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    out["c_running_when_d_ended"] = c.poll() is None
    out["d"] = (d.returncode, d.stdout, d.stderr)
    out["c_pid"] = c.pid
    out["c"] = (c.wait(timeout=900), *c.communicate())
    out["runs_after_c"] = _runs(db)
    return out


def test_sigterm_exits_143_with_one_line_and_runs_killed(scenario):
    rc, stdout, stderr = scenario["a"]
    assert rc == 143, stdout[-2000:] + stderr[-2000:]
    lines = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and "rerun the same command to resume" in lines[0], stderr[-2000:]
    assert "Traceback" not in stderr
    statuses = {name: status for _, name, status in scenario["runs_after_a"] if name in ("train", "prepare")}
    parent = [status for _, name, status in scenario["runs_after_a"] if name.startswith(NAME)]
    assert parent == ["KILLED"] and statuses["train"] == "KILLED", scenario["runs_after_a"]


def test_kill9_leaves_running_runs_that_the_next_start_marks_failed(scenario):
    after_b = {run_id: status for run_id, _, status in scenario["runs_after_b"]}
    stale = [run_id for run_id, status in after_b.items() if status == "RUNNING"]
    assert stale, scenario["runs_after_b"]
    after_c = {run_id: status for run_id, _, status in scenario["runs_after_c"]}
    assert all(after_c[run_id] == "FAILED" for run_id in stale), scenario["runs_after_c"]
    assert "marked" in scenario["c"][1] and "FAILED" in scenario["c"][1]


def test_second_run_on_the_work_folder_exits_1_naming_the_holder(scenario):
    rc, stdout, stderr = scenario["d"]
    assert rc == 1, stdout[-2000:] + stderr[-2000:]
    assert stderr.strip().count("\n") == 0 and f"pid {scenario['c_pid']}" in stderr, stderr
    assert scenario["c_running_when_d_ended"]


def test_truncated_checkpoint_is_one_line_then_resumes_from_the_previous(scenario):
    rc, stdout, stderr = scenario["c"]
    assert rc == 0, stdout[-3000:] + stderr[-3000:]
    bad = [line for line in stdout.splitlines() if "could not be loaded" in line]
    assert len(bad) == 1 and f"epoch-{scenario['truncated_epoch']:04d}" in bad[0], stdout[-3000:]
    assert f"resumed from checkpoint after epoch {scenario['truncated_epoch'] - 1}" in stdout


def test_resumed_metrics_history_and_curves_cover_every_epoch_once(scenario):
    train = scenario["work"] / "train"
    manifest = json.loads((train / "manifest.json").read_text())
    history = json.loads((train / "history.json").read_text())
    metrics = manifest["metrics"]
    # What an uninterrupted run of 8 epochs (no early stopping) reports:
    assert metrics["epochs_run"] == EPOCHS and all(len(v) == EPOCHS for v in history.values())
    best = min(range(EPOCHS), key=lambda i: history["val_loss"][i])
    assert metrics["best_epoch"] == best + 1 and metrics["best_val_loss"] == pytest.approx(history["val_loss"][best])
    assert (train / "training_curves.png").is_file()
    with sqlite3.connect(scenario["db"]) as con:
        steps = con.execute("select step from metrics where run_uuid = ? and key = 'val_loss' order by step",
                            (manifest["mlflow_run_id"],)).fetchall()
    assert [s for (s,) in steps] == list(range(EPOCHS))
    # A finished training leaves no checkpoints behind, and no temp folders of the killed runs.
    assert not list(scenario["work"].glob(".train-backup-*/epoch-*"))
    assert not list(scenario["work"].glob(".*.tmp-*"))
