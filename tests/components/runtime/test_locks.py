"""WorkLock: one holder per work folder, named in the refusal; released by process exit."""
import os
import subprocess
import sys

import pytest

from components.runtime.locks import LockHeld, WorkLock


def test_second_acquire_names_the_holder(tmp_path):
    first = WorkLock(tmp_path / "w").acquire("run A")
    try:
        with pytest.raises(LockHeld) as err:
            WorkLock(tmp_path / "w").acquire("run B")
        assert f"pid {os.getpid()}" in str(err.value) and "run A" in str(err.value)
    finally:
        first.release()
    WorkLock(tmp_path / "w").acquire().release()  # free again


def test_lock_of_a_killed_process_is_free(tmp_path):
    """The kernel drops an flock when its process dies, even by SIGKILL: no stale-lock cleanup needed."""
    code = ("import os, sys; from components.runtime.locks import WorkLock; "
            f"WorkLock({str(tmp_path / 'w')!r}).acquire(); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), check=False)
    assert proc.returncode == -9
    assert "pid" in (tmp_path / "w" / ".lock").read_text()  # the stale text stays ...
    WorkLock(tmp_path / "w").acquire().release()  # ... but the lock is free


def test_wait_blocks_until_the_holder_releases(tmp_path):
    """`wait=True` (a shared stage's lock): the second taker waits instead of failing."""
    import threading
    import time

    first = WorkLock(tmp_path / "w", ".prepare.lock").acquire("worker 0")
    got = []
    waiter = threading.Thread(target=lambda: got.append(WorkLock(tmp_path / "w", ".prepare.lock").acquire(wait=True)))
    waiter.start()
    time.sleep(0.3)
    assert not got and waiter.is_alive()  # still waiting
    WorkLock(tmp_path / "w").acquire().release()  # another name: another lock
    first.release()
    waiter.join(5)
    assert got and not waiter.is_alive()
    got[0].release()
