"""Which MLflow store a run logs to (no `mlflow` import: the CLI's pre-flight uses it before any).

The one home of the tracking-URI default and of the missing-sqlite-store check: the pipeline's
tracker, `compare`/`register`, `serve --model models:/...` and the `translate`/`evaluate`
commands' registry resolution all use it. Serving may import it (it pulls in nothing of tracking).
"""
from __future__ import annotations

import os

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
_SQLITE_PREFIX = "sqlite:///"


class MissingStoreError(FileNotFoundError):
    """The tracking URI names a local sqlite file that does not exist (the message says which)."""


def resolve_tracking_uri(configured: str | None) -> str:
    """The URI to use: the one given (flag or config), else `$MLFLOW_TRACKING_URI`, else the local sqlite file."""
    return configured or os.environ.get(TRACKING_URI_ENV) or DEFAULT_TRACKING_URI


def check_store_exists(uri: str, hint: str) -> None:
    """Fail when `uri` is a missing sqlite file, because MLflow would silently create an empty store there.

    Readers (compare, register, registry downloads) call this before opening a client, so a typo
    in the URI is an error naming the file rather than "no such experiment" from a fresh store.
    `hint` ends the message with what the user can do about it. Other URIs are not checked.
    """
    if not uri.startswith(_SQLITE_PREFIX):
        return
    path = uri[len(_SQLITE_PREFIX):]
    if path and path != ":memory:" and not os.path.exists(path):
        raise MissingStoreError(f"no MLflow store at {uri} ({os.path.abspath(path)} does not exist); {hint}")
