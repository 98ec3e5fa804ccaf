"""A pipeline run as the tracker sees it: a frozen value, built from the config once.

Kept apart from `mlflow_tracker` so that making one (at config time) does not import MLflow.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunSpec:
    """What the tracker records about one pipeline run, resolved from the config once
    (`PipelineBase.run_spec()`): names, the experiment, and the flattened config as params."""
    name: str
    task: str
    model_name: str
    experiment: str
    params: dict = field(default_factory=dict)  # key -> value, logged as the run's params
    tracking_uri: str | None = None  # the config's mlflow.tracking_uri (None: env var or default)
