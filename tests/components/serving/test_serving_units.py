"""Fast in-process tests of the serving building blocks (no server processes)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf

from components.serving import cli
from components.serving.batching import Batcher
from components.serving.config import (
    BatchingConfig,
    ConfigError,
    Limits,
    ModelConfig,
    VersionPolicy,
    load_batching_parameters_file,
    load_model_config_file,
    parse_args,
)
from components.serving.errors import ServingError
from components.serving.model_registry import ModelRegistry
from components.serving.servable import Servable, SignatureInfo
from components.serving.tensors import (
    COLUMNAR,
    ROW,
    array_to_proto,
    arrays_from_protos,
    check_generation_budget,
    check_inputs,
    json_request_tensors,
    parse_json_body,
    predict_response_json,
    tensor_to_json,
)

LIMITS = Limits(max_body_bytes=10_000, max_instances=4, max_input_chars=8)


def _sig(name="sig", **inputs) -> SignatureInfo:
    specs = {k: tf.TensorSpec(shape, dtype, name=k) for k, (shape, dtype) in inputs.items()}
    out = {"outputs": tf.TensorSpec([None], tf.string)}
    return SignatureInfo(name, None, specs, out, batchable=True)


GEN = _sig("generate", prompt=([None], tf.string), max_tokens=([None], tf.int32))
ONE = _sig("serving_default", inputs=([None], tf.string))
NUM = _sig("numeric", x=([None, 3], tf.float32))


# ---------------------------------------------------------------- config

def test_flags_follow_tf_serving_defaults():
    cfg = parse_args(["--model_name=m", "--model_base_path=/tmp/x"])
    assert (cfg.port, cfg.rest_api_port, cfg.host) == (8500, 8501, "127.0.0.1")
    assert cfg.file_system_poll_wait_seconds == 1
    assert cfg.batching == BatchingConfig(enabled=False)
    assert cfg.limits == Limits()
    assert cfg.models[0].name == "m" and cfg.models[0].base_path == "/tmp/x"
    assert parse_args(["--model_base_path=/x", "--enable_batching=true"]).batching.enabled
    assert parse_args(["--model_base_path=/x", "--enable_batching"]).models[0].name == "default"


def test_flag_errors():
    with pytest.raises(ConfigError):
        parse_args([])
    with pytest.raises(ConfigError):
        parse_args(["--model_base_path=/x", "--model_config_file=/y"])
    assert cli.main(["--port=1"]) == 2  # no model: an error, not a crash
    assert cli.main(["--no_such_flag"]) == 2


def test_model_config_file(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("""
        model_config_list {
          config { name: "a" base_path: "/models/a" model_platform: "tensorflow" }
          config {
            name: "b" base_path: "rel/b"
            model_version_policy { specific { versions: 1 versions: 3 } }
            version_labels { key: "stable" value: 1 }
          }
        }""")
    a, b = load_model_config_file(str(path))
    assert (a.name, a.base_path, a.version_policy.kind) == ("a", "/models/a", "latest")
    assert b.base_path == os.path.abspath("rel/b")  # relative to the working dir, as in TF Serving
    assert b.version_policy == VersionPolicy("specific", versions=frozenset({1, 3}))
    assert b.version_labels == {"stable": 1}
    path.write_text("model_config_list { config { name: 'a' } }")
    with pytest.raises(ConfigError):
        load_model_config_file(str(path))


def test_batching_parameters_file(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 5000 }\n"
                    "num_batch_threads { value: 3 }\nthread_pool_name { value: 'x' }\n"
                    "enable_large_batch_splitting { value: true }\n")
    cfg = load_batching_parameters_file(str(path), BatchingConfig(enabled=True))
    assert (cfg.max_batch_size, cfg.batch_timeout_micros, cfg.num_batch_threads) == (8, 5000, 3)
    assert cfg.max_enqueued_batches == BatchingConfig().max_enqueued_batches


def test_version_policy():
    assert VersionPolicy().select([1, 3, 2]) == {3}
    assert VersionPolicy(num_versions=2).select([1, 3, 2]) == {2, 3}
    assert VersionPolicy("all").select([1, 2]) == {1, 2}
    assert VersionPolicy("specific", versions=frozenset({1, 9})).select([1, 2]) == {1}


# ---------------------------------------------------------------- JSON -> tensors

def test_row_and_columnar_requests_give_the_same_tensors():
    fmt, row = json_request_tensors(
        {"instances": [{"prompt": "a", "max_tokens": 1}, {"prompt": "b", "max_tokens": 2}]}, GEN, LIMITS)
    assert fmt == ROW
    fmt, col = json_request_tensors({"inputs": {"prompt": ["a", "b"], "max_tokens": [1, 2]}}, GEN, LIMITS)
    assert fmt == COLUMNAR
    for name in ("prompt", "max_tokens"):
        np.testing.assert_array_equal(row[name], col[name])
    assert row["max_tokens"].dtype == np.int32 and list(row["prompt"]) == [b"a", b"b"]


def test_plain_instances_and_b64():
    _, t = json_request_tensors({"instances": ["hé", {"b64": "AAE="}, {"b64": "AAE"}]}, ONE, LIMITS)
    assert list(t["inputs"]) == ["hé".encode(), b"\x00\x01", b"\x00\x01"]


@pytest.mark.parametrize("doc, sig, needle", [
    ({"instances": ["a"], "inputs": ["a"]}, ONE, "only one of 'inputs' or 'instances'"),
    ({}, ONE, "Missing 'inputs' or 'instances' key"),
    ({"instances": []}, ONE, "No values in 'instances'"),
    ({"instances": ["a", "b"]}, GEN, "instances is a plain list"),
    ({"instances": [{"prompt": "a"}]}, GEN, "keys must be equal to"),
    ({"instances": [{"prompt": "a", "max_tokens": 1, "extra": 1}]}, GEN, "does not have named input: extra"),
    ({"inputs": {"prompt": ["a"]}}, GEN, "Missing named input: max_tokens"),
    ({"inputs": {"prompt": ["a"], "max_tokens": [1], "typo": [1]}}, GEN, "Unexpected named input: typo"),
    ({"inputs": {"prompt": ["a"], "max_tokens": ["1"]}}, GEN, "is not of expected type: int32"),
    ({"inputs": {"prompt": ["a"], "max_tokens": [1.5]}}, GEN, "is not of expected type: int32"),
    ({"inputs": {"prompt": ["a"], "max_tokens": [True]}}, GEN, "is not of expected type: int32"),
    ({"instances": [[1, 2, 3], [1, 2]]}, NUM, "Expecting tensor size: 3 but got: 2"),
    ({"inputs": [[1, 2, 3], [1, [2], 3]]}, NUM, "Failed to process input: x"),
    ({"instances": [16777217, 1, 2]}, NUM, "without loss of precision"),
    ({"instances": ["a"] * 5}, ONE, "--max_instances"),
    ({"inputs": ["a"] * 5}, ONE, "--max_instances"),
    ({"instances": ["123456789"]}, ONE, "--max_input_chars"),
    ({"instances": [{"b64": "!!"}]}, ONE, "Unable to base64 decode"),
    ({"inputs": [{"b64": 1}]}, ONE, "not formatted correctly for base64"),
])
def test_bad_json_requests_are_invalid_argument(doc, sig, needle):
    with pytest.raises(ServingError) as info:
        json_request_tensors(doc, sig, LIMITS)
    assert info.value.code == "INVALID_ARGUMENT"
    assert needle in info.value.message


def test_parse_errors():
    for body, needle in [(b"", "document is empty"), (b"{", "JSON Parse error"), (b"[1]", "Is not object"),
                         (b"\xff", "JSON Parse error")]:
        with pytest.raises(ServingError, match=needle):
            parse_json_body(body)
    assert parse_json_body(b'{"inputs": [NaN]}')["inputs"][0] != 0  # NaN accepted like TF Serving


def test_shape_and_dtype_validation_names_the_input():
    with pytest.raises(ServingError, match="input 'inputs'.*shape \\[1,2\\]"):
        check_inputs(ONE, {"inputs": np.array([[b"a", b"b"]], dtype=object)}, LIMITS)
    with pytest.raises(ServingError, match="input 'x'.*expects float but int32"):
        check_inputs(NUM, {"x": np.zeros([1, 3], np.int32)}, LIMITS)
    with pytest.raises(ServingError, match="Missing but required: \\{max_tokens\\}"):
        check_inputs(GEN, {"prompt": np.array([b"a"], dtype=object)}, LIMITS)


# ---------------------------------------------------------------- tensors -> JSON

def test_response_formats_follow_tf_serving():
    single = {"outputs": np.array([b"a", b"b"], dtype=object)}
    assert predict_response_json(single, ROW) == {"predictions": ["a", "b"]}
    assert predict_response_json(single, COLUMNAR) == {"outputs": ["a", "b"]}
    multi = {"y": np.array([[0.1, 0.5]], np.float32), "n": np.array([7], np.int64)}
    assert predict_response_json(multi, ROW) == {"predictions": [{"n": 7, "y": [0.1, 0.5]}]}
    assert predict_response_json(multi, COLUMNAR) == {"outputs": {"n": [7], "y": [[0.1, 0.5]]}}
    with pytest.raises(ServingError, match="inconsistent batch size"):
        predict_response_json({"a": np.zeros([2]), "b": np.zeros([3])}, ROW)


def test_float_and_bytes_output_values():
    # float32 0.1 prints as 0.1 (TF Serving's "%g" rule), not 0.10000000149011612.
    assert tensor_to_json(np.array([0.1, 1e-7, 3.0, np.nan], np.float32), "y")[:3] == [0.1, 1e-7, 3.0]
    assert tensor_to_json(np.array([np.float32(0.7) * np.float32(1.0000001)], np.float32), "y") == [0.700000048]
    assert tensor_to_json(np.array([b"\xff\x00", b"ok"], dtype=object), "text") == [{"b64": "/wA="}, "ok"]
    assert tensor_to_json(np.array([b"ok"], dtype=object), "data_bytes") == [{"b64": "b2s="}]


def test_proto_inputs_with_absurd_shapes_are_rejected():
    from tensorflow.core.framework import tensor_pb2

    limits = Limits(max_instances=10**9, max_tensor_elements=1000)
    proto = tensor_pb2.TensorProto(dtype=tf.float32.as_datatype_enum, float_val=[1.0])
    proto.tensor_shape.dim.add(size=10**10)
    proto.tensor_shape.dim.add(size=3)
    with pytest.raises(ServingError, match="more than the limit of 1000"):
        arrays_from_protos({"x": proto}, NUM, limits)
    # 10,000,000 strings declared by a 30-byte proto: refused by --max_instances, never expanded.
    strings = tensor_pb2.TensorProto(dtype=tf.string.as_datatype_enum, string_val=[b"a"])
    strings.tensor_shape.dim.add(size=10_000_000)
    assert len(strings.SerializeToString()) < 40
    with pytest.raises(ServingError, match="10000000 rows, more than the limit of 4"):
        arrays_from_protos({"inputs": strings}, ONE, LIMITS)
    wrong_rank = tensor_pb2.TensorProto(dtype=tf.string.as_datatype_enum, string_val=[b"a"])
    for _ in range(3):
        wrong_rank.tensor_shape.dim.add(size=2000)
    with pytest.raises(ServingError, match="signature expects"):
        arrays_from_protos({"inputs": wrong_rank}, ONE, Limits(max_instances=10**9))
    deep = "a"
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ServingError, match="nested more than"):
        json_request_tensors({"inputs": deep}, ONE, LIMITS)


def test_grpc_outputs_use_typed_fields():
    proto = array_to_proto(np.array([[1.5, 2.5]], np.float32))
    assert list(proto.float_val) == [1.5, 2.5] and not proto.tensor_content
    assert list(array_to_proto(np.array([b"a"], dtype=object)).string_val) == [b"a"]
    np.testing.assert_array_equal(tf.make_ndarray(array_to_proto(np.arange(4, dtype=np.int64))), np.arange(4))


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

@pytest.mark.parametrize("body, needle", [
    (b'["\\ud800"]', "surrogate"),
    (b'{"instances": ["\\udc00x"]}', "surrogate"),
    (b'{"instances": ["\xed\xa0\x80"]}', "Invalid encoding"),
    (b'{"signature_name": "\xed\xa0\x80"}', "Invalid encoding"),
    (b'{"instances": [' + b"9" * 5000 + b']}', "Number too big"),
    (b'{"instances": [1e400]}', "Number too big"),
    (b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b'}', "nested too deeply"),
    (b'{"instances": [Inf' + b'"' + b'\\"' * 20000, "Parse error"),
])
def test_hostile_json_is_a_parse_error(body, needle):
    with pytest.raises(ServingError, match=needle) as info:
        parse_json_body(body)
    assert info.value.code == "INVALID_ARGUMENT" and len(info.value.message) < 200


def test_json_accepts_inf_like_tf_serving_and_valid_surrogate_pairs():
    doc = parse_json_body(b'{"inputs": [[Inf, -Inf, NaN]], "s": "Inf \\" Inf", "e": "\\ud83d\\ude00"}')
    assert doc["inputs"][0][:2] == [float("inf"), float("-inf")] and doc["s"] == 'Inf " Inf'
    assert doc["e"] == "\U0001F600"
    assert parse_json_body(b'{"n": ' + b"1" * 30 + b'}')["n"] == int("1" * 30)


def test_error_messages_are_truncated_and_encodable():
    err = ServingError("INVALID_ARGUMENT", "x" * 100_000 + "\ud800")
    assert len(err.message) < 1100
    err = ServingError("NOT_FOUND", 'signature "\ud800" not found')
    err.message.encode("utf-8")


def test_generation_budget():
    limits = Limits(max_tokens=100, max_total_tokens=150)
    ok = {"prompt": np.array([b"a", b"b"], dtype=object), "max_tokens": np.array([100, 50], np.int32)}
    check_generation_budget(GEN, ok, limits)
    with pytest.raises(ServingError, match="max_tokens 2147483647 exceeds the limit of 100"):
        check_generation_budget(GEN, {**ok, "max_tokens": np.array([2**31 - 1, 1], np.int32)}, limits)
    with pytest.raises(ServingError, match="summed over the request's rows is 200"):
        check_generation_budget(GEN, {**ok, "max_tokens": np.array([100, 100], np.int32)}, limits)


def test_json_element_count_is_checked_before_conversion():
    limits = Limits(max_tensor_elements=10, max_instances=100)
    with pytest.raises(ServingError, match="--max_tensor_elements"):
        json_request_tensors({"inputs": [[1.0, 2.0, 3.0]] * 4}, NUM, limits)
    with pytest.raises(ServingError, match="--max_tensor_elements"):
        json_request_tensors({"instances": [[1.0, 2.0, 3.0]] * 4}, NUM, limits)


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
TF_SERVING_MAIN_FLAGS = """port grpc_socket_path rest_api_port rest_api_num_threads rest_api_timeout_in_ms
rest_api_enable_cors_support enable_batching allow_version_labels_for_unavailable_models batching_parameters_file
enable_per_model_batching_parameters model_config_file model_config_file_poll_wait_seconds model_name
model_base_path num_load_threads num_unload_threads max_num_load_retries load_retry_interval_micros
file_system_poll_wait_seconds flush_filesystem_caches tensorflow_session_parallelism tensorflow_session_config_file
tensorflow_intra_op_parallelism tensorflow_inter_op_parallelism use_alts_credentials ssl_config_file
platform_config_file per_process_gpu_memory_fraction saved_model_tags grpc_channel_arguments grpc_max_threads
enable_model_warmup num_request_iterations_for_warmup version monitoring_config_file
remove_unused_fields_from_bundle_metagraph prefer_tflite_model num_tflite_pools num_tflite_interpreters_per_pool
enable_signature_method_name_check xla_cpu_compilation_enabled xla_gpu_compilation_enabled enable_profiler
thread_pool_factory_config_file mixed_precision skip_initialize_tpu enable_grpc_healthcheck_service
enable_serialization_as_tensor_content""".split()


def test_every_tf_serving_flag_is_known():
    from components.serving.config import build_arg_parser

    known = {opt[2:] for action in build_arg_parser()._actions for opt in action.option_strings}
    assert set(TF_SERVING_MAIN_FLAGS) - known == set()


def test_tf_serving_flags_work_or_fail_naming_the_flag(tmp_path, capsys):
    base = ["--model_base_path=/x"]
    cfg = parse_args(base + ["--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.x=abc",
                             "--tensorflow_session_parallelism=3", "--tensorflow_intra_op_parallelism=2",
                             "--flush_filesystem_caches=false", "--saved_model_tags=serve", "--num_load_threads=0"])
    assert cfg.grpc_channel_arguments == (("grpc.max_connection_age_ms", 2000), ("grpc.x", "abc"))
    assert (cfg.intra_op_parallelism, cfg.inter_op_parallelism) == (2, 3)
    for flag in ("--ssl_config_file=ssl.cfg", "--saved_model_tags=serve,tpu", "--num_load_threads=4",
                 "--rest_api_enable_cors_support", "--enable_grpc_healthcheck_service=true"):
        with pytest.raises(ConfigError, match=f"^{flag.split('=')[0]}"):
            parse_args(base + [flag])
    assert cli.main(base + ["--platform_config_file=p.cfg"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("serve: error: --platform_config_file=p.cfg is not supported")
    # --monitoring_config_file: TF Serving's MonitoringConfig text proto.
    mon = tmp_path / "monitoring.config"
    mon.write_text('prometheus_config { enable: true, path: "/metrics" }')
    assert parse_args(base + [f"--monitoring_config_file={mon}"]).monitoring.path == "/metrics"
    mon.write_text("prometheus_config { enable: false }")
    assert not parse_args(base + [f"--monitoring_config_file={mon}"]).monitoring.enabled
    mon.write_text("prometheus_config { enabled: true }")
    with pytest.raises(ConfigError, match="invalid --monitoring_config_file"):
        parse_args(base + [f"--monitoring_config_file={mon}"])
    with pytest.raises(ConfigError, match="needs --model_config_file"):
        parse_args(base + ["--model_config_file_poll_wait_seconds=5"])


def test_a_label_on_a_version_that_is_not_loaded_fails_the_config(tmp_path, capsys):
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "2").mkdir()
    path = tmp_path / "models.config"
    path.write_text(f'model_config_list {{ config {{ name: "m" base_path: "{tmp_path / "m"}" '
                    'version_labels { key: "stable" value: 1 } } }')  # latest policy: only 2 is loaded
    assert cli.main([f"--model_config_file={path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "version label 'stable' points at version 1, which is not loaded" in err[0]
    assert parse_args([f"--model_config_file={path}", "--allow_version_labels_for_unavailable_models"])
    path.write_text(path.read_text().replace("value: 1", "value: 2"))
    assert parse_args([f"--model_config_file={path}"]).models[0].version_labels == {"stable": 2}


def test_value_counts_are_checked_before_make_ndarray():
    from tensorflow.core.framework import tensor_pb2, types_pb2

    too_many = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"a"] * 5,
                                      tensor_shape={"dim": [{"size": 2}]})
    with pytest.raises(ServingError, match="5 values for shape \\[2\\], which holds 2"):
        arrays_from_protos({"inputs": too_many}, ONE, LIMITS)
    content = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0" * 16,
                                     tensor_shape={"dim": [{"size": 1}, {"size": 3}]})
    with pytest.raises(ServingError, match="tensor_content has 16 bytes"):
        arrays_from_protos({"x": content}, NUM, LIMITS)
    fill = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"a"], tensor_shape={"dim": [{"size": 2}]})
    assert arrays_from_protos({"inputs": fill}, ONE, LIMITS)["inputs"].tolist() == [b"a", b"a"]  # TF's fill rule


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
