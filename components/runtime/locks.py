"""One run per work folder: an advisory `fcntl` lock at `<work_dir>/<name>/.lock`.

Two runs of one config share stage folders and training checkpoints; the second one could
resume from the first one's checkpoint, delete it mid-run, or die on an h5py file lock. The
lock is held for the whole run and released by the kernel when the process ends in any way
(kill -9 included), so a stale lock file never blocks anyone. The file names the holder.
A stage output several processes share (a parallel sweep's `prepare`) is built under a lock
of its own that the others wait for (`wait=True`), then find current and skip.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Self

LOCK_NAME = ".lock"


class LockHeld(RuntimeError):
    """Another live process holds the lock; the message names it."""


class WorkLock:
    def __init__(self, folder: Path, name: str = LOCK_NAME):
        self.folder = Path(folder)
        self.path = self.folder / name
        self._fd: int | None = None

    def acquire(self, command: str = "", wait: bool = False) -> Self:
        """Take the lock; `wait`: block until the holder releases it instead of raising `LockHeld`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise LockHeld(f"{self.folder} is in use by {holder}; wait for that run to end (or stop it), "
                           "or give this run another work_dir or name") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        holder = f"pid {os.getpid()} on {socket.gethostname()} (since {started}{', ' + command if command else ''})"
        os.pwrite(fd, holder.encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
