"""The predict path shared by REST and gRPC: resolve, validate, dispatch, call.

Both front ends funnel through here so they resolve versions, validate inputs
and batch identically; REST and gRPC requests even share batches.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

from .batching import Batcher, batch_rows
from .config import BatchingConfig, Limits
from .errors import ServingError, invalid
from .execution import CallHandle, ModelCallPool
from .json_codec import json_request_tensors, parse_json_body, signature_name_of
from .limits import check_generation_budget, check_inputs
from .metrics import Metrics
from .model_registry import ModelRegistry
from .proto_codec import arrays_from_protos
from .servable import DEFAULT_SIGNATURE, Servable, SignatureInfo


@dataclass
class Prepared:
    """A validated request, ready to run."""

    servable: Servable
    sig: SignatureInfo
    inputs: dict[str, np.ndarray]
    rows: int | None  # batchable rows, None if it must run alone
    fmt: str | None = None  # json_codec.ROW / COLUMNAR for REST
    output_filter: tuple[str, ...] = field(default_factory=tuple)


def model_spec_target(spec) -> tuple[int | None, str | None]:
    """(version, label) requested by a tensorflow_serving ModelSpec."""
    which = spec.WhichOneof("version_choice")
    if which == "version":
        return spec.version.value, None
    if which == "version_label":
        return None, spec.version_label
    return None, None


class Predictor:
    def __init__(self, registry: ModelRegistry, limits: Limits, metrics: Metrics,
                 batching: BatchingConfig | None = None, pool: ModelCallPool | None = None):
        self.registry = registry
        self.limits = limits
        self.metrics = metrics
        self.pool = pool or ModelCallPool(8, 64)
        self.batcher = Batcher(batching, self._invoke) if batching and batching.enabled else None

    # ---- preparation ----
    def prepare_json(self, model: str, version: int | None, label: str | None, body: bytes) -> Prepared:
        # Same order as TF Serving: parse, then find the servable, then the signature, then tensors.
        doc = parse_json_body(body)
        sig_name = signature_name_of(doc)
        servable = self.registry.servable(model, version, label)
        sig = servable.signature(sig_name)
        fmt, arrays = json_request_tensors(doc, sig, self.limits)
        check_inputs(sig, arrays, self.limits)
        check_generation_budget(sig, arrays, self.limits)
        return Prepared(servable, sig, arrays, batch_rows(sig, arrays), fmt)

    def prepare_proto(self, request) -> Prepared:
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        version, label = model_spec_target(request.model_spec)
        servable = self.registry.servable(request.model_spec.name, version, label)
        sig_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        sig = servable.signatures.get(sig_name)
        if sig is None:
            # TF Serving's gRPC Predict (predict_util.cc) uses FAILED_PRECONDITION here.
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{sig_name}" not found.')
        # Shapes are checked against the signature and the limits before any tensor is built:
        # a 32-byte proto can declare 10,000,000 elements that make_ndarray would expand.
        arrays = arrays_from_protos(request.inputs, sig, self.limits)
        check_inputs(sig, arrays, self.limits, check_strings=True)
        check_generation_budget(sig, arrays, self.limits)
        seen: set[str] = set()
        for alias in request.output_filter:
            if alias not in sig.outputs:
                raise invalid(f"output tensor alias not found in signature: {alias} Outputs expected to be "
                              f"in the set {{{','.join(sorted(sig.outputs))}}}.")
            if alias in seen:
                raise invalid(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return Prepared(servable, sig, arrays, batch_rows(sig, arrays),
                        output_filter=tuple(request.output_filter))

    # ---- execution ----
    def _invoke(self, servable: Servable, sig: SignatureInfo, inputs: dict, requests: int, rows: int) -> dict:
        """A merged batch, on a batch thread: registered with the pool so shutdown can cancel it."""
        return self.pool.run_here(lambda: self._call(servable, sig, inputs, requests, rows))

    def _call(self, servable: Servable, sig: SignatureInfo, inputs: dict, requests: int, rows: int) -> dict:
        started = time.perf_counter()
        try:
            return servable.call(sig, inputs)
        finally:
            self.metrics.model_call(servable.name, servable.version, sig.name, requests, rows,
                                    time.perf_counter() - started)

    def start(self, p: Prepared, deadline: float | None = None) -> tuple[Future, CallHandle | None]:
        """Queue the model call: on the batcher when it can be merged, else on the call pool.

        Returns the future of the (unfiltered) outputs and, for pool calls, the handle that
        cancels the running call. Raises ServingError when the server is saturated.
        """
        if self.batcher is not None and self.batcher.accepts(p.rows):
            return self.batcher.submit(p.servable, p.sig, p.inputs, p.rows), None
        rows = p.rows or 0
        return self.pool.submit(lambda: self._call(p.servable, p.sig, p.inputs, 1, rows), deadline)

    def run(self, p: Prepared, timeout: float | None = None) -> dict[str, np.ndarray]:
        """Blocking predict (gRPC threads); ``timeout`` is the client's remaining deadline."""
        deadline = None if timeout is None else time.monotonic() + timeout
        future, handle = self.start(p, deadline)
        try:
            outputs = future.result(timeout)
        except FutureTimeout:
            future.cancel()
            if handle is not None:
                handle.cancel()
            raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded") from None
        return self.finish(p, outputs)

    def finish(self, p: Prepared, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._filter(p, outputs)

    @staticmethod
    def _filter(p: Prepared, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if p.output_filter:
            return {k: outputs[k] for k in p.output_filter}
        return outputs

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.stop(timeout=0.5)
