"""`python -m pipeline sweep`: trials are pipeline runs that reuse cached stages, nested under
one sweep run; the study resumes; a bad space fails before any trial; `compare --sweep`."""
from __future__ import annotations

import json
import re

import mlflow
import pytest

from tests.support.subprocess_run import run_cli

CONFIG = "configs/test_translate_tiny.yaml"
METRIC = "val_loss"
SPACE = "train.learning_rate: {log_uniform: [1e-3, 2e-2]}\nmodel.units: {choice: [8, 16]}\n"


def _sweep_args(root, trials: int, space) -> list[str]:
    uri = f"sqlite:///{root}/mlflow.db"
    return ["sweep", CONFIG, "--space", str(space), "--trials", str(trials), "--sampler", "random",
            "--metric", METRIC, "--stages", "prepare,train,evaluate",
            "--set", f"work_dir={root}/work", "--set", f"export.export_dir={root}/exports",
            "--set", f"mlflow.tracking_uri={uri}", "--set", "train.epochs=1", "--set", "train.steps_per_epoch=3",
            "--set", "evaluate.max_test_examples=8", "--set", "evaluate.examples=[]"]


def test_bad_space_key_fails_before_any_trial(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("train.learnig_rate: {log_uniform: [1e-4, 1e-2]}\n")
    proc = run_cli(_sweep_args(tmp_path, 2, space))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr  # one line
    assert "unknown config key 'train.learnig_rate'" in proc.stderr and "train.learning_rate" in proc.stderr
    assert "trial" not in proc.stdout
    assert not (tmp_path / "work").exists() and not (tmp_path / "mlflow.optuna.db").exists()


def test_bad_range_fails_before_any_trial(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("model.dropout: {uniform: [0.2, 1.5]}\n")  # the schema caps dropout below 1
    proc = run_cli(_sweep_args(tmp_path, 2, space))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: model.dropout: 1.5 is not a valid value"), proc.stderr
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_bad_workers_count_fails_in_one_line(tmp_path, workers):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    proc = run_cli([*_sweep_args(tmp_path, 2, space), "--workers", workers])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == f"error: --workers must be at least 1, not {workers}\n"
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_sweep_reuses_prepare_nests_trials_resumes_and_compares(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    proc = run_cli(_sweep_args(tmp_path, 4, space))
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert len(re.findall(r"\] prepare\s+done", out)) == 1, out
    assert len(re.findall(r"\] prepare\s+skipped", out)) == 3, out
    sweep_run = re.search(r"sweep run ([0-9a-f]{32})", out).group(1)
    assert re.search(r"best: trial \d \(val_loss [0-9.]+\); MLflow run [0-9a-f]{32}", out), out

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("test_translate_tiny")
    trials = client.search_runs([experiment.experiment_id],
                                filter_string=f"tags.`mlflow.parentRunId` = '{sweep_run}'")
    assert len(trials) == 4
    for run in trials:
        assert METRIC in run.data.metrics
        assert {"train.learning_rate", "model.units"} <= set(run.data.params)
        assert run.data.tags["sweep.trial"] in {"0", "1", "2", "3"}
    parent = client.get_run(sweep_run)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics[f"best_{METRIC}"] == min(r.data.metrics[METRIC] for r in trials)

    # compare lists the 4 trials, best first by the metric
    cmp = run_cli(["compare", "--sweep", sweep_run, "--metric", METRIC, "--format", "json",
                   "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"])
    assert cmp.returncode == 0, cmp.stderr
    listed = json.loads(cmp.stdout)["runs"]
    assert len(listed) == 4
    values = [r["metrics"][METRIC] for r in listed]
    assert values == sorted(values)

    # the same command with --trials 6 continues the study: 2 more trials, under the same sweep run
    again = run_cli(_sweep_args(tmp_path, 6, space))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "4 trial(s) done, 2 to run" in again.stdout
    assert len(re.findall(r"^--- trial \d: train", again.stdout, re.M)) == 2, again.stdout
    assert re.search(r"sweep run ([0-9a-f]{32})", again.stdout).group(1) == sweep_run
    assert len(client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{sweep_run}'")) == 6


@pytest.mark.slow
def test_parallel_workers_share_prepare_stop_on_ctrl_c_and_resume(tmp_path):
    """--workers 2: Ctrl-C to the parent stops both workers (exit 130, every lock free), the same
    command continues the study under the same sweep run; prepare is built once in all."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from components.runtime.locks import WorkLock
    from tests.support.subprocess_run import ROOT

    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    argv = [*_sweep_args(tmp_path, 3, space), "--workers", "2"]
    parent = subprocess.Popen([sys.executable, "-m", "pipeline", *argv], cwd=ROOT, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    deadline = time.time() + 600
    for line in parent.stdout:  # until both workers train (one built prepare, the other waited)
        lines.append(line)
        if sum("train     running" in x for x in lines) == 2 or time.time() > deadline:
            break
    parent.send_signal(signal.SIGINT)
    first = "".join(lines) + parent.stdout.read()
    assert parent.wait(120) == 130, first[-3000:]
    assert "2 worker processes, each with 1 TensorFlow intra-op thread(s)" in first
    assert "rerun the same command to continue it" in first
    assert len(re.findall(r"^\[w[01]\] interrupted", first, re.M)) == 2, first[-3000:]
    root = tmp_path / "work" / "test_translate_tiny"
    for folder in (root, root / ".sweep-workers" / "0" / "test_translate_tiny",
                   root / ".sweep-workers" / "1" / "test_translate_tiny"):
        WorkLock(folder).acquire().release()  # no worker lives on holding its folder

    again = run_cli(argv)
    out = again.stdout
    assert again.returncode == 0, out[-3000:] + again.stderr[-3000:]
    done = int(re.search(r"(\d) trial\(s\) done, (\d) to run", out).group(1))
    assert len(re.findall(r"^\[w\d\] --- trial \d+: val_loss", out, re.M)) == 3 - done
    both = first + out
    assert len(re.findall(r"\] prepare\s+done", both)) == 1, both  # built once, by one worker
    assert len(re.findall(r"\] prepare\s+skipped", out)) == 3 - done
    sweep_run = re.search(r"sweep run ([0-9a-f]{32})", out).group(1)

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("test_translate_tiny")
    sweeps = client.search_runs([experiment.experiment_id], filter_string="tags.`pipeline.sweep` = 'true'")
    assert [r.info.run_id for r in sweeps] == [sweep_run]  # the rerun reopened the interrupted run's sweep
    trials = client.search_runs([experiment.experiment_id],
                                filter_string=f"tags.`mlflow.parentRunId` = '{sweep_run}'")
    finished = [r for r in trials if r.info.status == "FINISHED"]
    assert len(finished) == 3 and all(METRIC in r.data.metrics for r in finished)
    assert {r.info.status for r in trials} <= {"FINISHED", "KILLED"}  # the interrupted ones: KILLED
    assert len(trials) == 3 + len(re.findall(r"INTERRUPTED", out))
    assert client.get_run(sweep_run).info.status == "FINISHED"
