"""How request values and shapes are quoted in error messages, in TF Serving's words.

Shared by the JSON and TensorProto codecs and the limit checks, so every front end names types
(``float``, not ``float32``) and shapes (``[2,3]``) the way TF Serving's messages do, and never
echoes megabytes of a hostile request back to the client.
"""

from __future__ import annotations

import json
from typing import Any

import tensorflow as tf

MAX_ECHO = 200  # error messages quote request values; never echo megabytes back

# TensorFlow's DataTypeString() names, used in TF Serving's messages.
_TF_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}


def type_name(dtype: tf.DType) -> str:
    return _TF_TYPE_NAMES.get(dtype.name, dtype.name)


def echo(val: Any) -> str:
    # Only the start of a value is quoted, so only a bounded prefix of a big list is serialised.
    if isinstance(val, list) and len(val) > MAX_ECHO:
        val = val[:MAX_ECHO]
    try:
        text = json.dumps(val, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
    except RecursionError:
        text = "<value nested too deeply>"
    except (TypeError, ValueError):
        text = "<value>"
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "..."


def shape_str(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
