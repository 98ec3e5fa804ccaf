"""MLflow tracking: one parent run per pipeline run, a nested run per stage.

Skipped stages get a nested run too (tagged `skipped`, carrying the cached stage's
metrics and a link to the run that produced them), so every pipeline run in MLflow shows
all its stages and its final metrics, whichever stages actually re-ran.

Stages log through a `StageTracking` handle (on their context) rather than calling
`mlflow` themselves: the handle is bound to the stage's own run, so logging lands in the
right place whatever else is active, and a stage can run with tracking off (`NoTracking`),
e.g. on a non-chief worker.
"""
from __future__ import annotations

import contextlib
import subprocess
import time
import warnings
from pathlib import Path

import mlflow

from components.tracking import run_state
from components.tracking.run_spec import RunSpec
from components.tracking.uri import DEFAULT_TRACKING_URI, resolve_tracking_uri  # noqa: F401 (re-export)

MAX_PARAM_CHARS = 6000


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


class StageTracking:
    """What a stage may log to its own MLflow run: params, tags, artifacts, datasets, curves."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self._client = mlflow.MlflowClient()

    def log_params(self, params: dict) -> None:
        for key, value in params.items():
            self._client.log_param(self.run_id, key, str(value)[:MAX_PARAM_CHARS])

    def log_param(self, key: str, value) -> None:
        self.log_params({key: value})

    def set_tag(self, key: str, value) -> None:
        self._client.set_tag(self.run_id, key, str(value))

    def log_artifact(self, path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    def log_artifacts(self, folder, artifact_path: str | None = None) -> None:
        self._client.log_artifacts(self.run_id, str(folder), artifact_path=artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._client.log_text(self.run_id, text, artifact_file)

    def log_history(self, history: dict[str, list[float]]) -> None:
        """Per-epoch metrics restored from a checkpoint, at their epoch steps (as MLflow's Keras
        callback logs them), so a resumed run's curves cover every epoch exactly once."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, float(value), stamp, step)
                   for key, values in history.items() for step, value in enumerate(values)]
        for start in range(0, len(metrics), 1000):
            self._client.log_batch(self.run_id, metrics=metrics[start:start + 1000])

    def log_dataset(self, name: str, source: str, digest: str, context: str) -> None:
        """MLflow dataset tracking (`log_inputs`): the run's Datasets tab names each split used."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        with warnings.catch_warnings():  # "can be interpreted in multiple ways" for plain paths
            warnings.simplefilter("ignore")
            src = resolve_dataset_source(source)  # a local path or an upstream URL
        entity = MetaDataset(source=src, name=name, digest=digest[:32])._to_mlflow_entity()
        self._client.log_inputs(self.run_id, datasets=[
            DatasetInput(dataset=entity, tags=[InputTag(key="mlflow.data.context", value=context)])])

    def keras_callback(self):
        """Per-epoch metrics as Keras logs them. mlflow's own callback logs to the active run,
        which during a stage is this stage's run (`Tracker.stage_run` starts it)."""
        active = mlflow.active_run()
        if active is None or active.info.run_id != self.run_id:
            raise RuntimeError(f"keras_callback() needs stage run {self.run_id} to be the active MLflow run")
        return mlflow.keras.MlflowCallback()


class NoTracking(StageTracking):
    """The same handle with every call a no-op: stages run unchanged where nothing is tracked."""

    def __init__(self):  # noqa: D401  (no client, no run)
        self.run_id = None

    def _noop(self, *args, **kwargs):
        return None

    log_params = log_param = set_tag = log_artifact = log_artifacts = log_text = log_dataset = log_history = _noop

    def keras_callback(self):
        import keras
        return keras.callbacks.Callback()


@contextlib.contextmanager
def _killed_on_interrupt():
    """End the active run as KILLED (not FAILED) when SIGINT/SIGTERM stopped the pipeline, or a
    pruner did (tagged with why). `mlflow.start_run`'s exit leaves a run it finds already ended alone."""
    try:
        yield
    except run_state.Pruned as pruned:
        mlflow.set_tag(run_state.END_REASON_TAG, str(pruned))
        mlflow.end_run("KILLED")
        raise
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise


