"""Small signatures and limits shared by the serving unit tests (no SavedModel needed)."""

from __future__ import annotations

import tensorflow as tf

from components.serving.config import Limits
from components.serving.servable import SignatureInfo

LIMITS = Limits(max_body_bytes=10_000, max_instances=4, max_input_chars=8)


def _sig(name="sig", **inputs) -> SignatureInfo:
    specs = {k: tf.TensorSpec(shape, dtype, name=k) for k, (shape, dtype) in inputs.items()}
    out = {"outputs": tf.TensorSpec([None], tf.string)}
    return SignatureInfo(name, None, specs, out, batchable=True)


GEN = _sig("generate", prompt=([None], tf.string), max_tokens=([None], tf.int32))
ONE = _sig("serving_default", inputs=([None], tf.string))
NUM = _sig("numeric", x=([None, 3], tf.float32))
