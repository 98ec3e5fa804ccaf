"""The MLflow Model Registry as the road to serving.

`register_export` takes a pipeline run (or its export stage run), finds what the export stage
logged, and registers it as a new version of a registered model (default name: the pipeline's
model name), optionally pointing an alias at it: the MLflow Model (LoggedModel; MLmodel + the
unchanged SavedModel, components/tracking/model_logging.py) through `mlflow.register_model`, or,
for runs exported before those existed, the bare SavedModel under `saved_model/`.
`resolve_model_uri` turns `models:/NAME@ALIAS` or `models:/NAME/VERSION` into that version, for
the server (components/serving/mlflow_source.py) to download and serve.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mlflow is imported lazily: parsing a models:/ URI must stay cheap
    from mlflow.entities.model_registry import ModelVersion

SAVED_MODEL_PATH = "saved_model"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))$")
# Parent-run metrics copied onto the model version as tags, so the registry shows them.
SUMMARY_METRICS = ("test_bleu", "test_perplexity", "val_loss", "val_perplexity", "test_bpc")


class RegistryError(ValueError):
    """A registry operation cannot be done; the message is meant for the user."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    alias: str | None = None
    version: str | None = None  # a number, or "latest"

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def parse_models_uri(uri: str) -> ModelRef:
    match = _MODELS_URI.match(uri.strip())
    version = match["version"] if match else None
    if not match or (version is not None and not (version.isdigit() or version == "latest")):
        raise RegistryError(f"expected models:/NAME@ALIAS or models:/NAME/VERSION (VERSION: a number or "
                            f"'latest'), got {uri!r}")
    return ModelRef(match["name"], match["alias"], version)


def _mlflow_exception():
    from mlflow.exceptions import MlflowException
    return MlflowException


def _get_run(client, run_id: str):
    MlflowException = _mlflow_exception()
    try:
        return client.get_run(run_id)
    except MlflowException as err:
        raise RegistryError(f"run {run_id!r} not found in {client.tracking_uri}: {err.message}") from None


