"""`python -m pipeline compare` on real pipeline runs that differ in one parameter.

Two backends, the same checks: a sqlite store (two runs of the tiny config in one work folder,
the second with another learning rate: prepare is reused) and the session's real `mlflow
server` (the shared `tiny_translator` run plus one run with another learning rate; that run
needs its own work folder, so `work_dir` and `export.export_dir` differ too).
"""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import matplotlib.image
import mlflow
import pytest

from tests.support.subprocess_run import run_cli

pytestmark = pytest.mark.slow
CONFIG = "configs/test_translate_tiny.yaml"
EXPERIMENT = "test_translate_tiny"
BASE_LR, OTHER_LR = "0.005", "0.02"  # configs/test_translate_tiny.yaml has 0.005
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Backend:
    uri: str
    run_ids: list[str]  # [base learning rate, other learning rate]
    filter: str | None  # to pick our two runs out of a shared experiment
    location_params: list[str]  # params that differ only because the runs used different folders
    root: object


def _run_id(stdout: str) -> str:
    return re.search(r"done in .*MLflow run ([0-9a-f]{32})", stdout).group(1)


def _pipeline(args: list[str], env: dict | None = None) -> str:
    proc = run_cli(args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return _run_id(proc.stdout)


def _sqlite_runs(root) -> Backend:
    uri = f"sqlite:///{root}/mlflow.db"
    # Create the experiment first so its artifacts go to the temp folder, not ./mlruns.
    mlflow.MlflowClient(tracking_uri=uri).create_experiment(EXPERIMENT, artifact_location=str(root / "artifacts"))
    base = ["run", CONFIG, "--set", f"work_dir={root}/work", "--set", f"export.export_dir={root}/exports",
            "--set", f"mlflow.tracking_uri={uri}", "--set", "evaluate.train_sample_size=0"]  # (faster; same in both)
    ids = [_pipeline(base), _pipeline(base + ["--set", f"train.learning_rate={OTHER_LR}"])]
    return Backend(uri, ids, None, [], root)


def _server_runs(root, tiny_translator, server_url) -> Backend:
    _, _, out = tiny_translator
    other = _pipeline(["run", CONFIG, "--set", f"work_dir={root}/work", "--set", f"export.export_dir={root}/exports",
                       "--set", f"train.learning_rate={OTHER_LR}"], env={"MLFLOW_TRACKING_URI": server_url})
    ids = [_run_id(out), other]
    # Other tests log more runs of this config to the session's server: pick ours by id.
    run_filter = "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in ids) + ")"
    return Backend(server_url, ids, run_filter, ["export.export_dir", "work_dir"], root)


@pytest.fixture(scope="module")
def backends(tmp_path_factory, tiny_translator, mlflow_server_url) -> dict[str, Backend]:
    """The server's extra run goes in a second process while the sqlite pair runs (the sqlite pair
    shares a work folder, so it runs in order): two cores, about a third less wall time."""
    with ThreadPoolExecutor(1) as pool:
        server = pool.submit(_server_runs, tmp_path_factory.mktemp("compare_server"), tiny_translator,
                             mlflow_server_url)
        sqlite = _sqlite_runs(tmp_path_factory.mktemp("compare_sqlite"))
        return {"sqlite": sqlite, "server": server.result()}


@pytest.fixture(scope="module", params=["sqlite", "server"])
def backend(request, backends) -> Backend:
    return backends[request.param]


def _compare_args(b: Backend, *extra: str) -> list[str]:
    args = ["compare", "--tracking-uri", b.uri, "--experiment", EXPERIMENT, *extra]
    return args + (["--filter", b.filter] if b.filter else [])


def _without_code(keys):
    # code.* (commit, dirty flag, code hash) may legitimately differ if the checkout changed between
    # the two runs (other work goes on in this tree while the tests run); the config must not.
    return sorted(k for k in keys if not k.startswith("code."))


