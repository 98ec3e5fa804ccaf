"""Batching (from a TF Serving batching_parameters_file) with several models from a model_config_file."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.slow

BATCH_TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def server(module_server_factory, model_base_path, tmp_path_factory):
    cfg_dir = tmp_path_factory.mktemp("cfg")
    models = cfg_dir / "models.config"
    models.write_text(f"""
model_config_list {{
  config {{ name: "tagger" base_path: "{model_base_path}" model_platform: "tensorflow" }}
  config {{ name: "tagger_copy" base_path: "{model_base_path}" }}
}}
""")
    batching = cfg_dir / "batching.config"
    batching.write_text(f"""
max_batch_size {{ value: 64 }}
batch_timeout_micros {{ value: {int(BATCH_TIMEOUT_S * 1e6)} }}
num_batch_threads {{ value: 1 }}
""")
    server = module_server_factory([f"--model_config_file={models}", "--enable_batching",
                                    f"--batching_parameters_file={batching}"])
    server.wait_available("tagger_copy")
    return server


def _metric(text: str, name: str, model: str) -> float:
    pattern = re.compile(rf'^{re.escape(name)}{{([^}}]*)}} (\S+)$', re.M)
    return sum(float(v) for labels, v in pattern.findall(text)
               if f'model="{model}"' in labels and ('code=' not in labels or 'code="OK"' in labels))


def test_concurrent_requests_are_merged_and_split_back(server):
    def rest(i):
        rows = [f"r{i}", f"s{i}"] if i % 2 else [f"r{i}"]
        r = requests.post(f"{server.url}/v1/models/tagger:predict", json={"instances": rows}, timeout=60)
        return r.status_code, r.json(), [f"v1:{x.upper()}" for x in rows]

    def grpc_call(i):
        with grpc.insecure_channel(server.grpc_target) as ch:
            req = predict_pb2.PredictRequest()
            req.model_spec.name = "tagger"
            req.inputs["inputs"].CopyFrom(tf.make_tensor_proto([f"g{i}"]))
            resp = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(req, timeout=60)
            got = [v.decode() for v in tf.make_ndarray(resp.outputs["outputs"])]
            return 200, {"predictions": got}, [f"v1:G{i}"]

    before = requests.get(f"{server.url}/monitoring/prometheus/metrics", timeout=10).text
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: grpc_call(i) if i >= 14 else rest(i), range(16)))
    for code, body, expected in results:
        assert code == 200 and body == {"predictions": expected}

    text = requests.get(f"{server.url}/monitoring/prometheus/metrics", timeout=10).text
    calls = _metric(text, "model_calls_total", "tagger") - _metric(before, "model_calls_total", "tagger")
    reqs = _metric(text, "requests_total", "tagger") - _metric(before, "requests_total", "tagger")
    assert reqs == 16
    assert 1 <= calls < reqs
    assert _metric(text, "batched_requests_total", "tagger") >= 2
    assert "Batched call model=tagger" in server.log_text()


def test_other_model_from_config_file_is_served(server):
    r = requests.post(f"{server.url}/v1/models/tagger_copy:predict", json={"inputs": ["z"]}, timeout=30)
    assert r.json() == {"outputs": ["v1:Z"]}
    r = requests.post(f"{server.url}/v1/models/tagger_copy:predict",
                      json={"signature_name": "numeric", "instances": [[1, 2, 3]]}, timeout=30)
    assert r.json() == {"predictions": [{"n": 7, "y": [2.1, 4.1, 6.1]}]}


def test_status_answers_while_a_predict_is_pending(server):
    """Batch waits and model calls happen off the event loop, so status is not held up."""
    done = threading.Event()

    def pending_predict():
        requests.post(f"{server.url}/v1/models/tagger:predict", json={"instances": ["w"]}, timeout=30)
        done.set()

    t = threading.Thread(target=pending_predict)
    t.start()
    time.sleep(0.1)  # the predict now sits in the batch queue for up to BATCH_TIMEOUT_S
    r = requests.get(f"{server.url}/v1/models/tagger", timeout=10)
    answered_first = not done.is_set()
    t.join(30)
    assert r.status_code == 200 and done.is_set()
    assert answered_first
