"""Write TF Serving's warm-up file: ``<version>/assets.extra/tf_serving_warmup_requests``.

A TFRecord of ``tensorflow.serving.PredictionLog`` protos, each holding one PredictRequest.
TF Serving (and our server, components/serving/warmup.py) replays them right after loading a
version and before it takes traffic, so the slow first calls of a fresh SavedModel (function
instantiation, graph optimisation) do not stall clients during a hot swap.
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"

# (signature name, {input name: value that tf.make_tensor_proto accepts})
WarmupRequest = tuple[str, dict]


def write_warmup_requests(version_dir: Path, requests: list[WarmupRequest]) -> Path:
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = Path(version_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, inputs in requests:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def lm_warmup_requests(prompt: str = "the") -> list[WarmupRequest]:
    """Short calls of every LM signature (greedy and top-k sampling both run through the graph)."""
    def gen(temperature: float, top_k: int) -> dict:
        return {"prompt": tf.constant([prompt, ""]), "max_tokens": tf.constant([2, 1], tf.int32),
                "temperature": tf.constant([temperature] * 2, tf.float32), "top_k": tf.constant([top_k] * 2, tf.int32)}

    return [
        ("serving_default", gen(0.0, 0)),
        ("generate", gen(1.0, 5)),
        ("generate_seeded", {**gen(1.0, 0), "seed": tf.constant([1, 2], tf.int32)}),
        ("score", {"inputs": tf.constant([prompt, ""])}),
    ]


def translator_warmup_requests(sentence: str = "hello .") -> list[WarmupRequest]:
    strings = {"inputs": tf.constant([sentence, ""])}
    return [(name, strings) for name in ("serving_default", "translate", "translate_greedy", "translate_beams",
                                         "tokenize_source", "tokenize_target")] + [
        ("detokenize_target", {"ids": tf.constant([[1, 2], [0, 0]], tf.int32)})]
