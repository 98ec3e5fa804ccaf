"""Issue 20: memory of rejected requests, connection lock-out, client disconnects, Prometheus
metrics and TF Serving's monitoring / config-file flags, against one real server process
(REST and gRPC on 127.0.0.1) serving the tagger test model under two names.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.slow

METRICS_PATH = "/custom/metrics"
MAX_BODY = 10 * 1024 * 1024  # the server's default --max_body_bytes: "maximum-size" requests


def _write_config(path: Path, models: dict[str, Path]) -> None:
    path.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" }}\n'
        for name, base in models.items()) + "}\n")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, model_base_path) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "models.config"
    _write_config(path, {"tagger": model_base_path, "other": model_base_path})
    return path


@pytest.fixture(scope="module")
def server(module_server_factory, config_file, tmp_path_factory):
    monitoring = tmp_path_factory.mktemp("mon") / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n')
    srv = module_server_factory([f"--model_config_file={config_file}", "--model_config_file_poll_wait_seconds=0.5",
                                 f"--monitoring_config_file={monitoring}"], model="tagger")
    srv.wait_available("other")
    return srv


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _predict(server, model="tagger", timeout=30.0):
    return requests.post(f"{server.url}/v1/models/{model}:predict", json={"instances": ["ok"]}, timeout=timeout)


def _samples(server) -> list:
    r = requests.get(server.url + METRICS_PATH, timeout=10)
    assert r.status_code == 200, r.text
    return [s for family in text_string_to_metric_families(r.text) for s in family.samples]


def _count(server, name: str, **labels) -> float:
    return sum(s.value for s in _samples(server)
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


# ---------------------------------------------------------------- metrics

def test_prometheus_endpoint_parses_and_has_latency_buckets_per_model(server):
    for model in ("tagger", "other"):
        assert _predict(server, model).status_code == 200
    with grpc.insecure_channel(server.grpc_target) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "other"
        request.inputs["inputs"].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, string_val=[b"g"], tensor_shape={"dim": [{"size": 1}]}))
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    samples = _samples(server)
    buckets = {(s.labels["model_name"], s.labels["entrypoint"]) for s in samples
               if s.name == ":tensorflow:serving:request_latency_bucket"}
    assert {("tagger", "REST"), ("other", "REST"), ("other", "GRPC")} <= buckets
    assert any(s.name == ":tensorflow:serving:request_count" and s.labels == {"model_name": "other", "status": "OK"}
               and s.value >= 2 for s in samples)
    assert any(s.name == "request_latency_seconds_bucket" and s.labels["code"] == "OK" for s in samples)
    assert any(s.name == "process_resident_memory_bytes" and s.value > 0 for s in samples)
    # The monitoring config moved the endpoint; TF Serving's default path is no longer served.
    assert requests.get(f"{server.url}/monitoring/prometheus/metrics", timeout=10).status_code == 404


# ---------------------------------------------------------------- connections

def test_silent_sockets_do_not_lock_out_the_api(server):
    silent = []
    try:
        for _ in range(300):  # more than --rest_max_connections (256)
            silent.append(socket.create_connection(("127.0.0.1", server.rest_port), timeout=10))
        # Another client is still served, promptly (the bound: 1 s each).
        assert requests.get(f"{server.url}/v1/models/tagger", timeout=1).status_code == 200
        r = _predict(server, timeout=1)
        assert r.status_code == 200 and r.json() == {"predictions": ["v1:OK"]}
    finally:
        for s in silent:
            s.close()


def _raw(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_protocol_errors_are_json(server):
    bad = _raw(server, b"GET /v1/models/tagger HTTP/1.1\r\nHost x\r\n\r\n")  # header without a colon
    assert bad.startswith(b"HTTP/1.1 400") and b'{"error": "Malformed request' in bad
    smuggled = _raw(server, b"POST /v1/models/tagger:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert smuggled.startswith(b"HTTP/1.1 400") and b"Transfer-Encoding and Content-Length" in smuggled
    r = requests.request("TRACE", f"{server.url}/v1/models/tagger", timeout=10)
    assert r.status_code == 400 and "Malformed request" in r.json()["error"]


def test_client_disconnect_mid_body_is_cancelled_not_internal(server):
    before = _count(server, "requests_total", model="tagger", code="CANCELLED")
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as s:
        s.sendall(b"POST /v1/models/tagger:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                  b'{"instances": ["')
        time.sleep(0.2)
    deadline = time.monotonic() + 20
    while _count(server, "requests_total", model="tagger", code="CANCELLED") == before:
        assert time.monotonic() < deadline, "the disconnect was never counted"
        time.sleep(0.2)
    assert _count(server, "requests_total", code="INTERNAL") == 0
    assert "Traceback" not in server.log_text()


# ---------------------------------------------------------------- memory

def _wait_rss_below(pid: int, limit: float, seconds: float = 20) -> float:
    # A handler thread may still be releasing the request when its client has the answer.
    deadline = time.monotonic() + seconds
    while (rss := _rss_mb(pid)) > limit and time.monotonic() < deadline:
        time.sleep(0.25)
    return rss


def test_rejected_maximum_size_requests_free_their_memory(server):
    body = b'{"instances":[' + b",".join([b"{}"] * ((MAX_BODY - 20) // 3)) + b"]}"  # 3.5 M empty objects
    assert len(body) <= MAX_BODY
    strings = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape={"dim": [{"size": 1}]})
    strings.string_val.extend([b""] * 4_999_000)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tagger"
    request.inputs["inputs"].CopyFrom(strings)
    assert request.ByteSize() <= MAX_BODY
    assert _predict(server).status_code == 200
    baseline = _rss_mb(server.proc.pid)
    with requests.Session() as session:
        for _ in range(20):
            r = session.post(f"{server.url}/v1/models/tagger:predict", data=body, timeout=60)
            assert r.status_code == 400 and "--max_instances" in r.json()["error"]
    rest_rss = _wait_rss_below(server.proc.pid, baseline + 100)
    with grpc.insecure_channel(server.grpc_target, options=[("grpc.max_send_message_length", -1)]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(20):
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(request, timeout=60)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "4999000 values for shape [1]" in info.value.details()
    grpc_rss = _wait_rss_below(server.proc.pid, baseline + 100)
    print(f"server RSS: baseline {baseline:.0f} MB, after 20 REST bodies {rest_rss:.0f} MB, "
          f"after 20 gRPC tensors {grpc_rss:.0f} MB")
    assert rest_rss - baseline < 100 and grpc_rss - baseline < 100
    assert _predict(server).status_code == 200


# ---------------------------------------------------------------- config file polling (last: it changes the models)

def _state(server, model: str) -> int:
    return requests.get(f"{server.url}/v1/models/{model}", timeout=10).status_code


def test_changed_model_config_file_is_applied(server, config_file, model_base_path):
    _write_config(config_file, {"tagger": model_base_path, "third": model_base_path})
    server.wait_available("third", timeout=60)
    deadline = time.monotonic() + 30
    while _predict(server, "other").status_code != 404:
        assert time.monotonic() < deadline, "the removed model is still served"
        time.sleep(0.2)
    assert _predict(server, "third").json() == {"predictions": ["v1:OK"]}
    # A broken file is reported and ignored; the models keep serving.
    config_file.write_text("model_config_list { config { name: 'x' } }")
    deadline = time.monotonic() + 30
    while "Not applying the changed --model_config_file" not in server.log_text():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert _predict(server, "third").status_code == 200 and _state(server, "tagger") == 200
