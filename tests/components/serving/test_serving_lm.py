"""Serve the language model the pipeline exported: generate and score over REST and gRPC, batched."""
from __future__ import annotations

import concurrent.futures
import re

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.slow
NAME = "test_lm_tiny"


@pytest.fixture(scope="module")
def served(tiny_lm, module_server_factory):
    root, *_ = tiny_lm
    return module_server_factory([f"--model_name={NAME}", f"--model_base_path={root / 'exports' / NAME}",
                                  "--enable_batching", "--batch_timeout_micros=20000"], model=NAME)


def _predict(server, body):
    r = requests.post(f"{server.url}/v1/models/{NAME}:predict", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_generate_row_and_columnar_agree_greedy(served):
    rows = _predict(served, {"instances": [
        {"prompt": "ROMEO:", "max_tokens": 8, "temperature": 0.0, "top_k": 0},
        {"prompt": "First", "max_tokens": 4, "temperature": 0.0, "top_k": 0}]})["predictions"]
    cols = _predict(served, {"inputs": {"prompt": ["ROMEO:", "First"], "max_tokens": [8, 4],
                                        "temperature": [0.0, 0.0], "top_k": [0, 0]}})["outputs"]
    assert rows == cols
    assert rows[0].startswith("ROMEO:") and rows[1].startswith("First")
    assert len(rows[0]) > len("ROMEO:")


def test_score_over_rest_and_grpc_agree(served):
    texts = ["First Citizen:", "Before we proceed any further, hear me speak."]
    rest = _predict(served, {"signature_name": "score", "inputs": {"inputs": texts}})["outputs"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = NAME
    request.model_spec.signature_name = "score"
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(texts))
    with grpc.insecure_channel(served.grpc_target) as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    grpc_ppl = tf.make_ndarray(reply.outputs["perplexity"]).tolist()
    np.testing.assert_allclose(grpc_ppl, rest["perplexity"], rtol=1e-5)
    np.testing.assert_allclose(np.exp(-np.array(rest["log_likelihood"]) / np.array(rest["tokens"])),
                               rest["perplexity"], rtol=1e-4)


def test_concurrent_generate_requests_are_batched(served):
    def one(i):
        return _predict(served, {"instances": [{"prompt": "ROMEO:", "max_tokens": 5, "temperature": 0.0,
                                                "top_k": 0}]})["predictions"][0]

    before = requests.get(f"{served.url}/monitoring/prometheus/metrics", timeout=30).text
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        outputs = list(pool.map(one, range(12)))
    assert len(set(outputs)) == 1  # greedy: the same answer, whichever batch it rode in
    after = requests.get(f"{served.url}/monitoring/prometheus/metrics", timeout=30).text

    def total(text, metric):
        return sum(float(v) for v in re.findall(rf'^{metric}\{{[^}}]*model="{NAME}"[^}}]*\}} (\S+)', text, re.M))

    calls = total(after, "model_calls_total") - total(before, "model_calls_total")
    assert 1 <= calls < 12
