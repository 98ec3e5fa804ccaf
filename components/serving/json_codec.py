"""JSON <-> numpy with TF Serving's REST rules.

The rules follow ``tensorflow_serving/util/json_tensor.cc``: row format (``instances``) vs
columnar format (``inputs``), ``{"b64": ...}`` for binary strings, the response shapes
(``predictions``/``outputs``, single output collapsed), float formatting and the wording of its
error messages, so that clients see the same answers as from TF Serving. Error messages
additionally name the offending input, which TF Serving does not always do.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sys
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from .config import Limits
from .errors import ServingError, invalid
from .limits import MAX_RANK, check_elements
from .messages import echo, shape_str, type_name
from .servable import SignatureInfo

ROW = "row"  # request used "instances" -> response uses "predictions"
COLUMNAR = "columnar"  # request used "inputs" -> response uses "outputs"

_B64 = "b64"
_BYTES_SUFFIX = "_bytes"


def _json_type(val: Any) -> str:
    if val is None:
        return "Null"
    if val is True:
        return "True"
    if val is False:
        return "False"
    if isinstance(val, dict):
        return "Object"
    if isinstance(val, list):
        return "Array"
    if isinstance(val, str):
        return "String"
    return "Number"


class _ElementError(Exception):
    """Raised inside the converters; wrapped with the element/input it belongs to."""


# ---------------------------------------------------------------- request parsing

class _JSONRejected(Exception):
    """Raised from json's number hooks; json.loads lets it through unchanged."""


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: RapidJSON (TF Serving) rejects it, Python would give inf
        raise _JSONRejected(f"Number too big to be stored in double: {text[:40]}")
    return value


def _parse_int(text: str) -> int | float:
    # RapidJSON reads integers beyond 64 bits as doubles and rejects those beyond DBL_MAX.
    # Checking the length first also keeps Python's 4,300-digit int() limit (a ValueError
    # that json.loads would raise as a 500) out of reach.
    digits = len(text) - (text[0] == "-")
    if digits <= 18:
        return int(text)
    if digits > 309 or abs(int(text)) > sys.float_info.max:
        raise _JSONRejected(f"Number too big to be stored in double: {text[:40]}...")
    return int(text)


# A \uD800-\uDFFF escape; json.loads turns a lone one into an unencodable str. The regex is a
# cheap filter; a hit is confirmed by encoding the parsed document (pairs decode fine).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# RapidJSON with kParseNanAndInfFlag (TF Serving) also takes bare Inf/-Inf, Python only
# Infinity: rewrite Inf tokens outside strings (the first alternative skips whole strings).
# The string branch is possessive and also matches an unterminated string up to the end, so
# the scan never restarts inside a string (linear time even on adversarial bodies).
_INF_TOKEN = re.compile(r'"(?:[^"\\]|\\[\s\S])*+(?:"|\\?\Z)|\bInf\b')


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=_parse_float, parse_int=_parse_int)


