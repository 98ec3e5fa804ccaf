"""REST and gRPC API of one running server: formats, status codes, limits."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

pytestmark = pytest.mark.slow

MODEL_NAME = "tagger"  # the name the tests serve conftest's model_base_path under
MAX_BODY = 4096


@pytest.fixture(scope="module")
def server(module_server_factory, model_base_path):
    return module_server_factory([
        f"--model_name={MODEL_NAME}", f"--model_base_path={model_base_path}",
        "--max_instances=8", "--max_input_chars=64", f"--max_body_bytes={MAX_BODY}",
    ])


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        yield ch


def post(server, body, path=f"/v1/models/{MODEL_NAME}:predict"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.url + path, data=data, timeout=30)


# ---------------------------------------------------------------- REST

def test_status_json_is_tf_servings(server):
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    r = requests.get(f"{server.url}/v1/models/{MODEL_NAME}", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == expected
    assert requests.get(f"{server.url}/v1/models/{MODEL_NAME}/versions/1", timeout=10).json() == expected


def test_metadata_lists_signature_defs(server):
    r = requests.get(f"{server.url}/v1/models/{MODEL_NAME}/metadata", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["model_spec"] == {"name": MODEL_NAME, "signature_name": "", "version": "1"}
    sigs = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "generate", "numeric", "binary"} <= set(sigs)
    gen = sigs["generate"]
    assert gen["method_name"] == "tensorflow/serving/predict"
    assert gen["inputs"]["max_tokens"]["dtype"] == "DT_INT32"
    assert gen["inputs"]["prompt"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert requests.get(f"{server.url}/v1/models/{MODEL_NAME}/versions/1/metadata", timeout=10).json() == body


def test_predict_row_and_columnar(server):
    r = post(server, {"instances": ["ab", "c"]})
    assert r.status_code == 200 and r.json() == {"predictions": ["v1:AB", "v1:C"]}
    r = post(server, {"inputs": ["ab", "c"]})
    assert r.json() == {"outputs": ["v1:AB", "v1:C"]}
    r = post(server, {"signature_name": "generate",
                      "instances": [{"prompt": "hi", "max_tokens": 3}, {"prompt": "yo", "max_tokens": 5}]})
    assert r.json() == {"predictions": ["v1:hi|3", "v1:yo|5"]}
    r = post(server, {"signature_name": "generate", "inputs": {"prompt": ["hi"], "max_tokens": [3]}})
    assert r.json() == {"outputs": ["v1:hi|3"]}


def test_predict_multiple_outputs_and_numbers(server):
    r = post(server, {"signature_name": "numeric", "instances": [[1, 2, 3], [0.5, 0.25, 0]]})
    assert r.json() == {"predictions": [{"n": 7, "y": [2.1, 4.1, 6.1]}, {"n": 1, "y": [1.1, 0.6, 0.1]}]}
    r = post(server, {"signature_name": "numeric", "inputs": {"x": [[1, 2, 3]]}})
    assert r.json() == {"outputs": {"n": [7], "y": [[2.1, 4.1, 6.1]]}}


def test_binary_values_round_trip_as_b64(server):
    r = post(server, {"signature_name": "binary", "instances": [{"b64": "AP8="}, "hé"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [{"data_bytes": {"b64": "AP8="}, "length": 2},
                                        {"data_bytes": {"b64": "aMOp"}, "length": 3}]}


def test_predict_specific_version(server):
    r = post(server, {"instances": ["a"]}, f"/v1/models/{MODEL_NAME}/versions/1:predict")
    assert r.json() == {"predictions": ["v1:A"]}


@pytest.mark.parametrize("method, path, body, code, needle", [
    ("POST", ":predict", "{not json", 400, "JSON Parse error"),
    ("POST", ":predict", "", 400, "document is empty"),
    ("POST", ":predict", {"signature_name": "generate"}, 400, "Missing 'inputs' or 'instances' key"),
    ("POST", ":predict", {"instances": ["a"], "inputs": ["a"]}, 400, "only one of"),
    ("POST", "/versions/9:predict", {"instances": ["a"]}, 404, "Specific(tagger, 9)"),
    ("POST", "/labels/nope:predict", {"instances": ["a"]}, 400, "Unrecognized servable version label"),
    # TF Serving's REST API answers 400 (INVALID_ARGUMENT) for an unknown signature, not 404.
    ("POST", ":predict", {"signature_name": "nope", "instances": ["a"]}, 400, '"nope" not found'),
    ("POST", ":predict", {"signature_name": "generate", "instances": [{"prompt": "a", "max_token": 1}]},
     400, "max_token"),
    ("POST", ":predict", {"signature_name": "generate", "inputs": {"prompt": ["a"], "max_tokens": ["x"]}},
     400, "max_tokens"),
    ("POST", ":predict", {"signature_name": "numeric", "instances": [[1, 2, 3], [1, 2]]}, 400, "x"),
    ("POST", ":predict", {"instances": [["a", "b"]]}, 400, "input 'inputs'"),
    ("POST", ":predict", {"instances": ["a"] * 9}, 400, "--max_instances"),
    ("POST", ":predict", {"instances": ["a" * 65]}, 400, "--max_input_chars"),
    ("POST", ":predict", {"instances": [{"b64": "***"}]}, 400, "base64"),
    ("POST", ":predict", {"instances": ["a" * 60] * 80}, 413, "--max_body_bytes"),
    ("POST", ":classify", {"examples": [{}]}, 501, "predict"),
    ("GET", "/versions/9", None, 404, "Could not find version 9"),
    ("GET", "/nope/x", None, 400, "Malformed request"),
])
def test_malformed_requests_get_tf_serving_codes(server, method, path, body, code, needle):
    url = f"{server.url}/v1/models/{MODEL_NAME}{path}"
    data = body if isinstance(body, (str, type(None))) else json.dumps(body)
    r = requests.request(method, url, data=data, timeout=30)
    assert r.status_code == code, r.text
    assert needle in r.json()["error"]
    # ... and the server keeps answering.
    assert post(server, {"instances": ["ok"]}).json() == {"predictions": ["v1:OK"]}


def test_unknown_model_is_404(server):
    r = post(server, {"instances": ["a"]}, "/v1/models/nope:predict")
    assert r.status_code == 404 and r.json() == {"error": "Servable not found for request: Latest(nope)"}
    r = requests.get(f"{server.url}/v1/models/nope", timeout=10)
    assert r.status_code == 404 and r.json() == {"error": "Could not find any versions of model nope"}


def test_prometheus_metrics(server):
    post(server, {"instances": ["a"]})
    r = requests.get(f"{server.url}/monitoring/prometheus/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert f'model_calls_total{{model="{MODEL_NAME}",signature="serving_default",version="1"}}' in r.text
    assert f':tensorflow:serving:request_count{{model_name="{MODEL_NAME}",status="OK"}}' in r.text


# ---------------------------------------------------------------- gRPC

def _predict_request(signature="", version=None, **inputs):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = MODEL_NAME
    req.model_spec.signature_name = signature
    if version is not None:
        req.model_spec.version.value = version
    for name, value in inputs.items():
        req.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return req


def test_grpc_predict_matches_rest(server, channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    resp = stub.Predict(_predict_request(inputs=["ab", "c"]), timeout=30)
    assert tf.make_ndarray(resp.outputs["outputs"]).tolist() == [b"v1:AB", b"v1:C"]
    assert (resp.model_spec.name, resp.model_spec.version.value, resp.model_spec.signature_name) == (
        MODEL_NAME, 1, "serving_default")
    resp = stub.Predict(_predict_request("generate", prompt=["hi"], max_tokens=np.array([3], np.int32)), timeout=30)
    rest = post(server, {"signature_name": "generate", "inputs": {"prompt": ["hi"], "max_tokens": [3]}}).json()
    assert [v.decode() for v in tf.make_ndarray(resp.outputs["outputs"])] == rest["outputs"]
    resp = stub.Predict(_predict_request("numeric", x=np.array([[1, 2, 3]], np.float32)), timeout=30)
    assert list(resp.outputs["y"].float_val) == pytest.approx([2.1, 4.1, 6.1])  # typed fields, like TF Serving
    assert list(resp.outputs["n"].int64_val) == [7]


@pytest.mark.parametrize("req, code", [
    (predict_pb2.PredictRequest(), grpc.StatusCode.INVALID_ARGUMENT),  # no model_spec
    (_predict_request(version=9, inputs=["a"]), grpc.StatusCode.NOT_FOUND),
    (_predict_request("numeric", x=np.zeros([1, 3], np.int32)), grpc.StatusCode.INVALID_ARGUMENT),
    (_predict_request("generate", prompt=["a"]), grpc.StatusCode.INVALID_ARGUMENT),
    (_predict_request(inputs=["a"] * 9), grpc.StatusCode.INVALID_ARGUMENT),
    # TF Serving's gRPC Predict reports an unknown signature as FAILED_PRECONDITION.
    (_predict_request("nope", inputs=["a"]), grpc.StatusCode.FAILED_PRECONDITION),
])
def test_grpc_errors(channel, req, code):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(req, timeout=30)
    assert info.value.code() == code


def test_grpc_metadata_and_status(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = MODEL_NAME
    resp = stub.GetModelMetadata(req, timeout=30)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    assert resp.metadata["signature_def"].Unpack(sigs)
    assert sigs.signature_def["generate"].inputs["max_tokens"].dtype == tf.int32.as_datatype_enum
    assert resp.model_spec.version.value == 1

    models = model_service_pb2_grpc.ModelServiceStub(channel)
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = MODEL_NAME
    status = models.GetModelStatus(req, timeout=30).model_version_status
    assert [(s.version, s.state) for s in status] == [(1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
    req.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as info:
        models.GetModelStatus(req, timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