class Tracker:
    def __init__(self, run: RunSpec, tracking_uri: str | None = None, code_fingerprint: str | None = None,
                 under_run_id: str | None = None, tags: dict | None = None):
        """`under_run_id`: nest the pipeline run under this run (a sweep's parent run); `tags`: extra
        tags on the pipeline run (a sweep's id and trial number)."""
        self.run = run
        self.under_run_id = under_run_id
        self.extra_tags = dict(tags or {})
        self.uri = resolve_tracking_uri(tracking_uri or run.tracking_uri)
        self.parent_run_id: str | None = None
        self.stage_seconds: dict[str, float] = {}
        self.code_fingerprint = code_fingerprint

    def open_store(self, log=print) -> str:
        """Create (or migrate) the store under a lock, select the experiment, fail stale runs.
        Returns the experiment id."""
        mlflow.set_tracking_uri(self.uri)
        with run_state.store_init_lock(self.uri):
            experiment = mlflow.set_experiment(self.run.experiment)
        run_state.mark_stale_runs(mlflow.MlflowClient(), experiment.experiment_id, log=log)
        return experiment.experiment_id

    @contextlib.contextmanager
    def pipeline_run(self, stages: list[str]):
        self.open_store()
        run_name = f"{self.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        with mlflow.start_run(run_name=run_name, tags={**run_state.process_tags(), **self.extra_tags},
                              parent_run_id=self.under_run_id) as run:
            self.parent_run_id = run.info.run_id
            params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in self.run.params.items()}
            mlflow.log_params(params)
            tags = {"pipeline.name": self.run.name, "pipeline.task": self.run.task,
                    "pipeline.stages": ",".join(stages), "pipeline.model_name": self.run.model_name}
            commit = git_commit()
            if commit:
                tags["mlflow.source.git.commit"] = commit
            dirty = git_dirty()
            if dirty is not None:
                tags["pipeline.git_dirty"] = str(dirty).lower()
            if self.code_fingerprint:  # the hash the stage fingerprints use
                tags["pipeline.code_fingerprint"] = self.code_fingerprint[:16]
            mlflow.set_tags(tags)
            start = time.time()
            with _killed_on_interrupt():
                yield run
            mlflow.MlflowClient().log_metric(self.parent_run_id, "time_total_s", time.time() - start)

    @contextlib.contextmanager
    def stage_run(self, stage: str, fingerprint: str):
        with mlflow.start_run(run_name=stage, nested=True, tags=run_state.process_tags()) as run:
            mlflow.set_tags({"pipeline.stage": stage, "pipeline.fingerprint": fingerprint,
                             "skipped": "false"})
            with _killed_on_interrupt():
                yield StageTracking(run.info.run_id)

    def stage_finished(self, stage: str, manifest: dict, manifest_path: Path, seconds: float) -> None:
        self._log_final(stage, manifest, seconds)
        mlflow.log_artifact(str(manifest_path), artifact_path="manifest")

    def stage_skipped(self, stage: str, manifest: dict) -> None:
        with mlflow.start_run(run_name=stage, nested=True, tags=run_state.process_tags()):
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


class NullTracker:
    """The tracker of a non-chief worker: the same calls, nothing logged (the chief logs the run)."""

    uri = "(none: not the chief worker)"
    parent_run_id = None

    def __init__(self):
        self.stage_seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def pipeline_run(self, stages: list[str]):
        yield None

    @contextlib.contextmanager
    def stage_run(self, stage: str, fingerprint: str):
        yield NoTracking()

    def stage_finished(self, stage: str, manifest: dict, manifest_path: Path, seconds: float) -> None:
        self.stage_seconds[stage] = seconds

    def stage_skipped(self, stage: str, manifest: dict) -> None:
        pass
