"""Registry round trip on the session's real `mlflow server`: register the tiny translator's export,
point an alias at it, serve `models:/NAME@ALIAS`, translate over REST."""
from __future__ import annotations

import json
import re

import mlflow
import pytest
import requests

from components.serving.mlflow_source import fetch_model
from components.tracking.registry import register_export
from tests.components.serving.conftest import ServerProcess
from tests.support.subprocess_run import run_cli

pytestmark = pytest.mark.slow
NAME = "test_translate_tiny"  # the pipeline's model name (export.model_name defaults to the config name)


@pytest.fixture(scope="module")
def registered(tiny_translator, mlflow_server_url):
    root, _, out = tiny_translator
    parent = re.search(r"done in .*MLflow run ([0-9a-f]{32})", out).group(1)
    proc = run_cli(["register", parent, "--alias", "champion"], env={"MLFLOW_TRACKING_URI": mlflow_server_url})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    version = re.search(rf"registered models:/{NAME}/(\d+) from export run ([0-9a-f]{{32}})", proc.stdout)
    assert version, proc.stdout
    client = mlflow.MlflowClient(tracking_uri=mlflow_server_url, registry_uri=mlflow_server_url)
    return {"root": root, "parent": parent, "version": int(version.group(1)), "export_run": version.group(2),
            "stdout": proc.stdout, "client": client, "uri": mlflow_server_url}


def _export_examples(client, export_run_id, tmp_path) -> dict[str, str]:
    """The translations the export stage checked in process (reloaded SavedModel == in-process decode)."""
    path = mlflow.artifacts.download_artifacts(run_id=export_run_id, artifact_path="manifest/manifest.json",
                                               dst_path=str(tmp_path), tracking_uri=client.tracking_uri)
    examples = json.loads(open(path, encoding="utf-8").read())["info"]["examples"]
    assert examples, "the export stage recorded no examples"
    return examples


def test_register_points_the_alias_at_the_export_run(registered):
    client = registered["client"]
    by_alias = client.get_model_version_by_alias(NAME, "champion")
    assert int(by_alias.version) == registered["version"]
    assert by_alias.run_id == registered["export_run"]
    export = client.get_run(registered["export_run"])
    assert export.data.tags["pipeline.stage"] == "export"
    assert export.data.tags["mlflow.parentRunId"] == registered["parent"]
    assert by_alias.tags["pipeline.run_id"] == registered["parent"]
    assert "metric.test_bleu" in by_alias.tags
    assert f"--model models:/{NAME}@champion" in registered["stdout"]


def test_serve_models_alias_translates_like_the_export(registered, tmp_path):
    client, root = registered["client"], registered["root"]
    champion = registered["version"]
    expected = _export_examples(client, registered["export_run"], tmp_path)
    # A second, newer version (registered from the export run id itself) sits in the same cache:
    # serving @champion must still serve the version the alias names, not the newest one.
    newer = register_export(client, registered["export_run"], name=NAME)
    assert int(newer.version) > champion
    cache = tmp_path / "cache"
    fetch_model(f"models:/{NAME}/{newer.version}", cache, registered["uri"])

    server = ServerProcess([f"--model=models:/{NAME}@champion", f"--tracking_uri={registered['uri']}",
                            f"--model_cache_dir={cache}", "--file_system_poll_wait_seconds=0"],
                           tmp_path / "server.log")
    try:
        status = server.wait_available(NAME, timeout=120)
        assert [s["version"] for s in status["model_version_status"]] == [str(champion)]
        sources = list(expected)
        reply = requests.post(f"{server.url}/v1/models/{NAME}:predict", json={"instances": sources}, timeout=60)
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"predictions": [expected[s] for s in sources]}
        by_label = requests.post(f"{server.url}/v1/models/{NAME}/labels/champion:predict",
                                 json={"inputs": {"inputs": sources}}, timeout=60)
        assert by_label.json() == {"outputs": [expected[s] for s in sources]}
    finally:
        assert server.terminate() == 0, server.log_text()[-3000:]
    # The served files are the exported ones, in TF Serving layout.
    exported = root / "exports" / NAME / "1"
    served = cache / NAME / str(champion)
    assert (served / "saved_model.pb").read_bytes() == (exported / "saved_model.pb").read_bytes()
    assert sorted(p.name for p in (cache / NAME).iterdir()) == sorted([str(champion), newer.version])


def test_serve_unknown_registry_model_fails_clearly(registered):
    proc = run_cli(["serve", f"--model=models:/{NAME}@nope", f"--tracking_uri={registered['uri']}"], timeout=120)
    assert proc.returncode == 1
    assert f"models:/{NAME}@nope not found" in proc.stderr and "@champion" in proc.stderr
