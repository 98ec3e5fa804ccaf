"""Deterministic hash-based train/validation/test assignment."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")


def split_of(key: str, train: float = 0.8, validation: float = 0.1) -> str:
    """Return "train", "validation" or "test" for `key`.

    Uses sha256 of the UTF-8 key rather than Python's `hash()`, which is salted
    per process: the same key must land in the same split on every machine and
    every run. Callers pass the *source sentence* so that duplicate sources
    always fall in the same split and cannot leak from train into evaluation.
    The remaining `1 - train - validation` goes to "test".
    """
    if train < 0 or validation < 0 or train + validation > 1 + 1e-12:
        raise ValueError(
            f"split fractions must be >= 0 and sum to <= 1, got train={train}, "
            f"validation={validation}"
        )
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64  # uniform in [0, 1)
    if u < train:
        return "train"
    if u < train + validation:
        return "validation"
    return "test"
