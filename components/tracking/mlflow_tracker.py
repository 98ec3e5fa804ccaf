"""MLflow tracking: one parent run per pipeline run, a nested run per stage.

Skipped stages get a nested run too (tagged `skipped`, carrying the cached stage's
metrics and a link to the run that produced them), so every pipeline run in MLflow shows
all its stages and its final metrics, whichever stages actually re-ran.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import mlflow

from pipeline.config import flatten

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MAX_PARAM_CHARS = 6000


def resolve_tracking_uri(configured: str | None) -> str:
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parents[2])
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


class Tracker:
    def __init__(self, cfg, tracking_uri: str | None = None):
        self.cfg = cfg
        self.uri = resolve_tracking_uri(tracking_uri or cfg.mlflow.tracking_uri)
        self.parent_run_id: str | None = None
        self.stage_seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def pipeline_run(self, stages: list[str]):
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_experiment(self.cfg.experiment)
        run_name = f"{self.cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        with mlflow.start_run(run_name=run_name) as run:
            self.parent_run_id = run.info.run_id
            params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten(self.cfg).items()}
            mlflow.log_params(params)
            tags = {"pipeline.name": self.cfg.name, "pipeline.task": self.cfg.task,
                    "pipeline.stages": ",".join(stages)}
            commit = git_commit()
            if commit:
                tags["mlflow.source.git.commit"] = commit
            mlflow.set_tags(tags)
            yield run

    @contextlib.contextmanager
    def stage_run(self, stage: str, fingerprint: str):
        with mlflow.start_run(run_name=stage, nested=True) as run:
            mlflow.set_tags({"pipeline.stage": stage, "pipeline.fingerprint": fingerprint,
                             "skipped": "false"})
            yield run.info.run_id

    def stage_finished(self, stage: str, manifest: dict, manifest_path: Path, seconds: float) -> None:
        self._log_final(stage, manifest, seconds)
        mlflow.log_artifact(str(manifest_path), artifact_path="manifest")

    def stage_skipped(self, stage: str, manifest: dict) -> None:
        with mlflow.start_run(run_name=stage, nested=True):
            mlflow.set_tags({"pipeline.stage": stage, "skipped": "true",
                             "pipeline.fingerprint": manifest.get("fingerprint", ""),
                             "cached_from_run": manifest.get("mlflow_run_id") or ""})
            self._log_final(stage, manifest, 0.0, active=True)

    def _log_final(self, stage: str, manifest: dict, seconds: float, active: bool = True) -> None:
        metrics = {k: float(v) for k, v in manifest.get("metrics", {}).items()
                   if isinstance(v, (int, float))}
        if metrics:
            mlflow.log_metrics(metrics)
            # Final metrics also go on the parent run, so runs compare at a glance.
            client = mlflow.MlflowClient()
            for key, value in metrics.items():
                client.log_metric(self.parent_run_id, key, value)
        self.stage_seconds[stage] = seconds
        mlflow.MlflowClient().log_metric(self.parent_run_id, f"time_{stage}_s", seconds)