def parse_json_body(body: bytes) -> dict:
    if not body or not body.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        # Strict UTF-8 (json.loads(bytes) would let encoded surrogates such as ED A0 80 through).
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from None
    try:
        try:
            # Python's json accepts NaN/Infinity, as TF Serving's kParseNanAndInfFlag does.
            doc = _loads(text)
        except json.JSONDecodeError:
            if "Inf" not in text:
                raise
            fixed = _INF_TOKEN.sub(lambda m: m.group(0) if m.group(0)[0] == '"' else "Infinity", text)
            if fixed == text:
                raise
            doc = _loads(fixed)
        if _SURROGATE_ESCAPE.search(body):
            try:
                json.dumps(doc, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise invalid("JSON Parse error: The surrogate pair in string is invalid.") from None
    except RecursionError:
        raise invalid("JSON Parse error: document nested too deeply") from None
    except _JSONRejected as exc:
        raise invalid(f"JSON Parse error: {exc}") from None
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {echo(doc)} Is not object")
    return doc


def signature_name_of(doc: dict) -> str:
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if not isinstance(name, str):
        raise invalid(f"JSON Value: {echo(doc)} not formatted correctly. "
                      "'signature_name' key must be a string value.")
    return name


def _is_b64_object(val: Any) -> bool:
    return isinstance(val, dict) and len(val) == 1 and isinstance(val.get(_B64), str)


def _decode_b64(val: Any) -> bytes:
    if not _is_b64_object(val):
        raise _ElementError(f"JSON Value: {echo(val)} not formatted correctly for base64 data")
    text = val[_B64]
    try:
        # absl::Base64Unescape tolerates missing padding; so do we.
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _ElementError("Unable to base64 decode") from None


def _type_error(val: Any, dtype: tf.DType) -> _ElementError:
    return _ElementError(
        f"JSON Value: {echo(val)} Type: {_json_type(val)} is not of expected type: {type_name(dtype)}")


def _int_converter(dtype: tf.DType, lo: int, hi: int) -> Callable[[Any], int]:
    def convert(val: Any) -> int:
        if isinstance(val, bool) or not isinstance(val, int) or not lo <= val <= hi:
            raise _type_error(val, dtype)
        return val
    return convert


def _float_converter(dtype: tf.DType, mantissa_bits: int, max_value: float) -> Callable[[Any], float]:
    max_int = (1 << mantissa_bits) - 1

    def convert(val: Any) -> float:
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            raise _type_error(val, dtype)
        lossless = (abs(val) <= max_int) if isinstance(val, int) else (
            not math.isfinite(val) or -max_value <= val <= max_value)
        if not lossless:
            raise _ElementError(f"Cannot convert JSON value: {echo(val)} to {type_name(dtype)} "
                                "without loss of precision.")
        return float(val)
    return convert


def _converter(dtype: tf.DType, limits: Limits) -> Callable[[Any], Any]:
    if dtype == tf.string:
        limit = limits.max_input_chars

        def convert(val: Any) -> bytes:
            if isinstance(val, str):
                if len(val) > limit:
                    raise _ElementError(f"string of {len(val)} characters exceeds the limit of "
                                        f"{limit} (--max_input_chars)")
                try:
                    return val.encode("utf-8")
                except UnicodeEncodeError:  # pragma: no cover - parse_json_body rejects these first
                    raise _ElementError("string is not valid UTF-8 (lone surrogate)") from None
            if isinstance(val, dict):
                data = _decode_b64(val)
                if len(data) > limit:
                    raise _ElementError(f"binary value of {len(data)} bytes exceeds the limit of "
                                        f"{limit} (--max_input_chars)")
                return data
            raise _type_error(val, dtype)
        return convert
    if dtype == tf.bool:
        def convert_bool(val: Any) -> bool:
            if not isinstance(val, bool):
                raise _type_error(val, dtype)
            return val
        return convert_bool
    if dtype in (tf.float32, tf.float16, tf.bfloat16):
        return _float_converter(dtype, 24, float(np.finfo(np.float32).max))
    if dtype == tf.float64:
        return _float_converter(dtype, 53, float(np.finfo(np.float64).max))
    if dtype in (tf.int8, tf.int16, tf.int32, tf.uint8, tf.int64, tf.uint16, tf.uint32, tf.uint64):
        # TF Serving reads int8/16/32 and uint8 as JSON int32 values; keep each type's own range
        # so an out-of-range value is an error instead of a silent wrap-around.
        info = np.iinfo(dtype.as_numpy_dtype)
        return _int_converter(dtype, int(info.min), int(info.max))

    def unsupported(val: Any) -> Any:
        raise ServingError("UNIMPLEMENTED",
                           f"Conversion of JSON Value: {echo(val)} to type: {type_name(dtype)}")
    return unsupported


def _dense_shape(val: Any) -> list[int]:
    """Shape implied by following the first element at each level (as TF Serving does)."""
    shape = []
    while isinstance(val, list):
        shape.append(len(val))
        if len(shape) > MAX_RANK:
            raise invalid(f"input is nested more than {MAX_RANK} lists deep")
        if not val:
            break
        val = val[0]
    return shape


def _fill(val: Any, level: int, shape: list[int], convert: Callable[[Any], Any], out: list) -> None:
    if not isinstance(val, list):
        if level != len(shape):
            raise _ElementError(f"JSON Value: {echo(val)} found at incorrect level: {level + 1} "
                                f"in the JSON DOM. Expected at level: {len(shape)}")
        out.append(convert(val))
        return
    if level >= len(shape):
        raise _ElementError(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(val) != shape[level]:
        raise _ElementError(f"Encountered list at unexpected size: {len(val)} at level: {level} "
                            f"expected size: {shape[level]}")
    for item in val:
        _fill(item, level + 1, shape, convert, out)


def _to_array(flat: list, shape: list[int], dtype: tf.DType) -> np.ndarray:
    if dtype == tf.string:
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return arr.reshape(shape)
    return np.asarray(flat, dtype=dtype.as_numpy_dtype).reshape(shape)


def _row_tensors(doc: dict, sig: SignatureInfo, limits: Limits) -> dict[str, np.ndarray]:
    instances = doc["instances"]
    if not isinstance(instances, list):
        raise invalid(f"JSON Value: {echo(doc)} Excepting 'instances' to be an list/array")
    if not instances:
        raise invalid(f"JSON Value: {echo(doc)} No values in 'instances' array")
    if len(instances) > limits.max_instances:
        raise invalid(f"'instances' has {len(instances)} elements, more than the limit of "
                      f"{limits.max_instances} (--max_instances)")
    names = sorted(sig.inputs)
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise invalid("instances is a plain list, but expecting list of objects as multiple input tensors "
                      f"required as per tensorinfo_map (inputs: {','.join(names)})")

    def is_element_object(v: Any) -> bool:
        return isinstance(v, dict) and not _is_b64_object(v)

    objects = is_element_object(instances[0])
    converters = {n: _converter(sig.inputs[n].dtype, limits) for n in names}
    flats: dict[str, list] = {n: [] for n in names}
    shapes: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}

    def add_item(i: int, name: str, value: Any) -> None:
        shape = _dense_shape(value)
        check_elements(name, [len(instances)] + shape, limits)
        out: list = []
        try:
            _fill(value, 0, shape, converters[name], out)
            if name not in shapes:
                shapes[name], sizes[name] = shape, len(out)
            elif sizes[name] != len(out):
                raise _ElementError(f"Expecting tensor size: {sizes[name]} but got: {len(out)}")
            elif shapes[name] != shape:
                raise _ElementError(f"Expecting shape {shape_str(shapes[name])} but got: {shape_str(shape)}")
        except _ElementError as exc:
            raise invalid(f"Failed to process element: {i} key: {name} of 'instances' list. "
                          f"Error: INVALID_ARGUMENT: {exc}") from None
        flats[name].extend(out)

    for i, elem in enumerate(instances):
        if objects:
            if not is_element_object(elem):
                raise invalid(f"Expecting object but got list at item {i} of input list")
            for key, value in elem.items():
                if key not in sig.inputs:
                    raise invalid(f"Failed to process element: {i} key: {key} of 'instances' list. "
                                  f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {key}")
                add_item(i, key, value)
            if set(elem) != set(names):
                missing = ",".join(sorted(set(names) - set(elem)))
                raise invalid(f"Failed to process element: {i} of 'instances' list. JSON object: "
                              f"{echo(elem)} keys must be equal to: {','.join(names)} (missing: {missing})")
        else:
            if is_element_object(elem):
                raise invalid(f"Expecting value/list but got object at item {i} of input list")
            add_item(i, names[0], elem)

    n = len(instances)
    return {name: _to_array(flats[name], [n] + shapes[name], sig.inputs[name].dtype) for name in names}


def _column_tensor(name: str, value: Any, dtype: tf.DType, limits: Limits) -> np.ndarray:
    shape = _dense_shape(value)
    if shape and shape[0] > limits.max_instances:
        raise invalid(f"input '{name}' has {shape[0]} rows, more than the limit of "
                      f"{limits.max_instances} (--max_instances)")
    check_elements(name, shape, limits)
    out: list = []
    try:
        _fill(value, 0, shape, _converter(dtype, limits), out)
    except _ElementError as exc:
        raise invalid(f"Failed to process input: {name} of 'inputs'. Error: INVALID_ARGUMENT: {exc}") from None
    return _to_array(out, shape, dtype)


def _columnar_tensors(doc: dict, sig: SignatureInfo, limits: Limits) -> dict[str, np.ndarray]:
    val = doc["inputs"]
    names = sorted(sig.inputs)
    if not isinstance(val, dict) or _is_b64_object(val):
        if len(names) > 1:
            raise invalid("inputs is a plain value/list, but expecting an object as multiple input tensors "
                          f"required as per tensorinfo_map (inputs: {','.join(names)})")
        return {names[0]: _column_tensor(names[0], val, sig.inputs[names[0]].dtype, limits)}
    for name in names:
        if name not in val:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
    extra = sorted(set(val) - set(names))
    if extra:
        # TF Serving silently ignores these; rejecting them catches misspelt input names.
        raise invalid(f"Unexpected named input: {','.join(extra)} in 'inputs' object. "
                      f"Expected inputs: {','.join(names)}")
    return {name: _column_tensor(name, val[name], sig.inputs[name].dtype, limits) for name in names}


def json_request_tensors(doc: dict, sig: SignatureInfo, limits: Limits) -> tuple[str, dict[str, np.ndarray]]:
    """Tensors from a parsed predict body; returns (ROW|COLUMNAR, {input name: array})."""
    if not sig.inputs:
        raise invalid(f"Failed to get input map for signature: {sig.name or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(f"JSON Value: {echo(doc)} Not formatted correctly expecting only one of "
                      "'inputs' or 'instances' keys to exist ")
    try:
        if has_instances:
            return ROW, _row_tensors(doc, sig, limits)
        if has_inputs:
            return COLUMNAR, _columnar_tensors(doc, sig, limits)
    except RecursionError:
        raise invalid("input nested too deeply") from None
    raise invalid("Missing 'inputs' or 'instances' key")


# ---------------------------------------------------------------- response formatting

def _float32_values(arr: np.ndarray) -> np.ndarray:
    """Values TF Serving prints for float tensors: "%g" unless that loses bits, then "%.9g".

    Python would print float32(0.1) as 0.10000000149011612; TF Serving prints 0.1.
    """
    flat = arr.astype(np.float32).ravel()
    out = flat.astype(np.float64)
    finite = np.isfinite(flat)
    if finite.any():
        short = np.char.mod("%g", flat[finite])
        vals = short.astype(np.float64)
        lossy = vals.astype(np.float32) != flat[finite]
        if lossy.any():
            vals[lossy] = np.char.mod("%.9g", flat[finite][lossy]).astype(np.float64)
        out[finite] = vals
    return out.reshape(arr.shape)


def _string_value(data: bytes, as_b64: bool) -> Any:
    if not as_b64:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass  # JSON cannot carry raw bytes; fall back to TF Serving's binary form
    return {_B64: base64.b64encode(data).decode("ascii")}


def tensor_to_json(arr: np.ndarray, name: str) -> Any:
    kind = arr.dtype.kind
    if kind in "OS":
        as_b64 = name.endswith(_BYTES_SUFFIX)
        flat = np.empty(arr.size, dtype=object)
        flat[:] = [_string_value(x if isinstance(x, bytes) else str(x).encode(), as_b64) for x in arr.ravel()]
        return flat.reshape(arr.shape).tolist()
    if kind == "f" and arr.dtype != np.float64:
        return _float32_values(arr).tolist()
    if kind in "fiub":
        return arr.tolist()
    raise invalid(f"Failed to write JSON value for tensor type: {arr.dtype}")


def predict_response_json(outputs: dict[str, np.ndarray], fmt: str) -> dict:
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt == COLUMNAR:
        if len(names) == 1:
            return {"outputs": tensor_to_json(outputs[names[0]], names[0])}
        return {"outputs": {n: tensor_to_json(outputs[n], n) for n in names}}
    batch = None
    for n in names:
        arr = outputs[n]
        if arr.ndim == 0:
            raise invalid(f"Tensor name: {n} has no shape information ")
        if batch is not None and arr.shape[0] != batch:
            raise invalid(f"Tensor name: {n} has inconsistent batch size: {arr.shape[0]} expecting: {batch}")
        batch = arr.shape[0]
    columns = {n: tensor_to_json(outputs[n], n) for n in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{n: columns[n][i] for n in names} for i in range(batch)]}


def dumps(obj: Any) -> bytes:
    # NaN/Infinity are written bare, exactly as TF Serving's writer does.
    return json.dumps(obj, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode("utf-8")
