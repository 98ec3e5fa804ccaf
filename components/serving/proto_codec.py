"""TensorProto <-> numpy for the gRPC API, with TF Serving's rules.

Inputs: a tiny proto can declare a huge shape, so shapes and value counts are checked before
``make_ndarray`` builds anything. Outputs: the typed value fields (``float_val``, ...) as TF
Serving fills them, which clients read directly.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from .config import Limits
from .errors import invalid
from .limits import MAX_RANK, check_elements
from .messages import clip, shape_str
from .servable import SignatureInfo

# The repeated field make_ndarray reads for each dtype (values per element: 2 for complex).
_VALUE_FIELDS = {
    "DT_STRING": ("string_val", 1), "DT_FLOAT": ("float_val", 1), "DT_DOUBLE": ("double_val", 1),
    "DT_INT32": ("int_val", 1), "DT_INT16": ("int_val", 1), "DT_INT8": ("int_val", 1),
    "DT_UINT8": ("int_val", 1), "DT_UINT16": ("int_val", 1), "DT_INT64": ("int64_val", 1),
    "DT_UINT32": ("uint32_val", 1), "DT_UINT64": ("uint64_val", 1), "DT_BOOL": ("bool_val", 1),
    "DT_HALF": ("half_val", 1), "DT_BFLOAT16": ("half_val", 1),
    "DT_COMPLEX64": ("scomplex_val", 2), "DT_COMPLEX128": ("dcomplex_val", 2),
}


def _check_value_count(name: str, proto, elements: int) -> None:
    """More values than the declared shape holds is an error TF only reports after building them
    all: make_ndarray turns 5 M strings into a Python list (+250 MB, 0.7 s) before its reshape
    fails. Counting the repeated field first costs nothing."""
    field = _VALUE_FIELDS.get(types_pb2.DataType.Name(proto.dtype) if proto.dtype in types_pb2.DataType.values()
                              else "", None)
    if proto.tensor_content:
        itemsize = tf.as_dtype(proto.dtype).size if field is not None and field[0] != "string_val" else 0
        if itemsize and len(proto.tensor_content) != elements * itemsize:
            raise invalid(f"input '{clip(name)}': tensor_content has {len(proto.tensor_content)} bytes, "
                          f"but shape {shape_str(d.size for d in proto.tensor_shape.dim)} needs "
                          f"{elements * itemsize}")
        return
    if field is None:
        return  # make_ndarray reports unsupported dtypes itself
    count = len(getattr(proto, field[0]))
    if count > elements * field[1]:
        raise invalid(f"input '{clip(name)}': {count} values for shape "
                      f"{shape_str(d.size for d in proto.tensor_shape.dim)}, which holds {elements}")


def arrays_from_protos(protos, sig: SignatureInfo, limits: Limits) -> dict[str, np.ndarray]:
    """TensorProtos -> numpy, checking each declared shape first.

    A tiny proto can declare a huge shape (make_ndarray fills it by repeating the last value),
    so the shape is checked against the signature, --max_instances and --max_tensor_elements
    before anything is allocated."""
    arrays = {}
    for name, proto in protos.items():
        dims = [d.size for d in proto.tensor_shape.dim]
        if any(d < 0 for d in dims) or len(dims) > MAX_RANK:
            raise invalid(f"input '{clip(name)}': invalid tensor shape {shape_str(dims[:MAX_RANK + 1])}")
        spec = sig.inputs.get(name)
        if spec is not None and not spec.shape.is_compatible_with(dims):
            want = "[?]" if spec.shape.rank is None else shape_str(-1 if d is None else d for d in spec.shape)
            raise invalid(f"input '{name}' of signature '{sig.name}': got shape {shape_str(dims)} "
                          f"but the signature expects {want} (rank {spec.shape.rank})")
        if dims and dims[0] > limits.max_instances:
            raise invalid(f"input '{clip(name)}' has {dims[0]} rows, more than the limit of "
                          f"{limits.max_instances} (--max_instances)")
        check_elements(name, dims, limits)
        _check_value_count(name, proto, math.prod(dims))
        try:
            arrays[name] = tf.make_ndarray(proto)
        except Exception as exc:  # malformed protos raise a variety of errors
            raise invalid(f"input '{clip(name)}': cannot convert TensorProto to a tensor: {exc}") from None
    return arrays


# Typed value fields, as TF Serving's Tensor::AsProtoField fills them. Many clients read
# e.g. ``outputs['scores'].float_val`` directly, which tensor_content would break.
_PROTO_FIELD = {
    np.float32: "float_val", np.float64: "double_val",
    np.int32: "int_val", np.int16: "int_val", np.int8: "int_val", np.uint8: "int_val", np.uint16: "int_val",
    np.int64: "int64_val", np.bool_: "bool_val", np.uint32: "uint32_val", np.uint64: "uint64_val",
}


def array_to_proto(arr: np.ndarray) -> tensor_pb2.TensorProto:
    field = _PROTO_FIELD.get(arr.dtype.type)
    if field is None:
        return tf.make_tensor_proto(arr)  # strings -> string_val; rarer types as TF packs them
    proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(arr.dtype).as_datatype_enum,
                                   tensor_shape=tf.TensorShape(arr.shape).as_proto())
    getattr(proto, field).extend(arr.ravel().tolist())
    return proto
