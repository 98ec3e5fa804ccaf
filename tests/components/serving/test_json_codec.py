"""REST JSON <-> numpy with TF Serving's rules (components/serving/json_codec.py)."""

from __future__ import annotations

import numpy as np
import pytest

from components.serving.config import Limits
from components.serving.errors import ServingError
from components.serving.json_codec import (
    COLUMNAR,
    ROW,
    json_request_tensors,
    parse_json_body,
    predict_response_json,
    tensor_to_json,
)
from tests.components.serving.signatures import GEN, LIMITS, NUM, ONE


def test_row_and_columnar_requests_give_the_same_tensors():
    fmt, row = json_request_tensors(
        {"instances": [{"prompt": "a", "max_tokens": 1}, {"prompt": "b", "max_tokens": 2}]}, GEN, LIMITS)
    assert fmt == ROW
    fmt, col = json_request_tensors({"inputs": {"prompt": ["a", "b"], "max_tokens": [1, 2]}}, GEN, LIMITS)
    assert fmt == COLUMNAR
    for name in ("prompt", "max_tokens"):
        np.testing.assert_array_equal(row[name], col[name])
    assert row["max_tokens"].dtype == np.int32 and list(row["prompt"]) == [b"a", b"b"]


def test_plain_instances_and_b64():
    _, t = json_request_tensors({"instances": ["hé", {"b64": "AAE="}, {"b64": "AAE"}]}, ONE, LIMITS)
    assert list(t["inputs"]) == ["hé".encode(), b"\x00\x01", b"\x00\x01"]


@pytest.mark.parametrize("doc, sig, needle", [
    ({"instances": ["a"], "inputs": ["a"]}, ONE, "only one of 'inputs' or 'instances'"),
    ({}, ONE, "Missing 'inputs' or 'instances' key"),
    ({"instances": []}, ONE, "No values in 'instances'"),
    ({"instances": ["a", "b"]}, GEN, "instances is a plain list"),
    ({"instances": [{"prompt": "a"}]}, GEN, "keys must be equal to"),
    ({"instances": [{"prompt": "a", "max_tokens": 1, "extra": 1}]}, GEN, "does not have named input: extra"),
    ({"inputs": {"prompt": ["a"]}}, GEN, "Missing named input: max_tokens"),
    ({"inputs": {"prompt": ["a"], "max_tokens": [1], "typo": [1]}}, GEN, "Unexpected named input: typo"),
    ({"inputs": {"prompt": ["a"], "max_tokens": ["1"]}}, GEN, "is not of expected type: int32"),
    ({"inputs": {"prompt": ["a"], "max_tokens": [1.5]}}, GEN, "is not of expected type: int32"),
    ({"inputs": {"prompt": ["a"], "max_tokens": [True]}}, GEN, "is not of expected type: int32"),
    ({"instances": [[1, 2, 3], [1, 2]]}, NUM, "Expecting tensor size: 3 but got: 2"),
    ({"inputs": [[1, 2, 3], [1, [2], 3]]}, NUM, "Failed to process input: x"),
    ({"instances": [16777217, 1, 2]}, NUM, "without loss of precision"),
    ({"instances": ["a"] * 5}, ONE, "--max_instances"),
    ({"inputs": ["a"] * 5}, ONE, "--max_instances"),
    ({"instances": ["123456789"]}, ONE, "--max_input_chars"),
    ({"instances": [{"b64": "!!"}]}, ONE, "Unable to base64 decode"),
    ({"inputs": [{"b64": 1}]}, ONE, "not formatted correctly for base64"),
])
def test_bad_json_requests_are_invalid_argument(doc, sig, needle):
    with pytest.raises(ServingError) as info:
        json_request_tensors(doc, sig, LIMITS)
    assert info.value.code == "INVALID_ARGUMENT"
    assert needle in info.value.message


def test_parse_errors():
    for body, needle in [(b"", "document is empty"), (b"{", "JSON Parse error"), (b"[1]", "Is not object"),
                         (b"\xff", "JSON Parse error")]:
        with pytest.raises(ServingError, match=needle):
            parse_json_body(body)
    assert parse_json_body(b'{"inputs": [NaN]}')["inputs"][0] != 0  # NaN accepted like TF Serving


def test_json_element_count_is_checked_before_conversion():
    limits = Limits(max_tensor_elements=10, max_instances=100)
    with pytest.raises(ServingError, match="--max_tensor_elements"):
        json_request_tensors({"inputs": [[1.0, 2.0, 3.0]] * 4}, NUM, limits)
    with pytest.raises(ServingError, match="--max_tensor_elements"):
        json_request_tensors({"instances": [[1.0, 2.0, 3.0]] * 4}, NUM, limits)


@pytest.mark.parametrize("body, needle", [
    (b'["\\ud800"]', "surrogate"),
    (b'{"instances": ["\\udc00x"]}', "surrogate"),
    (b'{"instances": ["\xed\xa0\x80"]}', "Invalid encoding"),
    (b'{"signature_name": "\xed\xa0\x80"}', "Invalid encoding"),
    (b'{"instances": [' + b"9" * 5000 + b']}', "Number too big"),
    (b'{"instances": [1e400]}', "Number too big"),
    (b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b'}', "nested too deeply"),
    (b'{"instances": [Inf' + b'"' + b'\\"' * 20000, "Parse error"),
])
def test_hostile_json_is_a_parse_error(body, needle):
    with pytest.raises(ServingError, match=needle) as info:
        parse_json_body(body)
    assert info.value.code == "INVALID_ARGUMENT" and len(info.value.message) < 200


def test_json_accepts_inf_like_tf_serving_and_valid_surrogate_pairs():
    doc = parse_json_body(b'{"inputs": [[Inf, -Inf, NaN]], "s": "Inf \\" Inf", "e": "\\ud83d\\ude00"}')
    assert doc["inputs"][0][:2] == [float("inf"), float("-inf")] and doc["s"] == 'Inf " Inf'
    assert doc["e"] == "\U0001F600"
    assert parse_json_body(b'{"n": ' + b"1" * 30 + b'}')["n"] == int("1" * 30)


def test_response_formats_follow_tf_serving():
    single = {"outputs": np.array([b"a", b"b"], dtype=object)}
    assert predict_response_json(single, ROW) == {"predictions": ["a", "b"]}
    assert predict_response_json(single, COLUMNAR) == {"outputs": ["a", "b"]}
    multi = {"y": np.array([[0.1, 0.5]], np.float32), "n": np.array([7], np.int64)}
    assert predict_response_json(multi, ROW) == {"predictions": [{"n": 7, "y": [0.1, 0.5]}]}
    assert predict_response_json(multi, COLUMNAR) == {"outputs": {"n": [7], "y": [[0.1, 0.5]]}}
    with pytest.raises(ServingError, match="inconsistent batch size"):
        predict_response_json({"a": np.zeros([2]), "b": np.zeros([3])}, ROW)


def test_float_and_bytes_output_values():
    # float32 0.1 prints as 0.1 (TF Serving's "%g" rule), not 0.10000000149011612.
    assert tensor_to_json(np.array([0.1, 1e-7, 3.0, np.nan], np.float32), "y")[:3] == [0.1, 1e-7, 3.0]
    assert tensor_to_json(np.array([np.float32(0.7) * np.float32(1.0000001)], np.float32), "y") == [0.700000048]
    assert tensor_to_json(np.array([b"\xff\x00", b"ok"], dtype=object), "text") == [{"b64": "/wA="}, "ok"]
    assert tensor_to_json(np.array([b"ok"], dtype=object), "data_bytes") == [{"b64": "b2s="}]
