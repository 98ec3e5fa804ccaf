"""Where model calls run: a bounded pool with admission control, deadlines and cancellation.

Every model call (REST and gRPC, batched or not) runs either on this pool's threads or, for
merged batches, on a batch thread registered with it, so that:

* at most ``--max_concurrent_model_calls`` run at once and ``--max_queued_model_calls`` wait;
  beyond that a request is turned away at once (REST 503, gRPC RESOURCE_EXHAUSTED) instead of
  piling up threads and memory;
* a call whose deadline passed while it waited never starts;
* a running call can be cancelled. A TF eager call cannot be interrupted from Python, but a
  ``tf.function`` call can be given a TensorFlow ``CancellationManager``: cancelling it aborts
  the running graph (including a ``while_loop`` in the middle of a generation) with
  ``CancelledError``. TF only reads that manager from a module-global "current context"
  (``tensorflow.python.eager.cancellation.context()``, read by ``Context.call_function``),
  which is not thread-safe; we make that lookup thread-local below. If a TF release drops this
  private hook, cancellation degrades to "bounded before it starts" (the caps on max_tokens and
  sizes, and the deadline check before a call starts), which is what keeps work bounded anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from .errors import ServingError, overloaded, unavailable

log = logging.getLogger(__name__)

_local = threading.local()
_CANCELLATION = None


def _install_thread_local_cancellation() -> bool:
    """Route TF's cancellation-context lookup through a thread-local (see the module docstring)."""
    global _CANCELLATION
    if _CANCELLATION is not None:
        return True
    try:
        from tensorflow.python.eager import cancellation
    except ImportError:  # pragma: no cover - depends on the TF build
        return False
    if not hasattr(cancellation, "context") or not hasattr(cancellation, "CancellationManager"):
        return False  # pragma: no cover
    original = cancellation.context

    def context():
        manager = getattr(_local, "manager", None)
        return manager if manager is not None else original()

    cancellation.context = context
    _CANCELLATION = cancellation
    return True


class CallHandle:
    """One model call: its deadline and its cancellation switch."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self._lock = threading.Lock()
        self._cancelled = False
        self._manager = None

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            manager = self._manager
        if manager is not None:
            manager.start_cancel()

    def _attach(self):
        with self._lock:
            if self._cancelled:
                raise ServingError("CANCELLED", "Request was cancelled before the model call started")
            if _CANCELLATION is not None:
                self._manager = _CANCELLATION.CancellationManager()
            return self._manager


class ModelCallPool:
    def __init__(self, threads: int, queued: int):
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="model")
        # A non-blocking semaphore is the admission counter: running + waiting calls.
        self._slots = threading.BoundedSemaphore(threads + queued)
        self._capacity = threads + queued
        self._lock = threading.Lock()
        self._running: set[CallHandle] = set()
        self._closing = False
        self._cancelling = False
        self.cancellable = _install_thread_local_cancellation()

    # ---- submission (request threads / event loop) ----
    def submit(self, fn: Callable[[], Any], deadline: float | None = None) -> tuple[Future, CallHandle]:
        if self._closing:
            raise unavailable("Server is shutting down")
        if not self._slots.acquire(blocking=False):
            raise overloaded(f"Server is at capacity: {self._capacity} model calls running or queued "
                             "(--max_concurrent_model_calls + --max_queued_model_calls); retry later")
        handle = CallHandle(deadline)
        try:
            future = self._executor.submit(self._run, fn, handle)
        except RuntimeError:  # executor shut down between the check and the submit
            self._slots.release()
            raise unavailable("Server is shutting down") from None
        future.add_done_callback(lambda _f: self._slots.release())
        return future, handle

    def _run(self, fn: Callable[[], Any], handle: CallHandle) -> Any:
        if handle.expired():
            # The client has given up while this call waited: don't start work nobody will read.
            raise ServingError("DEADLINE_EXCEEDED", "Deadline exceeded before the model call started")
        return self.run_here(fn, handle)

    def run_here(self, fn: Callable[[], Any], handle: CallHandle | None = None) -> Any:
        """Run ``fn`` on the calling thread as a registered, cancellable call (batch threads)."""
        handle = handle or CallHandle(None)
        if self._cancelling:
            raise unavailable("Server is shutting down")
        manager = handle._attach()
        with self._lock:
            self._running.add(handle)
        _local.manager = manager
        try:
            return fn()
        finally:
            _local.manager = None
            with self._lock:
                self._running.discard(handle)

    # ---- shutdown ----
    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def close(self, grace_seconds: float) -> bool:
        """Refuse new calls, give running ones ``grace_seconds``, then cancel them.

        Returns True once nothing runs any more (False if a call ignored cancellation).
        """
        self._closing = True
        deadline = time.monotonic() + grace_seconds
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            self._cancelling = True
            running = list(self._running)
        if running:
            log.warning("Cancelling %d model call(s) still running after %.1fs", len(running), grace_seconds)
            for handle in running:
                handle.cancel()
            deadline = time.monotonic() + 0.5  # cancellation takes effect within milliseconds
            while self.busy() and time.monotonic() < deadline:
                time.sleep(0.05)
        self._executor.shutdown(wait=False, cancel_futures=True)
        return not self.busy()
