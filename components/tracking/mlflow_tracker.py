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


_ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=_ROOT)
        return out.stdout if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str | None:
    out = _git("rev-parse", "HEAD")
    return (out or "").strip() or None


def git_dirty() -> bool | None:
    """True when the checkout has uncommitted changes (untracked files included); None without git."""
    out = _git("status", "--porcelain")
    return None if out is None else bool(out.strip())


def _split_sizes_text(sizes: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sizes.items())


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
                    "pipeline.stages": ",".join(stages), "pipeline.model_name": self.cfg.model_name}
            commit = git_commit()
            if commit:
                tags["mlflow.source.git.commit"] = commit
            dirty = git_dirty()
            if dirty is not None:
                tags["pipeline.git_dirty"] = str(dirty).lower()
            from pipeline.runner import code_fingerprint  # the hash the stage fingerprints use
            tags["pipeline.code_fingerprint"] = code_fingerprint()[:16]
            mlflow.set_tags(tags)
            start = time.time()
            yield run
            mlflow.MlflowClient().log_metric(self.parent_run_id, "time_total_s", time.time() - start)

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
            self._log_final(stage, manifest, 0.0)

    def _log_final(self, stage: str, manifest: dict, seconds: float) -> None:
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
        self._log_data_description(manifest.get("info") or {})

    def _log_data_description(self, info: dict) -> None:
        """Dataset name, split sizes and data fingerprint go on the parent run (whichever stage
        produced them, cached or not), so runs on different data show up in a comparison."""
        params = {}
        if info.get("dataset"):
            params["dataset"] = str(info["dataset"])
        sizes = info.get("split_sizes") or info.get("lines")  # translator: pairs; LM: lines
        if isinstance(sizes, dict) and sizes:
            params["dataset.split_sizes"] = _split_sizes_text(sizes)
        if isinstance(info.get("tokens"), dict) and info["tokens"]:
            params["dataset.split_tokens"] = _split_sizes_text(info["tokens"])
        if info.get("data_fingerprint"):
            params["dataset.fingerprint"] = str(info["data_fingerprint"])[:16]
        if params:
            client = mlflow.MlflowClient()
            for key, value in params.items():
                client.log_param(self.parent_run_id, key, value)
