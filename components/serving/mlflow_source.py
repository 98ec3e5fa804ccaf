"""Serve models from the MLflow Model Registry: `--model models:/NAME@ALIAS` (or `/VERSION`).

The URI is resolved to a registry version once, at start-up; that version's SavedModel is
downloaded into a TF Serving layout folder, `<cache>/<NAME>/<registry version>/saved_model.pb`
(written to a temporary folder and renamed, so a half-downloaded version is never served, and a
cached version is reused: registry versions are immutable), and the base path `<cache>/<NAME>` is
served under the model name NAME with a version policy pinned to that one version (the cache may
hold other versions of the same model). An alias also becomes a TF Serving version label, so
`/v1/models/NAME/labels/ALIAS` works.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from components.savedmodel.layout import is_saved_model_dir
from components.tracking.uri import MissingStoreError, check_store_exists

from .config import ConfigError, ModelConfig, VersionPolicy

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = os.path.join("work", "registry_models")


class SourceError(RuntimeError):
    """The registry could not provide the model (not found, unreachable, download failed)."""


def check_model_uri(uri: str) -> None:
    """Syntax check only (no MLflow import), so flag errors stay fast."""
    from components.tracking.registry import RegistryError, parse_models_uri

    try:
        ref = parse_models_uri(uri)
    except RegistryError as err:
        raise ConfigError(f"--model: {err}") from None
    if ":" in ref.name or " " in ref.name:
        raise ConfigError(f"--model: registered model name {ref.name!r} cannot be served under TF Serving "
                          "URLs (no ':' or spaces); register it under another name")


def fetch_model(uri: str, cache_dir: str | os.PathLike, tracking_uri: str) -> ModelConfig:
    """Resolve `uri` in the registry, make sure its version is in the cache, return what to serve."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow.exceptions import MlflowException

    from components.tracking.registry import RegistryError, parse_models_uri, resolve_model_uri

    ref = parse_models_uri(uri)
    try:  # don't create an empty store by looking into it
        check_store_exists(tracking_uri, "pass --tracking_uri or set MLFLOW_TRACKING_URI")
    except MissingStoreError as err:
        raise SourceError(str(err)) from None
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = resolve_model_uri(client, ref)
    except RegistryError as err:
        raise SourceError(str(err)) from None
    except MlflowException as err:
        raise SourceError(f"cannot resolve {uri} in {tracking_uri}: {err.message}") from None
    except OSError as err:  # connection refused and friends
        raise SourceError(f"cannot reach the MLflow tracking server {tracking_uri}: {err}") from None
    number = int(version.version)
    base = Path(cache_dir).resolve() / ref.name
    final = base / str(number)
    if is_saved_model_dir(final):
        log.info("Using cached %s version %d in %s", ref.name, number, final)
    else:
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f".tmp-download-{uuid.uuid4().hex[:8]}"  # not an integer name: never served
        tmp.mkdir()
        log.info("Downloading %s (version %d, source %s) into %s", uri, number, version.source, final)
        try:
            # What a models:/NAME/VERSION download does, with this process's registry URI left alone:
            # MLflow 3.17 resolves models:/ URIs through the global registry URI even when
            # download_artifacts is given registry_uri.
            download_uri = client.get_model_version_download_uri(ref.name, str(number))
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=download_uri, dst_path=str(tmp),
                                                             tracking_uri=tracking_uri))
            if not is_saved_model_dir(local):
                raise SourceError(f"{uri} (version {number}, {download_uri}) has no saved_model.pb at its "
                                  "root; was it registered from an export's saved_model/ artifacts?")
            if final.exists():  # an incomplete folder from elsewhere; replace it
                shutil.rmtree(final)
            os.replace(local, final)
        except MlflowException as err:
            raise SourceError(f"downloading {uri} failed: {err.message}") from None
        except OSError as err:
            raise SourceError(f"downloading {uri} failed: {err}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    labels = {ref.alias: number} if ref.alias else {}
    log.info("Serving %s as model %s version %d", uri, ref.name, number)
    return ModelConfig(name=ref.name, base_path=str(base),
                       version_policy=VersionPolicy(kind="specific", versions=frozenset({number})),
                       version_labels=labels)
