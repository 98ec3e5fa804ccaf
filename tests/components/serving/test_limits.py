"""Checks before the model runs (components/serving/limits.py)."""

from __future__ import annotations

import numpy as np
import pytest

from components.serving.config import Limits
from components.serving.errors import ServingError
from components.serving.limits import check_generation_budget, check_inputs
from tests.components.serving.signatures import GEN, LIMITS, NUM, ONE


def test_shape_and_dtype_validation_names_the_input():
    with pytest.raises(ServingError, match="input 'inputs'.*shape \\[1,2\\]"):
        check_inputs(ONE, {"inputs": np.array([[b"a", b"b"]], dtype=object)}, LIMITS)
    with pytest.raises(ServingError, match="input 'x'.*expects float but int32"):
        check_inputs(NUM, {"x": np.zeros([1, 3], np.int32)}, LIMITS)
    with pytest.raises(ServingError, match="Missing but required: \\{max_tokens\\}"):
        check_inputs(GEN, {"prompt": np.array([b"a"], dtype=object)}, LIMITS)


def test_generation_budget():
    limits = Limits(max_tokens=100, max_total_tokens=150)
    ok = {"prompt": np.array([b"a", b"b"], dtype=object), "max_tokens": np.array([100, 50], np.int32)}
    check_generation_budget(GEN, ok, limits)
    with pytest.raises(ServingError, match="max_tokens 2147483647 exceeds the limit of 100"):
        check_generation_budget(GEN, {**ok, "max_tokens": np.array([2**31 - 1, 1], np.int32)}, limits)
    with pytest.raises(ServingError, match="summed over the request's rows is 200"):
        check_generation_budget(GEN, {**ok, "max_tokens": np.array([100, 100], np.int32)}, limits)
