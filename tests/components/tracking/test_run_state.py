"""Runs tagged with host and pid; orphans of dead pids marked FAILED; store init under a lock."""
import subprocess
import sys

import mlflow

from components.tracking import run_state


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_runs_of_dead_pids_are_marked_failed(tmp_path):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/m.db")
    exp = client.create_experiment("e")
    tags = run_state.process_tags()
    orphan = client.create_run(exp, tags={**tags, run_state.PID_TAG: str(_dead_pid())}).info.run_id
    mine = client.create_run(exp, tags=tags).info.run_id
    other_host = client.create_run(exp, tags={run_state.HOST_TAG: "elsewhere", run_state.PID_TAG: "1"}).info.run_id
    lines = []
    assert run_state.mark_stale_runs(client, exp, log=lines.append) == [orphan]
    assert client.get_run(orphan).info.status == "FAILED"
    assert run_state.END_REASON_TAG in client.get_run(orphan).data.tags
    assert client.get_run(mine).info.status == "RUNNING"
    assert client.get_run(other_host).info.status == "RUNNING"
    assert len(lines) == 1


def test_store_init_lock_serialises(tmp_path):
    with run_state.store_init_lock(f"sqlite:///{tmp_path}/sub/m.db"):
        assert (tmp_path / "sub" / "m.db.lock").exists()
    with run_state.store_init_lock("http://127.0.0.1:5000"):
        pass


def test_pid_alive():
    import os
    assert run_state.pid_alive(os.getpid()) and not run_state.pid_alive(_dead_pid())