def test_compare_lists_both_runs_sorted_with_only_the_differing_param_and_plots(backend, tmp_path):
    png = tmp_path / "curves.png"
    proc = run_cli(_compare_args(backend, "--metric", "val_loss", "--metric", "test_bleu", "--format", "json",
                                 "--plot", str(png)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    runs = data["runs"]
    assert sorted(r["run_id"] for r in runs) == sorted(backend.run_ids)
    assert _without_code(data["differing_params"]) == sorted(["train.learning_rate", *backend.location_params])
    assert {r["run_id"]: r["params"]["train.learning_rate"] for r in runs} == dict(
        zip(backend.run_ids, [BASE_LR, OTHER_LR]))
    # val_loss: lower is better, so ascending
    assert data["sort"] == {"metric": "val_loss", "order": "asc"}
    losses = [r["metrics"]["val_loss"] for r in runs]
    assert losses == sorted(losses) and losses[0] != losses[1]
    assert all(r["metrics"]["test_bleu"] is not None and r["status"] == "FINISHED" for r in runs)
    assert all(r["duration_s"] > 0 for r in runs)

    data_bytes = png.read_bytes()
    assert data_bytes.startswith(PNG_SIGNATURE) and len(data_bytes) > 5 * 1024
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 400
    assert "plot:" in proc.stderr


def test_table_csv_markdown_top_and_order(backend, capsys):
    from pipeline.cli import main  # in-process: same code path, without another interpreter start-up

    ignore = [a for p in ["code.*", *backend.location_params] for a in ("--ignore-param", p)]
    assert main(_compare_args(backend, "--metric", "val_loss", *ignore)) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith(f"experiment '{EXPERIMENT}': 2 of 2 run(s), sorted by val_loss (lower is better)")
    assert table[1].split() == ["run", "run_id", "start", "duration", "status", "val_loss", "train.learning_rate"]
    assert len(table) == 5 and {line.split()[1] for line in table[3:]} == set(backend.run_ids)

    assert main(_compare_args(backend, "--metric", "val_loss", "--order", "desc", "--format", "csv", *ignore)) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == "run,run_id,start,duration,status,val_loss,train.learning_rate"
    assert [line.split(",")[1] for line in csv_lines[1:]] == [table[4].split()[1], table[3].split()[1]]

    assert main(_compare_args(backend, "--metric", "val_loss", "--top", "1", "--format", "markdown")) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].split("|")[1].strip() == "run" and len(md) == 3  # header, rule, one run
    assert table[3].split()[1] in md[2]  # the best run


def test_parent_run_records_data_code_time_throughput_and_size(backend):
    client = mlflow.MlflowClient(tracking_uri=backend.uri)
    run = client.get_run(backend.run_ids[1])
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    assert params["dataset"] == "tatoeba/urd-eng"
    assert params["dataset.split_sizes"] == "train=300,validation=132,test=130"
    assert re.fullmatch(r"[0-9a-f]{16}", params["dataset.fingerprint"])
    assert re.fullmatch(r"[0-9a-f]{16}", tags["pipeline.code_fingerprint"])
    if "mlflow.source.git.commit" in tags:
        assert tags["pipeline.git_dirty"] in ("true", "false")
    for key in ("time_prepare_s", "time_train_s", "time_evaluate_s", "time_export_s", "time_total_s",
                "train_tokens_per_sec", "model_parameters"):
        assert key in metrics, key
    assert metrics["model_parameters"] > 1000 and metrics["train_tokens_per_sec"] > 0


def test_unknown_experiment_and_metric_errors(backend, capsys):
    from pipeline.cli import main

    assert main(["compare", "--tracking-uri", backend.uri, "--experiment", "nope"]) == 1
    err = capsys.readouterr().err
    assert "experiment 'nope' not found" in err and f"'{EXPERIMENT}'" in err
    assert main(_compare_args(backend, "--metric", "test_blue")) == 1
    err = capsys.readouterr().err
    assert "has metric(s) test_blue" in err and "test_bleu" in err
