"""Exports as MLflow Models (issue 19): after a tiny run and `register`, MLflow's own tools load and
serve the registered version and give what this project's `translate` / `score` give; versions
registered before (bare SavedModel artifacts) still work with our commands."""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import requests

from components.tracking.registry import global_uris  # pyfunc/search use MLflow's global URIs
from tests.support.mlflow_server import free_port
from tests.support.subprocess_run import ROOT, run_cli, stop_process_group

pytestmark = pytest.mark.slow
TRANSLATOR = "tiny_translator_mlflow_model"  # names of their own: other tests register the config name
LM = "tiny_lm_mlflow_model"
LINES = ["How are you?", "Thank you.", "I am here ."]


def _register(stdout: str, uri: str, name: str, alias: str) -> dict:
    parent = re.search(r"done in .*MLflow run ([0-9a-f]{32})", stdout).group(1)
    proc = run_cli(["register", parent, "--name", name, "--alias", alias, "--tracking-uri", uri])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = re.search(rf"registered models:/{name}/(\d+) from export run ([0-9a-f]{{32}})", proc.stdout)
    assert found, proc.stdout
    return {"parent": parent, "version": found.group(1), "export_run": found.group(2)}


@pytest.fixture(scope="module")
def translator(tiny_translator, mlflow_server_url):
    root, _, out = tiny_translator
    return {"root": root, "uri": mlflow_server_url, **_register(out, mlflow_server_url, TRANSLATOR, "prod")}


@pytest.fixture(scope="module")
def lm(tiny_lm):
    root, _, uri, out = tiny_lm
    return {"root": root, "uri": uri, **_register(out, uri, LM, "prod")}


def _cli_translate(model: str, uri: str, tmp_path: Path) -> list[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "src.txt"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    proc = run_cli(["translate", model, "--input", str(src), "--tracking-uri", uri,
                    "--cache-dir", str(tmp_path / "cache")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


def test_export_is_a_logged_model_found_by_search(translator):
    with global_uris(translator["uri"]):
        client = mlflow.MlflowClient()
        run = client.get_run(translator["export_run"])
        models = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list",
                                             filter_string=f"source_run_id = '{translator['export_run']}'")
        assert [m.name for m in models] == ["test_translate_tiny"]
        version = client.get_model_version(TRANSLATOR, translator["version"])
        # registered from that LoggedModel (the source is its models:/m-... URI)
        assert version.source == f"models:/{models[0].model_id}"
        assert version.tags["pipeline.logged_model_id"] == models[0].model_id
        info = mlflow.models.get_model_info(f"models:/{models[0].model_id}")
        requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{models[0].model_id}")).read_text()
    assert info.signature.inputs.to_dict() == [{"type": "string", "required": True}]
    assert info.metadata["task"] == "translate" and info.metadata["export_version"] == 1
    assert "tensorflow==" in requirements and "mlflow==" in requirements


def test_pyfunc_load_model_translates_like_the_translate_command(translator, tmp_path):
    with global_uris(translator["uri"]):
        model = mlflow.pyfunc.load_model(f"models:/{TRANSLATOR}@prod")
        got = list(model.predict(LINES))
    assert got == _cli_translate(f"models:/{TRANSLATOR}@prod", translator["uri"], tmp_path)


def test_versions_registered_before_mlflow_models_still_work(translator, tmp_path):
    """A version made the old way (a bare saved_model/ artifact folder) translates as before."""
    client = mlflow.MlflowClient(tracking_uri=translator["uri"], registry_uri=translator["uri"])
    run = client.get_run(translator["export_run"])
    old = client.create_model_version(TRANSLATOR, source=f"{run.info.artifact_uri}/saved_model",
                                      run_id=translator["export_run"])
    old_out = _cli_translate(f"models:/{TRANSLATOR}/{old.version}", translator["uri"], tmp_path / "old")
    assert old_out == _cli_translate(f"models:/{TRANSLATOR}@prod", translator["uri"], tmp_path / "new")


@contextlib.contextmanager
def mlflow_models_serve(model_uri: str, tracking_uri: str, log: Path):
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    # MLflow starts the scoring server as `uvicorn` from PATH: the environment's bin/ goes first.
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri,
           "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": f"{mlflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(mlflow_bin), "models", "serve", "-m", model_uri, "--env-manager", "local",
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                        break
                time.sleep(0.5)
            yield url
        finally:
            stop_process_group(proc, timeout=30)


def test_mlflow_models_serve_answers_like_the_translate_command(translator, tmp_path):
    expected = _cli_translate(f"models:/{TRANSLATOR}@prod", translator["uri"], tmp_path)
    with mlflow_models_serve(f"models:/{TRANSLATOR}@prod", translator["uri"], tmp_path / "serve.log") as url:
        reply = requests.post(f"{url}/invocations", json={"inputs": LINES}, timeout=120)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": expected}


def test_pyfunc_lm_scores_like_the_score_command(lm, tmp_path):
    texts = ["ROMEO: what say you?", "First Citizen:", "speak, speak."]
    with global_uris(lm["uri"]):
        model = mlflow.pyfunc.load_model(f"models:/{LM}@prod")
        table = model.predict(texts)
        generated = model.predict(["ROMEO:"], params={"mode": "generate", "max_tokens": 12, "seed": 7})
    src = tmp_path / "text.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    common = ["--tracking-uri", lm["uri"], "--cache-dir", str(tmp_path / "cache"), "--json"]
    proc = run_cli(["score", f"models:/{LM}@prod", "--input", str(src), "--chunk-lines", "1", *common])
    assert proc.returncode == 0, proc.stderr[-3000:]
    cli = json.loads(proc.stdout)
    assert int(table["tokens"].sum()) == cli["tokens"]
    assert float(table["log_likelihood"].sum()) == pytest.approx(cli["log_likelihood"], rel=1e-6)
    proc = run_cli(["generate", f"models:/{LM}@prod", "--prompt", "ROMEO:", "--max-tokens", "12", "--seed", "7",
                    *common])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert generated == [json.loads(proc.stdout)["outputs"][0]["text"]]
