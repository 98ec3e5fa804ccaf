"""Server-side batching in the manner of TF Serving's SharedBatchScheduler.

Requests for the same model version, signature and per-row input shapes are
queued into an open batch. A batch runs when it is full (``max_batch_size``
rows) or, once ``batch_timeout_micros`` have passed since its first request,
as soon as one of ``num_batch_threads`` threads is free. While all threads
are busy the open batch keeps filling, so batches grow with load. Inputs are
concatenated along dimension 0, the model is called once, and the outputs are
split back per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable

import numpy as np

from .config import BatchingConfig
from .errors import ServingError, unavailable
from .servable import Servable, SignatureInfo

log = logging.getLogger(__name__)

# call(servable, signature, inputs, number_of_requests, rows) -> outputs
ModelCall = Callable[[Servable, SignatureInfo, dict, int, int], dict]


def batch_rows(sig: SignatureInfo, arrays: dict[str, np.ndarray]) -> int | None:
    """Rows of a request that can be merged with others, or None if it must run alone."""
    if not sig.batchable:
        return None
    sizes = {a.shape[0] if a.ndim >= 1 else None for a in arrays.values()}
    if len(sizes) != 1:
        return None
    (n,) = sizes
    return n if n else None


class _Task:
    __slots__ = ("inputs", "rows", "future")

    def __init__(self, inputs: dict[str, np.ndarray], rows: int):
        self.inputs = inputs
        self.rows = rows
        self.future: Future = Future()

    # A waiting client may give up (REST timeout cancels the future); never let that
    # InvalidStateError escape into the batch and fail the other requests.
    def _claim(self) -> bool:
        fut = self.future
        if fut.done():
            return False
        return fut.running() or fut.set_running_or_notify_cancel()

    def resolve(self, result: dict) -> None:
        if self._claim():
            self.future.set_result(result)

    def fail(self, exc: BaseException) -> None:
        if self._claim():
            self.future.set_exception(exc)


class _Batch:
    __slots__ = ("key", "servable", "sig", "tasks", "rows", "deadline")

    def __init__(self, key, servable: Servable, sig: SignatureInfo, deadline: float):
        self.key = key
        self.servable = servable
        self.sig = sig
        self.tasks: list[_Task] = []
        self.rows = 0
        self.deadline = deadline


class Batcher:
    def __init__(self, config: BatchingConfig, call: ModelCall):
        self._max_rows = config.max_batch_size
        self._timeout = config.batch_timeout_micros / 1e6
        self._max_enqueued = config.max_enqueued_batches
        self._call = call
        self._cv = threading.Condition()
        self._open: dict[tuple, _Batch] = {}
        self._closed: deque[_Batch] = deque()
        self._queued: dict[tuple, int] = {}
        self._stopping = False
        self._threads = [threading.Thread(target=self._worker, name=f"batch-{i}", daemon=True)
                         for i in range(config.num_batch_threads)]
        for t in self._threads:
            t.start()

    def accepts(self, rows: int | None) -> bool:
        return rows is not None and 0 < rows <= self._max_rows

    def submit(self, servable: Servable, sig: SignatureInfo, inputs: dict[str, np.ndarray], rows: int) -> Future:
        """Queue one request (``rows`` rows on dim 0 of every input); the Future yields its outputs."""
        key = (id(servable), servable.name, servable.version, sig.name,
               tuple((n, a.dtype.str, a.shape[1:]) for n, a in sorted(inputs.items())))
        task = _Task(inputs, rows)
        with self._cv:
            if self._stopping:
                raise unavailable("Server is shutting down")
            batch = self._open.get(key)
            if batch is not None and batch.rows + rows > self._max_rows:
                self._close(batch)
                batch = None
            if batch is None:
                if self._queued.get(key, 0) >= self._max_enqueued:
                    raise unavailable("The batch scheduling queue to which this task was submitted is full")
                batch = _Batch(key, servable, sig, time.monotonic() + self._timeout)
                self._open[key] = batch
                self._queued[key] = self._queued.get(key, 0) + 1
            batch.tasks.append(task)
            batch.rows += rows
            if batch.rows >= self._max_rows:
                self._close(batch)
            self._cv.notify()
        return task.future

    def _close(self, batch: _Batch) -> None:
        del self._open[batch.key]
        self._closed.append(batch)

    def _next_batch(self) -> _Batch | None:
        with self._cv:
            while True:
                if self._closed:
                    batch = self._closed.popleft()
                    break
                now = time.monotonic()
                earliest = min(self._open.values(), key=lambda b: b.deadline, default=None)
                if earliest is not None and (earliest.deadline <= now or self._stopping):
                    del self._open[earliest.key]
                    batch = earliest
                    break
                if self._stopping:
                    return None
                self._cv.wait(None if earliest is None else earliest.deadline - now)
            self._queued[batch.key] -= 1
            if not self._queued[batch.key]:
                del self._queued[batch.key]
            return batch

    def _worker(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._execute(batch)
            except BaseException as exc:  # never leave a client waiting on a dead future
                log.exception("Batch execution failed")
                for t in batch.tasks:
                    if not t.future.done():
                        t.fail(exc)

    def _run_alone(self, batch: _Batch, task: _Task) -> None:
        if task.future.cancelled():
            return
        try:
            outputs = self._call(batch.servable, batch.sig, task.inputs, 1, task.rows)
        except Exception as exc:
            task.fail(exc)
            return
        task.resolve(outputs)

    def _execute(self, batch: _Batch) -> None:
        # Requests whose client gave up (REST timeout, gRPC deadline) while queued are dropped.
        tasks = [t for t in batch.tasks if not t.future.cancelled()]
        if not tasks:
            return
        if len(tasks) != len(batch.tasks):
            batch.tasks, batch.rows = tasks, sum(t.rows for t in tasks)
        if len(tasks) == 1:
            self._run_alone(batch, tasks[0])
            return
        started = time.perf_counter()
        merged = {name: np.concatenate([t.inputs[name] for t in tasks]) for name in tasks[0].inputs}
        try:
            outputs = self._call(batch.servable, batch.sig, merged, len(tasks), batch.rows)
        except ServingError as exc:
            # One bad request must not fail its neighbours: rerun them one by one.
            log.warning("Batched call failed (%s); retrying %d requests individually", exc, len(tasks))
            for t in tasks:
                self._run_alone(batch, t)
            return
        if not all(o.ndim >= 1 and o.shape[0] == batch.rows for o in outputs.values()):
            log.warning("Outputs of %s/%s:%s do not keep the batch dimension; running requests alone",
                        batch.servable.name, batch.servable.version, batch.sig.name)
            for t in tasks:
                self._run_alone(batch, t)
            return
        log.info("Batched call model=%s version=%d signature=%s requests=%d rows=%d took=%.1fms",
                 batch.servable.name, batch.servable.version, batch.sig.name, len(tasks), batch.rows,
                 (time.perf_counter() - started) * 1000)
        offset = 0
        for t in tasks:
            t.resolve({k: v[offset:offset + t.rows] for k, v in outputs.items()})
            offset += t.rows

    def stop(self, timeout: float = 10.0) -> None:
        """Run what is queued, then stop the threads."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)
