"""TF Serving's SavedModel warm-up: replay ``assets.extra/tf_serving_warmup_requests``.

The file is a TFRecord of ``tensorflow.serving.PredictionLog`` protos (what TF Serving reads,
and what ``components/export/warmup.py`` writes). Each logged PredictRequest runs once against
the freshly loaded version before it is published, so the slow first calls (function
instantiation, Grappler, kernel caches) happen off the request path and a hot swap does not
stall traffic. As in TF Serving (saved_model_warmup.cc), at most 1000 records are read and a
failing warm-up request fails the load, so a broken version never takes traffic.
"""

from __future__ import annotations

import logging
import os

import tensorflow as tf

from .errors import ServingError
from .servable import DEFAULT_SIGNATURE, Servable

log = logging.getLogger(__name__)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000  # TF Serving's kMaxNumRecords


def warmup_path(version_dir: str) -> str:
    return os.path.join(version_dir, WARMUP_FILE)


def run_warmup(servable: Servable) -> int:
    """Replay the version's warm-up requests; returns how many ran (0 without a file)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = warmup_path(servable.path)
    if not os.path.isfile(path):
        return 0
    count = 0
    try:
        records = list(tf.data.TFRecordDataset(path).take(MAX_RECORDS + 1).as_numpy_iterator())
    except tf.errors.OpError as exc:
        raise ServingError("DATA_LOSS", f"Cannot read warm-up file {path}: {exc.message}") from None
    if len(records) > MAX_RECORDS:
        raise ServingError("INVALID_ARGUMENT",
                           f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
    for i, record in enumerate(records):
        entry = prediction_log_pb2.PredictionLog()
        try:
            entry.ParseFromString(record)
        except Exception:  # noqa: BLE001 - protobuf raises DecodeError or RuntimeWarning-ish errors
            raise ServingError("DATA_LOSS", f"Warm-up record {i} of {path} is not a PredictionLog") from None
        if entry.WhichOneof("log_type") != "predict_log":
            # This server serves Predict only; TF Serving would run classify/regress logs too.
            log.warning("Skipping warm-up record %d of %s: %s is not supported", i, path,
                        entry.WhichOneof("log_type"))
            continue
        request = entry.predict_log.request
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        try:
            sig = servable.signature(name)
            try:
                inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
            except Exception as exc:  # noqa: BLE001 - malformed TensorProtos raise many types
                raise ServingError("INVALID_ARGUMENT", f"bad input tensor: {exc}") from None
            servable.call(sig, inputs)
        except ServingError as exc:
            raise ServingError(exc.code, f"Warm-up request {i} ({name}) failed: {exc.message}") from None
        count += 1
    return count
