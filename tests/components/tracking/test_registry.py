"""Registry: find the export run, register, resolve models:/ URIs, download into a TF Serving layout.

Real MLflow runs and a real registry in a temporary sqlite store; the "SavedModel" is a pair of
files with known bytes (serving it is the end-to-end test's job).
"""
from __future__ import annotations

import mlflow
import pytest

from components.serving.config import ConfigError
from components.serving.flags import parse_args
from components.serving.mlflow_source import SourceError, fetch_model
from components.tracking.registry import (
    RegistryError,
    find_export_run,
    parse_models_uri,
    register_export,
    resolve_model_uri,
)


def _pipeline_run(client, exp_id, tmp_path, payload: bytes | None, cached_from: str | None = None):
    parent = client.create_run(exp_id, run_name="p", tags={"pipeline.model_name": "tiny"})
    pid = parent.info.run_id
    client.log_param(pid, "name", "tiny_cfg")
    client.log_metric(pid, "test_bleu", 12.5)
    tags = {"mlflow.parentRunId": pid, "pipeline.stage": "export",
            "skipped": "true" if cached_from else "false"}
    if cached_from:
        tags["cached_from_run"] = cached_from
    export = client.create_run(exp_id, run_name="export", tags=tags)
    if payload is not None:
        folder = tmp_path / f"sm-{export.info.run_id}"
        (folder / "variables").mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(payload)
        (folder / "variables" / "variables.index").write_bytes(b"index")
        client.log_artifacts(export.info.run_id, str(folder), "saved_model")
        client.log_metric(export.info.run_id, "export_version", 3)
    for run_id in (export.info.run_id, pid):
        client.set_terminated(run_id)
    return pid, export.info.run_id


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/m.db"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp_id = client.create_experiment("tiny", artifact_location=str(root / "artifacts"))
    first, first_export = _pipeline_run(client, exp_id, root, b"model-one")
    rerun, rerun_export = _pipeline_run(client, exp_id, root, None, cached_from=first_export)  # export skipped
    second, second_export = _pipeline_run(client, exp_id, root, b"model-two")
    return client, uri, root, {"first": (first, first_export), "rerun": (rerun, rerun_export),
                               "second": (second, second_export)}


def test_parse_models_uri():
    assert parse_models_uri("models:/m@champion").alias == "champion"
    ref = parse_models_uri("models:/m/7")
    assert (ref.name, ref.version, ref.alias) == ("m", "7", None)
    assert parse_models_uri("models:/m/latest").version == "latest"
    for bad in ("models:/m", "runs:/abc/saved_model", "models:/m/x", "models:/m@a/1"):
        with pytest.raises(RegistryError, match="models:/NAME"):
            parse_models_uri(bad)


def test_find_export_run_from_parent_export_or_cached_rerun(registry):
    client, _, _, runs = registry
    first, first_export = runs["first"]
    assert find_export_run(client, first)[0].info.run_id == first_export
    export, parent = find_export_run(client, first_export)
    assert export.info.run_id == first_export and parent.info.run_id == first
    rerun, _ = runs["rerun"]
    export, parent = find_export_run(client, rerun)  # the skipped export points at the run that exported
    assert export.info.run_id == first_export and parent.info.run_id == rerun
    with pytest.raises(RegistryError, match="not found"):
        find_export_run(client, "0" * 32)


def test_register_alias_resolve_and_fetch_into_tf_serving_layout(registry, tmp_path):
    client, uri, _, runs = registry
    v1 = register_export(client, runs["first"][0], alias="champion")
    assert v1.name == "tiny"  # the pipeline's model name, from the parent run
    assert v1.run_id == runs["first"][1]
    assert v1.tags["pipeline.run_id"] == runs["first"][0] and v1.tags["metric.test_bleu"] == "12.5"
    assert v1.tags["pipeline.export_version"] == "3"
    v2 = register_export(client, runs["second"][1], name="tiny")  # an export run id works too
    assert int(v2.version) == int(v1.version) + 1
    assert resolve_model_uri(client, "models:/tiny@champion").version == v1.version
    assert resolve_model_uri(client, "models:/tiny/latest").version == v2.version
    with pytest.raises(RegistryError, match=r"aliases: @champion->v1"):
        resolve_model_uri(client, "models:/tiny@nope")
    not_found = r"registered model 'nah' not found in sqlite:.*; registered models: 'tiny'"
    with pytest.raises(RegistryError, match=not_found):
        resolve_model_uri(client, "models:/nah@champion")

    cache = tmp_path / "cache"
    second = fetch_model(f"models:/tiny/{v2.version}", cache, uri)
    champion = fetch_model("models:/tiny@champion", cache, uri)
    assert champion.name == "tiny" and champion.base_path == str(cache / "tiny")
    # The cache holds both versions; the policy pins the one the alias names.
    assert champion.version_policy.select([1, 2]) == {1}
    assert champion.version_labels == {"champion": 1}
    assert second.version_policy.select([1, 2]) == {2}
    assert (cache / "tiny" / "1" / "saved_model.pb").read_bytes() == b"model-one"
    assert (cache / "tiny" / "2" / "saved_model.pb").read_bytes() == b"model-two"
    assert (cache / "tiny" / "1" / "variables" / "variables.index").read_bytes() == b"index"
    assert sorted(p.name for p in (cache / "tiny").iterdir()) == ["1", "2"]  # no temp folders left
    with pytest.raises(SourceError, match="not found"):
        fetch_model("models:/tiny/9", cache, uri)


def test_register_errors(registry):
    client, _, _, runs = registry
    with pytest.raises(RegistryError, match="no export stage run"):
        lone = client.create_run(client.get_run(runs["first"][0]).info.experiment_id, run_name="lone")
        register_export(client, lone.info.run_id)


def test_serve_flags_for_registry_models():
    config = parse_args(["--model", "models:/tiny@champion", "--tracking_uri", "sqlite:///x.db"])
    assert config.models == () and config.registry_models == ("models:/tiny@champion",)
    assert config.tracking_uri == "sqlite:///x.db"
    both = parse_args(["--model_name=a", "--model_base_path=/tmp/a", "--model=models:/b/2"])
    assert [m.name for m in both.models] == ["a"] and both.registry_models == ("models:/b/2",)
    with pytest.raises(ConfigError, match="--model: expected models:/NAME@ALIAS"):
        parse_args(["--model", "models:/tiny"])
    with pytest.raises(ConfigError, match="--model models:/NAME@ALIAS"):
        parse_args([])
