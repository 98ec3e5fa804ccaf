"""SIGINT / SIGTERM as a batch scheduler expects: stop at a safe point, say so, exit 130 / 143.

Kubernetes, Docker and Slurm send SIGTERM and wait; Ctrl-C sends SIGINT. Either one raises
`Interrupted` (a `KeyboardInterrupt`, so `except Exception` blocks don't swallow it and the
tracker ends MLflow runs as KILLED). Inside `deferred()` (around `model.fit`) the signal only
sets a flag, and training raises at its next safe point (`check`, called before each batch and
after each epoch's checkpoint), so nothing is half-written. A second signal while waiting
stops at once: checkpoints are atomic, so that is still safe, only less tidy.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Self

RESUME_HINT = "rerun the same command to resume"


class Interrupted(KeyboardInterrupt):
    """Raised at a safe point after SIGINT/SIGTERM. `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int, where: str = ""):
        super().__init__(signum, where)
        self.signum = signum
        self.where = where

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def message(self) -> str:
        where = self.where or "start-up"
        preposition = "at" if where.startswith("epoch") else "in"
        return f"interrupted {preposition} {where}; {RESUME_HINT}"


class InterruptGuard:
    """The process's SIGINT/SIGTERM handling; `install()` once, in the main thread."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self.where = ""  # what is running: "stage prepare", "epoch 3", ...
        self._deferred = 0
        self._previous: dict = {}

    def install(self) -> Self:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        again = self.signum is not None
        self.signum = signum
        if not self._deferred or again:
            raise Interrupted(signum, self.where)

    @contextlib.contextmanager
    def deferred(self):
        """A region where a signal only sets the flag; `check` raises at the next safe point."""
        self._deferred += 1
        try:
            yield self
        finally:
            self._deferred -= 1
        self.check()

    def check(self, where: str | None = None) -> None:
        if where is not None:
            self.where = where
        if self.signum is not None:
            raise Interrupted(self.signum, self.where)
