"""Fast in-process tests of the serving building blocks (no server processes)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf

from components.serving.batching import Batcher
from components.serving.config import BatchingConfig, ModelConfig, VersionPolicy
from components.serving.errors import ServingError
from components.serving.model_registry import ModelRegistry
from components.serving.servable import Servable
from tests.components.serving.signatures import ONE

# ---------------------------------------------------------------- batching

class _FakeServable:
    name, version = "m", 1


def test_batcher_merges_concurrent_requests_and_splits_results():
    calls = []

    def call(servable, sig, inputs, requests, rows):
        calls.append(rows)
        time.sleep(0.05)
        return {"outputs": inputs["inputs"] * 2}

    batcher = Batcher(BatchingConfig(True, max_batch_size=32, batch_timeout_micros=100_000,
                                     num_batch_threads=1), call)
    try:
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(lambda i=i: batcher.submit(
                _FakeServable, ONE, {"inputs": np.array([i, i + 100])}, 2).result(10)) for i in range(16)]
            results = [f.result() for f in futures]
    finally:
        batcher.stop()
    for i, r in enumerate(results):
        assert list(r["outputs"]) == [2 * i, 2 * (i + 100)]
    assert sum(calls) == 32 and len(calls) < 16


def test_batcher_isolates_a_failing_request():
    def call(servable, sig, inputs, requests, rows):
        if (inputs["inputs"] < 0).any():
            raise ServingError("INVALID_ARGUMENT", "negative")
        return {"outputs": inputs["inputs"]}

    batcher = Batcher(BatchingConfig(True, max_batch_size=8, batch_timeout_micros=50_000,
                                     num_batch_threads=1), call)
    try:
        good = batcher.submit(_FakeServable, ONE, {"inputs": np.array([1])}, 1)
        bad = batcher.submit(_FakeServable, ONE, {"inputs": np.array([-1])}, 1)
        assert list(good.result(5)["outputs"]) == [1]
        with pytest.raises(ServingError):
            bad.result(5)
    finally:
        batcher.stop()


def test_batcher_survives_a_cancelled_request():
    """A REST timeout cancels its future; the rest of the batch must still get answers."""
    batcher = Batcher(BatchingConfig(True, max_batch_size=8, batch_timeout_micros=100_000,
                                     num_batch_threads=1), lambda s, g, inputs, n, r: {"outputs": inputs["inputs"]})
    try:
        gone = batcher.submit(_FakeServable, ONE, {"inputs": np.array([1])}, 1)
        kept = batcher.submit(_FakeServable, ONE, {"inputs": np.array([2])}, 1)
        assert gone.cancel()
        assert list(kept.result(5)["outputs"]) == [2]
    finally:
        batcher.stop()


# ---------------------------------------------------------------- registry

def _fake_loader(name, version, path):
    if os.path.exists(os.path.join(path, "BROKEN")):
        raise ServingError("DATA_LOSS", f"Can't parse {path}/saved_model.pb as binary proto")
    return Servable(name, version, path, None, {}, None)


def _status(registry, name="m"):
    from tensorflow_serving.apis import get_model_status_pb2

    state = get_model_status_pb2.ModelVersionStatus.State.Name
    return {s.version: (state(s.state), s.status.error_code) for s in registry.status(name).model_version_status}


def test_registry_swaps_versions_and_keeps_serving_on_a_broken_one(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "tmp-export").mkdir()  # an exporter's temp folder: not a version
    registry = ModelRegistry([ModelConfig("m", str(tmp_path))], poll_wait_seconds=0, loader=_fake_loader)
    mgr = registry.manager("m")
    with pytest.raises(ServingError) as info:
        registry.servable("m")
    assert info.value.code == "NOT_FOUND"
    mgr.poll_once()
    assert registry.servable("m").version == 1
    (tmp_path / "2").mkdir()
    mgr.poll_once()
    assert registry.servable("m").version == 2
    assert _status(registry) == {2: ("AVAILABLE", 0), 1: ("END", 0)}
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "BROKEN").write_text("x")
    mgr.poll_once()
    mgr.poll_once()  # not retried while its files are unchanged
    assert registry.servable("m").version == 2
    state, code = _status(registry)[3]
    assert state == "END" and code != 0
    with pytest.raises(ServingError) as info:
        registry.servable("m", version=3)
    assert info.value.code == "NOT_FOUND"
    assert registry.status("m", version=3).model_version_status[0].status.error_message.startswith("Can't parse")


def test_registry_unknown_model_and_labels(tmp_path):
    (tmp_path / "4").mkdir()
    registry = ModelRegistry([ModelConfig("m", str(tmp_path), version_labels={"stable": 4})],
                             loader=_fake_loader)
    registry.manager("m").poll_once()
    assert registry.servable("m", label="stable").version == 4
    with pytest.raises(ServingError, match="Unrecognized servable version label"):
        registry.servable("m", label="canary")
    with pytest.raises(ServingError, match="Latest\\(nope\\)"):
        registry.servable("nope")
    with pytest.raises(ServingError, match="Could not find any versions of model nope"):
        registry.status("nope")


def test_registry_reports_loading_as_unavailable(tmp_path):
    (tmp_path / "1").mkdir()
    started, release = threading.Event(), threading.Event()

    def slow_loader(name, version, path):
        started.set()
        release.wait(5)
        return _fake_loader(name, version, path)

    registry = ModelRegistry([ModelConfig("m", str(tmp_path))], poll_wait_seconds=0, loader=slow_loader)
    registry.start()
    try:
        assert started.wait(5)
        with pytest.raises(ServingError) as info:
            registry.servable("m")
        assert info.value.code == "UNAVAILABLE"
        assert _status(registry) == {1: ("LOADING", 0)}
    finally:
        release.set()
        registry.stop()


# ---------------------------------------------------------------- hardening


def test_error_messages_are_truncated_and_encodable():
    err = ServingError("INVALID_ARGUMENT", "x" * 100_000 + "\ud800")
    assert len(err.message) < 1100
    err = ServingError("NOT_FOUND", 'signature "\ud800" not found')
    err.message.encode("utf-8")


def test_call_pool_admission_deadline_and_cancellation():
    from components.serving.execution import ModelCallPool

    pool = ModelCallPool(threads=1, queued=1)
    release = threading.Event()
    first, _ = pool.submit(release.wait)
    second, _ = pool.submit(lambda: "ran", deadline=time.monotonic() + 0.05)
    with pytest.raises(ServingError) as info:  # one running + one queued: the third is refused
        pool.submit(lambda: None)
    assert info.value.code == "RESOURCE_EXHAUSTED" and info.value.http_status == 503
    time.sleep(0.1)
    release.set()
    assert first.result(5) is True
    with pytest.raises(ServingError, match="Deadline exceeded before the model call started"):
        second.result(5)  # its deadline passed while it waited: it never ran

    # A running tf.function loop is aborted through the call's handle.
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def spin(n):
        return tf.while_loop(lambda i, a: i < n, lambda i, a: (i + 1, tf.tanh(tf.matmul(a, a))),
                             (tf.constant(0), tf.fill([32, 32], 0.01)))[1]

    spin(tf.constant(1))
    assert pool.cancellable
    future, handle = pool.submit(lambda: spin(tf.constant(10**9)))
    time.sleep(0.3)
    started = time.monotonic()
    handle.cancel()
    with pytest.raises(tf.errors.CancelledError):
        future.result(30)
    assert time.monotonic() - started < 10
    assert pool.close(0)


def test_warmup_replays_before_publishing_and_a_failing_warmup_fails_the_load(tmp_path):
    from components.export.warmup import write_warmup_requests
    from components.serving.servable import load_servable
    from components.serving.warmup import run_warmup
    from tests.components.serving.conftest import save_test_model

    calls = []

    def counting_warmup(servable):
        calls.append((servable.version, registry.manager("m").loaded_versions()))
        return run_warmup(servable)

    save_test_model(tmp_path / "1", 1)
    write_warmup_requests(tmp_path / "1", [("serving_default", {"inputs": tf.constant(["a"])}),
                                           ("numeric", {"x": tf.constant([[1.0, 2.0, 3.0]])})])
    save_test_model(tmp_path / "2", 2)
    write_warmup_requests(tmp_path / "2", [("no_such_signature", {"inputs": tf.constant(["a"])})])
    registry = ModelRegistry([ModelConfig("m", str(tmp_path), VersionPolicy("specific", versions=frozenset({1})))],
                             poll_wait_seconds=0, loader=load_servable, warmup=counting_warmup)
    registry.manager("m").poll_once()
    assert calls == [(1, [])]  # warmed up while not yet visible to requests
    assert run_warmup(registry.servable("m")) == 2

    registry = ModelRegistry([ModelConfig("m", str(tmp_path))], poll_wait_seconds=0, loader=load_servable,
                             warmup=run_warmup)
    registry.manager("m").poll_once()
    status = registry.status("m", version=2).model_version_status[0]
    assert status.state == get_model_status_state("END") and "Warm-up request 0" in status.status.error_message
    with pytest.raises(ServingError):
        registry.servable("m", version=2)


def get_model_status_state(name: str) -> int:
    from tensorflow_serving.apis import get_model_status_pb2

    return get_model_status_pb2.ModelVersionStatus.State.Value(name)


# ---------------------------------------------------------------- issue 20: TF Serving flags, labels, errors

# Every flag of tensorflow_model_server 2.x (tensorflow_serving/model_servers/main.cc).


def test_graph_errors_reach_the_client_without_tf_internals():
    from components.serving.servable import public_message

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)], autograph=False)
    def gather_in_a_loop(x):
        return tf.while_loop(lambda i, a: i < tf.size(x),
                             lambda i, a: (i + 1, a + tf.gather(tf.range(3), x[i] + 5)), (0, 0))[1]

    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        # Both iterations fail with the same index: the loop may run them in parallel, and the
        # first to fail is the one TF reports.
        gather_in_a_loop(tf.constant([1, 1]))
    assert "node while" in info.value.message  # what TF itself says
    assert public_message(info.value.message) == "indices = 6 is not in [0, 3)"
