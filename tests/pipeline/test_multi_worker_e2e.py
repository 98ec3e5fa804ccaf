"""Two worker processes on 127.0.0.1 train the tiny translator with MultiWorkerMirroredStrategy.

Checks what a user of `train.distribute: multi_worker` relies on: both workers end with the
same weights, only the chief logs to MLflow, evaluates and exports, and the SavedModel it
exports reloads in a fresh process and translates.
"""
import json
import os
import socket
import subprocess
import sys

import mlflow
import numpy as np
import pytest

from tests.support.subprocess_run import ROOT, run_isolated_python

pytestmark = pytest.mark.slow
NAME = "test_translate_tiny"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi_worker")
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        args = [sys.executable, "-m", "pipeline", "run", str(ROOT / "configs" / "test_translate_tiny.yaml"),
                "--set", "train.distribute=multi_worker", "--set", "train.epochs=1",
                "--set", f"work_dir={tmp / 'work'}", "--set", f"export.export_dir={tmp / 'exports'}",
                "--set", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}"]
        procs.append(subprocess.Popen(args, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=420)[0])
    finally:
        for proc in procs:
            proc.kill()
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-4000:]
    return tmp, outputs


def test_workers_end_with_equal_weights(cluster_run):
    import keras

    import pipeline.tasks.translate.model  # noqa: F401  (registers the translator's layers)
    from components.models.saved import load_trained

    tmp, _ = cluster_run
    chief = load_trained(tmp / "work" / NAME / "train")
    worker = load_trained(tmp / "work" / ".workers" / "worker-1" / NAME / "train")
    for a, b in zip(chief.get_weights(), worker.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    keras.backend.clear_session()


def test_only_the_chief_logs_evaluates_and_exports(cluster_run):
    tmp, outputs = cluster_run
    assert "MLflow run" in outputs[0] and "test BLEU" in outputs[0]
    assert "trains only" in outputs[1] and "MLflow run" not in outputs[1]
    worker_root = tmp / "work" / ".workers" / "worker-1" / NAME
    assert sorted(p.name for p in worker_root.iterdir() if not p.name.startswith(".")) == ["prepare", "train"]
    client = mlflow.MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    assert sorted(r.data.tags.get("pipeline.stage") for r in runs if r not in parents) == \
        ["evaluate", "export", "prepare", "train"]
    assert sorted(p.name for p in (tmp / "exports" / NAME).iterdir()) == ["1"]


def test_exported_savedmodel_reloads_and_translates(cluster_run):
    tmp, _ = cluster_run
    code = ("import tensorflow as tf\n"
            f"m = tf.saved_model.load({str(tmp / 'exports' / NAME / '1')!r})\n"
            "out = m.signatures['serving_default'](inputs=tf.constant(['How are you?', 'Thank you.']))\n"
            "print(out['outputs'].shape[0])")
    proc = run_isolated_python(code, tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("2")


def test_the_workers_data_shards_partition_the_training_split(cluster_run):
    tmp, _ = cluster_run
    manifests = [json.loads((root / NAME / "train" / "manifest.json").read_text())
                 for root in (tmp / "work", tmp / "work" / ".workers" / "worker-1")]
    shards = [m["info"]["data_shards"] for m in manifests]
    assert [s["worker"] for s in shards] == ["worker-0", "worker-1"]
    split = shards[0]["split"]
    assert shards[1]["split"] == split and split["rows"] == 300  # max_train_examples of the tiny config
    local = [s["local"] for s in shards]
    assert all(part["rows"] > 0 for part in local)
    assert sum(part["rows"] for part in local) == split["rows"]
    assert sum(part["tokens"] for part in local) == split["tokens"]
    assert sum(part["digest"] for part in local) % (1 << 64) == split["digest"]
