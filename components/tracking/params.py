"""Flattening a nested config into dotted keys (MLflow params, fingerprints).

Lives in components so tracking never imports the pipeline package.
"""
from __future__ import annotations

from typing import Any


def flatten(cfg, prefix: str = "") -> dict[str, Any]:
    """`{"train": {"epochs": 3}}` (or a pydantic model) -> `{"train.epochs": 3}`."""
    data = cfg.model_dump(mode="json") if hasattr(cfg, "model_dump") else cfg
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, full + "."))
        else:
            out[full] = value
    return out
