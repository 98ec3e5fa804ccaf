"""Run the product's CLI in a child process, as a user would."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return proc


def run_isolated_python(code: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Plain `python -I -c`: no project on sys.path, no PYTHONPATH, started outside the repo."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run([sys.executable, "-I", "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def stop_process_group(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM a server started with `start_new_session=True` and everything it forked (uvicorn,
    gunicorn workers); SIGKILL the group if it has not ended after `timeout` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
