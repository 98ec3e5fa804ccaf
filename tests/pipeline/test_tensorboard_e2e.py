"""`train.tensorboard: true`: Keras TensorBoard logs under the train stage's output whose
per-epoch scalars are the values MLflow got, and the log folder as an MLflow artifact."""
from __future__ import annotations

import math
from pathlib import Path

import mlflow
import pytest
import tensorflow as tf

from tests.support.subprocess_run import run_cli

pytestmark = pytest.mark.slow


def _scalars(folder: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of every event file in a TensorBoard run folder."""
    out: dict[str, dict[int, float]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                out.setdefault(value.tag, {})[event.step] = number
    return out


def test_tensorboard_scalars_equal_the_mlflow_metrics(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--stages", "prepare,train",
                    "--set", f"work_dir={tmp_path}/work", "--set", f"export.export_dir={tmp_path}/exports",
                    "--set", f"mlflow.tracking_uri={uri}", "--set", "train.epochs=2",
                    "--set", "train.steps_per_epoch=3", "--set", "train.tensorboard=true"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    logs = tmp_path / "work" / "test_translate_tiny" / "train" / "tensorboard"
    train, validation = _scalars(logs / "train"), _scalars(logs / "validation")
    assert set(train["epoch_loss"]) == {0, 1} and set(validation["epoch_loss"]) == {0, 1}

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("test_translate_tiny")
    (train_run,) = client.search_runs([experiment.experiment_id], filter_string="tags.`pipeline.stage` = 'train'")
    checked = 0
    for name, series in [*((f"epoch_{k}", ("", k)) for k in ("loss", "perplexity", "tokens_per_sec")),
                         ("epoch_loss", ("val_", "loss"))]:
        prefix, key = series
        scalars = (validation if prefix else train)[name]
        history = {m.step: m.value for m in client.get_metric_history(train_run.info.run_id, prefix + key)}
        assert set(history) == set(scalars), (name, history, scalars)
        for step, value in history.items():
            assert math.isclose(value, scalars[step], rel_tol=1e-5), (prefix + key, step, value, scalars[step])
            checked += 1
    assert checked == 8
    artifacts = [a.path for a in client.list_artifacts(train_run.info.run_id, "tensorboard")]
    assert sorted(artifacts) == ["tensorboard/train", "tensorboard/validation"]
