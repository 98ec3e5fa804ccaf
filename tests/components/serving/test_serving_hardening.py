"""Issue 12: what a hostile or careless client can do to a running server.

Real server processes, real HTTP (requests / raw sockets) and real gRPC stubs against a real
LM export (random weights, the project's exporter) and the tagger test model.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import signal
import socket
import time
from pathlib import Path

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

pytestmark = pytest.mark.slow

LM = "lm"
TAGGER = "tagger"
GOOD_LM = {"instances": [{"prompt": "ROMEO:", "max_tokens": 3, "temperature": 0.0, "top_k": 0}]}


def _config_file(tmp: Path, lm_base: Path, tagger_base: Path) -> Path:
    path = tmp / "models.config"
    path.write_text(f"""model_config_list {{
  config {{ name: "{LM}" base_path: "{lm_base}" model_platform: "tensorflow" }}
  config {{ name: "{TAGGER}" base_path: "{tagger_base}" model_platform: "tensorflow"
           version_labels {{ key: "stable" value: 1 }} }}
}}
""")
    return path


@pytest.fixture(scope="module")
def server(module_server_factory, random_lm_base, model_base_path, tmp_path_factory):
    cfg = _config_file(tmp_path_factory.mktemp("cfg"), random_lm_base, model_base_path)
    srv = module_server_factory([f"--model_config_file={cfg}", "--max_tokens=16", "--max_total_tokens=32",
                                 "--max_instances=8", "--max_input_chars=256"],
                                model=LM)
    srv.wait_available(TAGGER)
    return srv


def _lm_generate(server, max_tokens, timeout=60):
    body = {"instances": [{"prompt": "ROMEO:", "max_tokens": max_tokens, "temperature": 0.0, "top_k": 0}]}
    return requests.post(f"{server.url}/v1/models/{LM}:predict", json=body, timeout=timeout)


def _grpc_generate(target, max_tokens, timeout=60, name=LM):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["prompt"].CopyFrom(tf.make_tensor_proto(["ROMEO:"]))
    request.inputs["max_tokens"].CopyFrom(tf.make_tensor_proto([max_tokens], tf.int32))
    request.inputs["temperature"].CopyFrom(tf.make_tensor_proto([0.0], tf.float32))
    request.inputs["top_k"].CopyFrom(tf.make_tensor_proto([0], tf.int32))
    with grpc.insecure_channel(target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# ---------------------------------------------------------------- limits

def test_max_tokens_cap_is_a_400_before_the_model_runs(server):
    assert server.log_text().count("Warmed up servable version {name: lm version: 1} with 4 requests") == 1
    started = time.monotonic()
    r = _lm_generate(server, 2147483647)
    assert r.status_code == 400 and "--max_tokens" in r.json()["error"]
    assert time.monotonic() - started < 10  # refused up front, not after a 30 s timeout
    too_many = {"instances": [{"prompt": "a", "max_tokens": 16, "temperature": 0.0, "top_k": 0}] * 3}
    r = requests.post(f"{server.url}/v1/models/{LM}:predict", json=too_many, timeout=60)
    assert r.status_code == 400 and "--max_total_tokens" in r.json()["error"]
    with pytest.raises(grpc.RpcError) as info:
        _grpc_generate(server.grpc_target, 300000)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "--max_tokens" in info.value.details()
    r = _lm_generate(server, 16)
    assert r.status_code == 200 and r.json()["predictions"][0].startswith("ROMEO:")


def test_grpc_element_count_is_checked_before_expansion(server):
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"x"])
    proto.tensor_shape.dim.add(size=10_000_000)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = TAGGER
    request.inputs["inputs"].CopyFrom(proto)
    assert len(request.SerializeToString()) < 40
    rss_before = _rss_mb(server.proc.pid)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(5):
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(request, timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "--max_instances" in info.value.details()
    rss_after = _rss_mb(server.proc.pid)
    print(f"server RSS before {rss_before:.0f} MB, after 5 x 10M-element requests {rss_after:.0f} MB")
    # Expanding it once costs ~150 MB (10M Python bytes objects); refused up front costs nothing.
    assert rss_after - rss_before < 40, (rss_before, rss_after)


# ---------------------------------------------------------------- conformance

def test_conformance_with_tf_serving(server):
    u = server.url
    # Status by label: TF Serving ignores the label (even an unknown one) and lists all versions.
    all_versions = requests.get(f"{u}/v1/models/{TAGGER}", timeout=10).json()
    assert requests.get(f"{u}/v1/models/{TAGGER}/labels/nope", timeout=10).json() == all_versions
    with grpc.insecure_channel(server.grpc_target) as channel:
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = TAGGER
        req.model_spec.version_label = "nope"
        reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(req, timeout=10)
        assert [s.version for s in reply.model_version_status] == [1]
    # Case-insensitive routing.
    r = requests.post(f"{u}/V1/Models/{TAGGER}:PREDICT", json={"instances": ["a"]}, timeout=10)
    assert r.status_code == 200 and r.json() == {"predictions": ["v1:A"]}
    # HEAD / OPTIONS are malformed requests (400), like any other unsupported method.
    assert requests.head(f"{u}/v1/models/{TAGGER}", timeout=10).status_code == 400
    r = requests.options(f"{u}/v1/models/{TAGGER}", timeout=10)
    assert r.status_code == 400 and "Malformed request" in r.json()["error"]
    # Inf / -Inf are accepted; 1e400 is a 400.
    r = requests.post(f"{u}/v1/models/{TAGGER}:predict", timeout=10,
                      data='{"signature_name": "numeric", "instances": [[Inf, -Inf, 1]]}')
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["y"][:2] == [float("inf"), float("-inf")]
    r = requests.post(f"{u}/v1/models/{TAGGER}:predict", timeout=10,
                      data='{"signature_name": "numeric", "instances": [[1e400, 1, 1]]}')
    assert r.status_code == 400 and "Number too big" in r.json()["error"]


# ---------------------------------------------------------------- connections

def test_idle_and_partial_header_connections_are_closed(module_server_factory, model_base_path, tmp_path):
    srv = module_server_factory([f"--model_name={TAGGER}", f"--model_base_path={model_base_path}",
                                 "--http_read_timeout_seconds=1", "--http_idle_timeout_seconds=1"], model=TAGGER)

    def closed_within(sock: socket.socket, seconds: float) -> bool:
        sock.settimeout(seconds)
        try:
            while sock.recv(4096):
                pass
            return True  # EOF: the server closed it
        except (TimeoutError, socket.timeout):
            return False
        except ConnectionResetError:
            return True

    silent = socket.create_connection(("127.0.0.1", srv.rest_port))
    partial = socket.create_connection(("127.0.0.1", srv.rest_port))
    partial.sendall(b"GET /v1/models/tagger HTTP/1.1\r\nHost: x\r\n")
    kept = socket.create_connection(("127.0.0.1", srv.rest_port))
    kept.sendall(b"GET /v1/models/tagger HTTP/1.1\r\nHost: x\r\n\r\n")
    assert kept.recv(4096).startswith(b"HTTP/1.1 200")
    try:
        assert closed_within(silent, 10)
        assert closed_within(partial, 10)
        assert closed_within(kept, 10)  # idle keep-alive after a response
    finally:
        for s in (silent, partial, kept):
            s.close()
    assert requests.get(f"{srv.url}/v1/models/{TAGGER}", timeout=10).status_code == 200


# ---------------------------------------------------------------- deadlines, saturation, SIGTERM

LONG = 200_000  # tokens: minutes of generation for the tiny LM; only cancellation ends it early


def test_deadline_cancels_the_call_and_frees_the_worker(start_server, random_lm_base):
    srv = start_server([f"--model_name={LM}", f"--model_base_path={random_lm_base}",
                        f"--max_tokens={LONG}", f"--max_total_tokens={LONG}", "--rest_api_timeout_in_ms=1500",
                        "--max_concurrent_model_calls=1", "--max_queued_model_calls=1"], model=LM)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        long_rest = pool.submit(_lm_generate, srv, LONG)
        time.sleep(0.4)
        queued = pool.submit(_lm_generate, srv, 2)
        time.sleep(0.4)
        # One call running, one waiting: the pool is full, a third is turned away at once.
        r = _lm_generate(srv, 2)
        assert r.status_code == 503 and "at capacity" in r.json()["error"], r.text
        with pytest.raises(grpc.RpcError) as info:
            _grpc_generate(srv.grpc_target, 2)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert long_rest.result(60).status_code == 504
        assert queued.result(60).status_code in (200, 504)
    # The timed-out generation was cancelled, so the single worker serves the next one promptly.
    started = time.monotonic()
    r = _lm_generate(srv, 5)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 10
    # Same over gRPC, with the client's own deadline.
    with pytest.raises(grpc.RpcError) as info:
        _grpc_generate(srv.grpc_target, LONG, timeout=1.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    started = time.monotonic()
    assert _grpc_generate(srv.grpc_target, 5).outputs["outputs"].string_val[0].startswith(b"ROMEO:")
    assert time.monotonic() - started < 10


def test_sigterm_with_a_long_request_in_flight_exits_promptly(start_server, random_lm_base):
    srv = start_server([f"--model_name={LM}", f"--model_base_path={random_lm_base}", f"--max_tokens={LONG}",
                        f"--max_total_tokens={LONG}", "--rest_api_timeout_in_ms=0", "--shutdown_grace_seconds=1"],
                       model=LM)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        rest = pool.submit(_lm_generate, srv, LONG, 120)
        grpc_call = pool.submit(_grpc_generate, srv.grpc_target, LONG, 120)
        time.sleep(1.5)
        assert not rest.done() and not grpc_call.done()
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(30) == 0
        print(f"SIGTERM with two long generations in flight, grace 1 s: exit after {time.monotonic() - started:.2f} s")
        assert time.monotonic() - started < 10
        # The in-flight clients get an answer or a closed connection, not a hang.
        try:
            assert rest.result(30).status_code >= 400
        except requests.RequestException:
            pass
        with pytest.raises(grpc.RpcError):
            grpc_call.result(30)
    assert "Server stopped" in srv.log_text()


# ---------------------------------------------------------------- fuzz

SEED = 1212
_STRINGS = ["", "a", "ROMEO:", "\ud800", "\udfff", "\U0001F600", "x" * 300, "\x00", "é" * 10, "null",
            "serving_default", "generate", "numeric", "binary", "score", "b64", "Inf"]
_KEYS = ["instances", "inputs", "signature_name", "prompt", "max_tokens", "temperature", "top_k", "x",
         "b64", "data", "inputs ", ""]


def _rand_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(12 if depth < 4 else 6)
    if kind == 0:
        return rng.choice(_STRINGS)
    if kind == 1:
        return rng.choice([0, -1, 1, 2**31 - 1, 2**31, -2**63, 2**64, 10**30, 16, 3])
    if kind == 2:
        return rng.choice([0.5, -0.0, 1e38, 1e39, 3.4e38, 1e-45, float("nan"), float("inf")])
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return {"b64": rng.choice(["", "AAEC", "!!", "A", "AAE=", "\ud800"])}
    if kind == 5:
        return [rng.choice(_STRINGS)] * rng.choice([0, 1, 2, 9])
    if kind in (6, 7, 8):
        return [_rand_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_KEYS): _rand_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _rand_body(rng: random.Random) -> bytes:
    choice = rng.randrange(10)
    if choice == 0:  # structure around valid-looking pieces
        doc = {rng.choice(["instances", "inputs"]): _rand_value(rng)}
        if rng.random() < 0.5:
            doc["signature_name"] = rng.choice(_STRINGS + ["generate", "numeric", "x" * 5000])
        return json.dumps(doc).encode("utf-8", "surrogatepass")
    if choice == 1:  # the LM signature with hostile values
        inst = {"prompt": rng.choice(_STRINGS), "max_tokens": _rand_value(rng),
                "temperature": rng.choice([0.0, 1.0, -1.0, 1e39, float("nan")]), "top_k": _rand_value(rng)}
        if rng.random() < 0.3:
            inst.pop(rng.choice(list(inst)))
        return json.dumps({"instances": [inst] * rng.randrange(1, 4)}).encode("utf-8", "surrogatepass")
    if choice == 2:  # raw special tokens
        return rng.choice([b'["\\ud800"]', b'{"instances": ["\xed\xa0\x80"]}', b'{"signature_name": "\xed\xa0\x80"}',
                           b'{"instances": [' + b"9" * 5000 + b"]}", b'{"instances": [1e400]}',
                           b'{"instances": ' + b"[" * 3000 + b"]" * 3000 + b"}",
                           b'{"instances": [' + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"]}",
                           b'{"instances": [Inf, -Inf, NaN]}', b"", b"\xff\xfe", b"[]", b"null", b'"x"'])
    if choice == 3:  # deep nesting anywhere in the document
        depth = rng.choice([100, 990, 2000, 50000])
        return b'{"instances": ["a"], "z": ' + b"[" * depth + b"]" * depth + b"}"
    # byte-level mutation of a good body
    good = bytearray(json.dumps(rng.choice([GOOD_LM, {"instances": ["ab"]},
                                            {"signature_name": "numeric", "inputs": [[1, 2, 3]]}])).encode())
    for _ in range(rng.randrange(1, 6)):
        op, pos = rng.randrange(3), rng.randrange(len(good))
        if op == 0:
            good[pos] = rng.randrange(256)
        elif op == 1:
            good.insert(pos, rng.choice(b'[]{}",:\\9eE-.\xed\xa0\x80'))
        elif len(good) > 1:
            del good[pos]
    return bytes(good)


def _rand_url(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.7:  # most cases reach the body parser and the tensor conversion
        return "POST", f"/v1/models/{rng.choice([LM, TAGGER, TAGGER])}:predict"
    model = rng.choice([LM, TAGGER, TAGGER, "nope", "%ED%A0%80", "x" * 300, ""])
    version = rng.choice(["", "", "/versions/1", "/versions/" + "9" * 5000, "/versions/99999999999999999999",
                          "/labels/stable", "/labels/%ED%A0%80", "/labels/" + "y" * 300])
    verb = rng.choice([":predict", ":predict", ":classify", ":regress", ":PREDICT", "/metadata", ""])
    prefix = rng.choice(["/v1/models/", "/V1/models/", "/v1/MODELS/", "/v1/models//", "/v2/models/"])
    method = rng.choice(["POST"] * 6 + ["GET", "GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
    return method, prefix + model + version + verb


def _rand_tensor(rng: random.Random) -> tensor_pb2.TensorProto:
    dtype = rng.choice([types_pb2.DT_STRING, types_pb2.DT_INT32, types_pb2.DT_FLOAT, types_pb2.DT_INT64,
                        types_pb2.DT_BOOL, types_pb2.DT_HALF, types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT, 999])
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for _ in range(rng.randrange(4)):
        proto.tensor_shape.dim.add(size=rng.choice([0, 1, 2, 3, 7, 10_000_000, 2**40, -1]))
    if rng.random() < 0.2:
        proto.tensor_shape.unknown_rank = True
    filler = rng.randrange(6)
    if filler == 0:
        proto.string_val.extend([rng.choice([b"ROMEO:", b"", b"\xed\xa0\x80", b"x" * 400])] * rng.randrange(4))
    elif filler == 1:
        proto.int_val.extend([rng.choice([0, 5, -1, 2**31 - 1])] * rng.randrange(4))
    elif filler == 2:
        proto.float_val.extend([rng.choice([0.0, 1.0, float("nan"), float("inf")])] * rng.randrange(4))
    elif filler == 3:
        proto.tensor_content = rng.randbytes(rng.choice([0, 3, 4, 12, 13]))
    elif filler == 4:
        proto.half_val.extend([1, 2])
    return proto


def _rand_predict(rng: random.Random) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    if rng.random() < 0.95:
        request.model_spec.name = rng.choice([LM, TAGGER, TAGGER, "nope", "\x00", "z" * 10_000])
        which = rng.randrange(4)
        if which == 1:
            request.model_spec.version.value = rng.choice([1, 2, -1, 2**62])
        elif which == 2:
            request.model_spec.version_label = rng.choice(["stable", "nope", "w" * 10_000])
        request.model_spec.signature_name = rng.choice(
            ["", "", "serving_default", "generate", "numeric", "binary", "score", "s" * 10_000, "\u00e9"])
    names = ["inputs", "prompt", "max_tokens", "temperature", "top_k", "x", "data", "k" * 3000]
    for name in rng.sample(names, rng.randrange(5)):
        request.inputs[name].CopyFrom(_rand_tensor(rng))
    if rng.random() < 0.2:
        request.output_filter.extend(rng.sample(["outputs", "y", "n", "nope", "outputs"], 2))
    return request


def _good_rest(server) -> None:
    r = requests.post(f"{server.url}/v1/models/{TAGGER}:predict", json={"instances": ["ok"]}, timeout=30)
    assert r.status_code == 200 and r.json() == {"predictions": ["v1:OK"]}, r.text
    assert _lm_generate(server, 3).status_code == 200


def test_fuzz_rest_never_answers_5xx(server):
    rng = random.Random(SEED)
    statuses: dict[int, int] = {}
    with requests.Session() as session:
        for i in range(400):
            method, path = _rand_url(rng)
            body = _rand_body(rng) if method in ("POST", "PUT") else None
            try:
                r = session.request(method, server.url + path, data=body, timeout=30,
                                    headers={"Content-Type": rng.choice(["application/json", "text/plain"])})
            except requests.ConnectionError:
                session.close()  # the server may close a connection after a 4xx; that is fine
                continue
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500 or r.status_code == 501, (i, method, path[:200], body[:300] if body else None,
                                                                   r.status_code, r.text[:500])
            if method != "HEAD" and r.status_code >= 400:
                message = r.json()["error"]
                assert len(message) <= 1200
    print("REST statuses", statuses)
    assert sum(statuses.values()) >= 380 and statuses.get(400, 0) > 100, statuses
    _good_rest(server)
    assert "Traceback" not in server.log_text()


def test_fuzz_grpc_structured_and_raw_never_internal(server):
    rng = random.Random(SEED)
    codes: dict[str, int] = {}
    bad = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.RESOURCE_EXHAUSTED}
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for i in range(300):
            request = _rand_predict(rng)
            try:
                stub.Predict(request, timeout=30)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
                assert code not in bad, (i, str(request)[:500], code, exc.details()[:300])
                assert len(exc.details()) <= 1200
            codes[code.name] = codes.get(code.name, 0) + 1
        good = predict_pb2.PredictRequest()
        good.model_spec.name = TAGGER
        good.inputs["inputs"].CopyFrom(tf.make_tensor_proto(["ok"]))
        seeds = [good.SerializeToString(), _rand_predict(rng).SerializeToString()]
        raw_methods = {
            "/tensorflow.serving.PredictionService/Predict": 0,
            "/tensorflow.serving.PredictionService/GetModelMetadata": 0,
            "/tensorflow.serving.ModelService/GetModelStatus": 0,
        }
        for i in range(150):
            method = rng.choice(list(raw_methods))
            if rng.random() < 0.4:
                payload = rng.randbytes(rng.randrange(1, 64))
            else:
                data = bytearray(rng.choice(seeds))
                for _ in range(rng.randrange(1, 4)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                payload = bytes(data)
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            try:
                call(payload, timeout=30)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
                assert code not in bad, (i, method, payload[:100], code, exc.details()[:300])
            raw_methods[method] += 1
            codes["raw-" + code.name] = codes.get("raw-" + code.name, 0) + 1
        print("gRPC codes", codes)
        assert codes.get("INVALID_ARGUMENT", 0) > 50 and codes.get("raw-INVALID_ARGUMENT", 0) > 20, codes
        reply = stub.Predict(good, timeout=30)
        assert list(reply.outputs["outputs"].string_val) == [b"v1:OK"]
    assert "Traceback" not in server.log_text()
    assert "Exception deserializing" not in server.log_text()
