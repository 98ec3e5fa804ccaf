"""MLflow run lifecycle for runs whose process can die: who owns a run, and stale runs.

MLflow only ends a run when the process says so; after kill -9 (or OOM, a node loss) the run
stays RUNNING forever. Each run is tagged with the host and pid that own it, so a later start
on the same host can tell a live run from an orphan and mark the orphan FAILED. Also: the first
runs on a new sqlite store race MLflow's schema migration (alembic), so store initialisation
is serialised with a file lock beside the database. A run stopped on purpose (`Pruned`) is
not a failure: it ends KILLED with its reason.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

HOST_TAG, PID_TAG = "pipeline.host", "pipeline.pid"
END_REASON_TAG = "pipeline.end_reason"


class Pruned(Exception):
    """Training stopped after `epoch` (1-based) because `metric` was `value` (a sweep's pruner).

    The stage runner prints it instead of FAILED; the tracker ends the stage's and the pipeline's
    runs KILLED (MLflow has no pruned status) with it as their `pipeline.end_reason`."""

    def __init__(self, epoch: int, metric: str, value: float):
        super().__init__(epoch, metric, value)
        self.epoch, self.metric, self.value = epoch, metric, value

    def __str__(self) -> str:
        return f"pruned at epoch {self.epoch} ({self.metric} {self.value:.4g})"


def process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one we may not signal counts too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_stale_runs(client, experiment_id: str, log=print) -> list[str]:
    """Runs of this experiment left RUNNING by a process of this host that no longer exists -> FAILED.

    Runs of other hosts are left alone: from here we cannot tell whether their process lives."""
    host = socket.gethostname()
    stale = []
    runs = client.search_runs([experiment_id], filter_string=f"attributes.status = 'RUNNING' "
                                                             f"and tags.`{HOST_TAG}` = '{host}'",
                              max_results=1000)
    for run in runs:
        try:
            pid = int(run.data.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid() or pid_alive(pid):
            continue
        client.set_tag(run.info.run_id, END_REASON_TAG, f"process {pid} on {host} ended without closing the run")
        client.set_terminated(run.info.run_id, "FAILED")
        stale.append(run.info.run_id)
    if stale:
        log(f"marked {len(stale)} MLflow run(s) FAILED: left RUNNING by processes that no longer exist")
    return stale


def sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        if path and path != ":memory:":
            return Path(path)
    return None


@contextlib.contextmanager
def store_init_lock(uri: str):
    """Hold an exclusive lock on `<db>.lock` (sqlite stores only) while the store is created/migrated."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
