"""Checks that run before TensorFlow is imported and before any MLflow run is opened.

Each environment fault found here costs a second and one `error:` line; found later it costs
a TensorFlow start, an MLflow run left FAILED, or (an unwritable export folder) a whole
training. Nothing here imports TensorFlow or MLflow.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

MIN_FREE_BYTES = 64 * 2**20  # below this a checkpoint or an export will not fit


class PreflightError(RuntimeError):
    pass


def os_error_line(err: OSError, fallback: str | Path = "") -> str:
    """`<path>: <reason>` for ENOSPC, EROFS, EACCES and friends (no traceback, no errno soup)."""
    path = err.filename or fallback
    reason = err.strerror or (str(err).splitlines() or [type(err).__name__])[0]
    return f"{path}: {reason}" if path else reason


def check_stages(selected: list[str] | None, allowed: tuple[str, ...]) -> None:
    unknown = [s for s in selected or () if s not in allowed]
    if unknown:
        raise PreflightError(f"unknown stage(s) {unknown}; allowed: {', '.join(allowed)}")


def check_tracking(uri: str, timeout: float = 3.0) -> None:
    """An http(s) tracking server must accept a connection within `timeout` seconds; a sqlite
    store's folder must be writable. (MLflow's own client retries for minutes, silently.)"""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname or "localhost", port), timeout=timeout).close()
        except OSError as err:
            reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
            raise PreflightError(f"MLflow tracking server {uri} is not reachable ({reason}, {timeout:.0f} s); "
                                 "start it, or set mlflow.tracking_uri / MLFLOW_TRACKING_URI to one that runs"
                                 ) from None
    elif uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        if path and path != ":memory:":
            check_writable(Path(path).resolve().parent, "the MLflow store's folder")


def check_writable(folder: Path, what: str = "") -> None:
    """Create `folder` if needed and write (then delete) a probe file in it; enough free space."""
    folder = Path(folder)
    label = f" ({what})" if what else ""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise PreflightError(os_error_line(err, folder) + label) from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise PreflightError(f"{folder}: only {free / 2**20:.0f} MB free{label}; free some space first")


def run_checks(cfg, selected: list[str] | None, allowed: tuple[str, ...], tracking_uri: str | None) -> None:
    """All of the above for one `run`: stages, tracking store, work and export folders."""
    check_stages(selected, allowed)
    if tracking_uri is not None:
        check_tracking(tracking_uri)
    check_writable(Path(cfg.work_dir) / cfg.name, "work folder")
    exports_needed = selected is None or "export" in selected
    if exports_needed and hasattr(cfg, "export"):
        check_writable(Path(cfg.export.export_dir) / cfg.model_name, "export folder")


def http_client_defaults() -> None:
    """Bound MLflow's HTTP retries (default: minutes of silent backoff on a dead server)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
