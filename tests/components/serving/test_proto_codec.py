"""gRPC TensorProto <-> numpy (components/serving/proto_codec.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from components.serving.config import Limits
from components.serving.errors import ServingError
from components.serving.json_codec import json_request_tensors
from components.serving.proto_codec import array_to_proto, arrays_from_protos
from tests.components.serving.signatures import LIMITS, NUM, ONE


def test_proto_inputs_with_absurd_shapes_are_rejected():
    from tensorflow.core.framework import tensor_pb2

    limits = Limits(max_instances=10**9, max_tensor_elements=1000)
    proto = tensor_pb2.TensorProto(dtype=tf.float32.as_datatype_enum, float_val=[1.0])
    proto.tensor_shape.dim.add(size=10**10)
    proto.tensor_shape.dim.add(size=3)
    with pytest.raises(ServingError, match="more than the limit of 1000"):
        arrays_from_protos({"x": proto}, NUM, limits)
    # 10,000,000 strings declared by a 30-byte proto: refused by --max_instances, never expanded.
    strings = tensor_pb2.TensorProto(dtype=tf.string.as_datatype_enum, string_val=[b"a"])
    strings.tensor_shape.dim.add(size=10_000_000)
    assert len(strings.SerializeToString()) < 40
    with pytest.raises(ServingError, match="10000000 rows, more than the limit of 4"):
        arrays_from_protos({"inputs": strings}, ONE, LIMITS)
    wrong_rank = tensor_pb2.TensorProto(dtype=tf.string.as_datatype_enum, string_val=[b"a"])
    for _ in range(3):
        wrong_rank.tensor_shape.dim.add(size=2000)
    with pytest.raises(ServingError, match="signature expects"):
        arrays_from_protos({"inputs": wrong_rank}, ONE, Limits(max_instances=10**9))
    deep = "a"
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ServingError, match="nested more than"):
        json_request_tensors({"inputs": deep}, ONE, LIMITS)


def test_value_counts_are_checked_before_make_ndarray():
    from tensorflow.core.framework import tensor_pb2, types_pb2

    too_many = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"a"] * 5,
                                      tensor_shape={"dim": [{"size": 2}]})
    with pytest.raises(ServingError, match="5 values for shape \\[2\\], which holds 2"):
        arrays_from_protos({"inputs": too_many}, ONE, LIMITS)
    content = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0" * 16,
                                     tensor_shape={"dim": [{"size": 1}, {"size": 3}]})
    with pytest.raises(ServingError, match="tensor_content has 16 bytes"):
        arrays_from_protos({"x": content}, NUM, LIMITS)
    fill = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"a"], tensor_shape={"dim": [{"size": 2}]})
    assert arrays_from_protos({"inputs": fill}, ONE, LIMITS)["inputs"].tolist() == [b"a", b"a"]  # TF's fill rule


def test_grpc_outputs_use_typed_fields():
    proto = array_to_proto(np.array([[1.5, 2.5]], np.float32))
    assert list(proto.float_val) == [1.5, 2.5] and not proto.tensor_content
    assert list(array_to_proto(np.array([b"a"], dtype=object)).string_val) == [b"a"]
    np.testing.assert_array_equal(tf.make_ndarray(array_to_proto(np.arange(4, dtype=np.int64))), np.arange(4))
