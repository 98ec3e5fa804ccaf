"""Serve the translator the pipeline exported, over REST and gRPC, as a TF Serving client would."""
from __future__ import annotations

import json

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.slow
NAME = "test_translate_tiny"


@pytest.fixture(scope="module")
def served(tiny_translator, module_server_factory):
    root, _, _ = tiny_translator
    server = module_server_factory([f"--model_name={NAME}", f"--model_base_path={root / 'exports' / NAME}",
                                    "--enable_batching"], model=NAME)
    expected = json.loads((root / "work" / NAME / "evaluate" / "examples.json").read_text())
    expected = {source: e["hypothesis"] for source, e in expected.items()}  # + reference, split
    # The pipeline's export carries TF Serving's warm-up file, replayed before the version served.
    assert (root / "exports" / NAME / "1" / "assets.extra" / "tf_serving_warmup_requests").is_file()
    assert f"Warmed up servable version {{name: {NAME} version: 1}} with 7 requests" in server.log_text()
    return server, expected


def test_rest_row_and_columnar_give_the_evaluated_translations(served):
    server, expected = served
    sources, translations = list(expected), list(expected.values())
    row = requests.post(f"{server.url}/v1/models/{NAME}:predict", json={"instances": sources}, timeout=60)
    assert row.status_code == 200, row.text
    assert row.json() == {"predictions": translations}
    col = requests.post(f"{server.url}/v1/models/{NAME}/versions/1:predict",
                        json={"signature_name": "translate", "inputs": {"inputs": sources}}, timeout=60)
    assert col.json() == {"outputs": translations}


def test_grpc_stub_gets_the_same_translations_as_rest(served):
    server, expected = served
    sources = list(expected)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = NAME
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(sources))
    with grpc.insecure_channel(server.grpc_target) as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    grpc_out = [t.decode("utf-8") for t in tf.make_ndarray(reply.outputs["outputs"]).tolist()]
    rest = requests.post(f"{server.url}/v1/models/{NAME}:predict", json={"instances": sources}, timeout=60)
    assert grpc_out == rest.json()["predictions"] == list(expected.values())


def test_urdu_round_trips_through_the_served_tokenizer_signatures(served):
    import os

    server, _ = served
    path = os.path.join(os.environ["PIPELINE_DATA_DIR"], "tatoeba", "urd-eng", "urd.txt")
    with open(path, encoding="utf-8") as f:
        urdu = [line.split("\t")[1] for line in f.read().splitlines()[:300]]
    ids = requests.post(f"{server.url}/v1/models/{NAME}:predict",
                        json={"signature_name": "tokenize_target", "inputs": {"inputs": urdu}}, timeout=60).json()
    known = [i for i, row in enumerate(ids["outputs"]) if 1 not in row]  # 1 = <unk>
    back = requests.post(f"{server.url}/v1/models/{NAME}:predict",
                         json={"signature_name": "detokenize_target",
                               "inputs": {"ids": [ids["outputs"][i] for i in known]}}, timeout=60).json()
    assert len(known) >= 20
    assert back["outputs"] == [urdu[i] for i in known]


def test_metadata_describes_the_string_signature(served):
    server, _ = served
    meta = requests.get(f"{server.url}/v1/models/{NAME}/metadata", timeout=30).json()
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["inputs"]["dtype"] == "DT_STRING"
    assert sig["outputs"]["outputs"]["dtype"] == "DT_STRING"