def find_export_run(client, run_id: str):
    """The run holding the SavedModel: RUN_ID itself if it is an export stage run, else the export
    stage run nested under the pipeline run RUN_ID; a skipped (cached) export leads to the run
    that actually exported. Returns (export run, pipeline run or None)."""
    run = _get_run(client, run_id)
    stage = run.data.tags.get("pipeline.stage")
    if stage is None:
        children = client.search_runs(
            [run.info.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{run_id}' and tags.`pipeline.stage` = 'export'",
            max_results=5)
        if not children:
            raise RegistryError(f"run {run_id} has no export stage run; run the pipeline through its "
                                "export stage first (or pass the export stage's run id)")
        export = children[0]
    elif stage == "export":
        export = run
    else:
        raise RegistryError(f"run {run_id} is the {stage!r} stage run; pass its pipeline (parent) run "
                            "or the export stage run")
    parent_id = export.data.tags.get("mlflow.parentRunId")
    parent = run if stage is None else (_get_run(client, parent_id) if parent_id else None)
    seen = {export.info.run_id}
    while export.data.tags.get("skipped") == "true" and export.data.tags.get("cached_from_run"):
        export = _get_run(client, export.data.tags["cached_from_run"])
        if export.info.run_id in seen:
            break
        seen.add(export.info.run_id)
    files = {a.path for a in client.list_artifacts(export.info.run_id, SAVED_MODEL_PATH)}
    if f"{SAVED_MODEL_PATH}/saved_model.pb" not in files:
        raise RegistryError(f"export run {export.info.run_id} has no {SAVED_MODEL_PATH}/saved_model.pb artifact")
    return export, parent


def find_logged_model(client, export_run):
    """The MLflow Model (LoggedModel) the export stage logged on `export_run`, or None for runs
    exported before exports were logged as MLflow Models."""
    models = client.search_logged_models(experiment_ids=[export_run.info.experiment_id],
                                         filter_string=f"source_run_id = '{export_run.info.run_id}'",
                                         order_by=[{"field_name": "creation_time", "ascending": False}])
    ready = [m for m in models if str(getattr(m.status, "name", m.status)).upper().endswith("READY")]
    return ready[0] if ready else None


@contextlib.contextmanager
def global_uris(tracking_uri: str, registry_uri: str | None = None):
    """Point MLflow's global tracking/registry URIs at a store for the block, then restore them and
    the MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI environment (mlflow.set_tracking_uri exports
    the URI to the environment, so child processes would otherwise inherit it)."""
    import os

    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    env = {k: os.environ.get(k) for k in names}
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def default_model_name(export_run, parent_run) -> str:
    for run in (parent_run, export_run):
        if run is None:
            continue
        if run.data.tags.get("pipeline.model_name"):
            return run.data.tags["pipeline.model_name"]
        params = run.data.params
        if params.get("export.model_name") not in (None, "", "None"):
            return params["export.model_name"]
        if params.get("name"):
            return params["name"]
    raise RegistryError("cannot tell the pipeline's model name from the run; pass --name")


def register_export(client, run_id: str, name: str | None = None, alias: str | None = None) -> "ModelVersion":
    """Register the SavedModel of a pipeline run as a new model version; optionally set an alias."""
    MlflowException = _mlflow_exception()
    export, parent = find_export_run(client, run_id)
    name = name or default_model_name(export, parent)
    try:
        client.create_registered_model(name, description="SavedModel (TF Serving layout) exported by the pipeline")
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    tags = {"pipeline.export_run_id": export.info.run_id}
    if parent is not None:
        tags["pipeline.run_id"] = parent.info.run_id
        tags.update({f"metric.{k}": f"{parent.data.metrics[k]:.6g}" for k in SUMMARY_METRICS
                     if k in parent.data.metrics})
        if "mlflow.source.git.commit" in parent.data.tags:
            tags["git_commit"] = parent.data.tags["mlflow.source.git.commit"]
    if "export_version" in export.data.metrics:
        tags["pipeline.export_version"] = str(int(export.data.metrics["export_version"]))
    description = f"pipeline run {parent.info.run_id if parent else '?'}"
    logged = find_logged_model(client, export)
    if logged is not None:  # an MLflow Model (MLmodel + the SavedModel): what MLflow's own tools load
        tags["pipeline.logged_model_id"] = logged.model_id
        with global_uris(client.tracking_uri, client._registry_uri):  # register_model uses the global URIs
            import mlflow

            version = mlflow.register_model(f"models:/{logged.model_id}", name, tags=tags)
        client.update_model_version(name, version.version, description=description)
    else:
        # Exports from before issue 19 are plain SavedModel artifacts (no MLmodel file): the
        # version is created from the run's artifact folder, as then.
        source = f"{export.info.artifact_uri.rstrip('/')}/{SAVED_MODEL_PATH}"
        version = client.create_model_version(name, source=source, run_id=export.info.run_id, tags=tags,
                                              description=description)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return client.get_model_version(name, version.version)


def resolve_model_uri(client, uri: str | ModelRef) -> "ModelVersion":
    """models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/latest -> the model version."""
    MlflowException = _mlflow_exception()
    ref = parse_models_uri(uri) if isinstance(uri, str) else uri
    try:
        client.get_registered_model(ref.name)
    except MlflowException:
        names = [m.name for m in client.search_registered_models()]
        raise RegistryError(f"registered model {ref.name!r} not found in {client.tracking_uri}; registered "
                            f"models: {', '.join(repr(n) for n in names) or '(none)'}") from None
    try:
        if ref.alias:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        if ref.version == "latest":
            versions = client.search_model_versions(f"name = '{ref.name}'")
            if not versions:
                raise RegistryError(f"registered model {ref.name!r} has no versions")
            return max(versions, key=lambda v: int(v.version))
        return client.get_model_version(ref.name, ref.version)
    except MlflowException:
        model = client.get_registered_model(ref.name)
        aliases = ", ".join(f"@{a}->v{v}" for a, v in sorted((model.aliases or {}).items())) or "(none)"
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{ref.name}'"))
        raise RegistryError(f"{ref} not found; versions of {ref.name!r}: {versions or '(none)'}; "
                            f"aliases: {aliases}") from None
