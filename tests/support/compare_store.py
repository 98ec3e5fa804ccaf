"""A small MLflow store of pipeline-shaped runs, for the compare tests (tracking and CLI)."""
from __future__ import annotations

import time

import mlflow

EXPERIMENT = "cmp"


def _pipeline_run(client, exp_id, name, params, metrics, val_loss=None, skipped_from=None, tags=None):
    """A parent run like the pipeline's, with a nested train stage run holding per-epoch curves."""
    parent = client.create_run(exp_id, run_name=name, tags={"pipeline.name": "cmp", **(tags or {})})
    pid = parent.info.run_id
    for key, value in params.items():
        client.log_param(pid, key, value)
    for key, value in metrics.items():
        client.log_metric(pid, key, value)
    child_tags = {"mlflow.parentRunId": pid, "pipeline.stage": "train",
                  "skipped": "true" if skipped_from else "false"}
    if skipped_from:
        child_tags["cached_from_run"] = skipped_from
    child = client.create_run(exp_id, run_name="train", tags=child_tags)
    for step, value in enumerate(val_loss or []):
        client.log_metric(child.info.run_id, "val_loss", value, step=step)
        client.log_metric(child.info.run_id, "val_perplexity", 2.0 ** value, step=step)
    client.set_terminated(child.info.run_id)
    client.set_terminated(pid)
    time.sleep(0.01)  # distinct start times
    return pid, child.info.run_id


def make_store(root):
    """Four pipeline runs: a, b differ in the learning rate; c also in units; d has no BLEU."""
    uri = f"sqlite:///{root}/m.db"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=str(root / "artifacts"))
    client.create_experiment("other", artifact_location=str(root / "artifacts2"))
    common = {"name": "cmp", "model.units": "32", "train.epochs": "3"}
    code = {"mlflow.source.git.commit": "0123456789abcdef", "pipeline.git_dirty": "false"}
    ids = {}
    ids["a"], train_a = _pipeline_run(client, exp_id, "run-a", {**common, "train.learning_rate": "0.005"},
                                      {"test_bleu": 3.0, "val_loss": 2.5}, [3.0, 2.7, 2.5], tags=code)
    ids["b"], _ = _pipeline_run(client, exp_id, "run-b", {**common, "train.learning_rate": "0.01"},
                                {"test_bleu": 7.5, "val_loss": 2.9}, [3.1, 3.0, 2.9], tags=code)
    ids["c"], _ = _pipeline_run(client, exp_id, "run-c", {**common, "train.learning_rate": "0.01",
                                                          "model.units": "64"},
                                {"test_bleu": 5.0, "val_loss": 2.1}, [2.9, 2.4, 2.1], tags=code)
    # d: a re-run whose train stage was skipped (cached from a's), and whose evaluate never ran
    ids["d"], _ = _pipeline_run(client, exp_id, "run-d", {**common, "train.learning_rate": "0.005"},
                                {"val_loss": 2.5}, skipped_from=train_a,
                                tags={**code, "pipeline.git_dirty": "true"})
    return client, exp_id, ids, uri
