"""Checks a request must pass before the model runs (REST and gRPC alike).

The signature's names, dtypes and shapes, and the server's size limits (``--max_instances``,
``--max_tensor_elements``, ``--max_input_chars``, ``--max_tokens``): each bound is checked from
declared shapes or counts before anything large is built, so a small hostile request cannot make
the server allocate or loop for minutes.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .config import Limits
from .errors import invalid
from .messages import clip, shape_str, type_name
from .servable import SignatureInfo

MAX_RANK = 32  # numpy's limit is 64; no served signature comes close


def check_elements(name: str, shape, limits: Limits) -> None:
    count = math.prod(shape)
    if count > limits.max_tensor_elements:
        raise invalid(f"input '{clip(name)}': shape {shape_str(shape)} has {count} elements, more than the "
                      f"limit of {limits.max_tensor_elements} (--max_tensor_elements)")


def _dtype_of(arr: np.ndarray) -> tf.DType:
    if arr.dtype.kind in "OSU":
        return tf.string
    return tf.as_dtype(arr.dtype)


def check_inputs(sig: SignatureInfo, arrays: dict[str, np.ndarray], limits: Limits,
                 check_strings: bool = False) -> None:
    """Reject missing/extra names, wrong dtypes and incompatible shapes before calling the model."""
    expected, got = set(sig.inputs), set(arrays)
    if expected != got:
        extra, missing = sorted(got - expected), sorted(expected - got)
        raise invalid(
            f"input size does not match signature: {len(got)}!={len(expected)} "
            f"len({{{','.join(sorted(got))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}.")
    for name in sorted(expected):
        spec, arr = sig.inputs[name], arrays[name]
        dtype = _dtype_of(arr)
        if dtype != spec.dtype:
            raise invalid(f"input '{name}' of signature '{sig.name}': expects {type_name(spec.dtype)} "
                          f"but {type_name(dtype)} is provided")
        if not spec.shape.is_compatible_with(arr.shape):
            want = "[?]" if spec.shape.rank is None else shape_str(-1 if d is None else d for d in spec.shape)
            raise invalid(f"input '{name}' of signature '{sig.name}': got shape {shape_str(arr.shape)} "
                          f"but the signature expects {want} (rank {spec.shape.rank})")
        if arr.ndim >= 1 and arr.shape[0] > limits.max_instances:
            raise invalid(f"input '{name}' has {arr.shape[0]} rows, more than the limit of "
                          f"{limits.max_instances} (--max_instances)")
        if check_strings and dtype == tf.string and arr.size:
            longest = max(len(x) for x in arr.ravel())
            if longest > limits.max_input_chars:
                raise invalid(f"input '{name}': value of {longest} bytes exceeds the limit of "
                              f"{limits.max_input_chars} (--max_input_chars)")


def check_generation_budget(sig: SignatureInfo, arrays: dict[str, np.ndarray], limits: Limits) -> None:
    """Bound generation work before the model runs: an LM generate call allocates and loops
    over max_tokens steps for the whole batch, so max_tokens=2**31-1 would run (and grow) for
    minutes. Each row's value must be <= --max_tokens and their sum <= --max_total_tokens."""
    arr = arrays.get("max_tokens")
    if arr is None or arr.dtype.kind not in "iu" or not arr.size:
        return
    largest = int(arr.max())
    if largest > limits.max_tokens:
        raise invalid(f"max_tokens {largest} exceeds the limit of {limits.max_tokens} (--max_tokens)")
    total = int(np.clip(arr, 0, None).astype(np.int64).sum())
    if total > limits.max_total_tokens:
        raise invalid(f"max_tokens summed over the request's rows is {total}, more than the limit of "
                      f"{limits.max_total_tokens} (--max_total_tokens)")
