"""The tool installs with pip and runs from any folder (pyproject.toml).

A scratch venv sees the project's environment's packages (a .pth line naming its site-packages:
`--system-site-packages` alone would expose the base interpreter's, not .venv's), so nothing is
downloaded; the project is copied out of the checkout first (an in-tree build would leave
build/ and *.egg-info behind) and installed with `pip install --no-deps --no-build-isolation`.
The console script then runs from a folder outside the repo."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.subprocess_run import ROOT

pytestmark = pytest.mark.slow
SHIPPED = ["pyproject.toml", "README.md", "components", "pipeline", "configs"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ folder of a scratch venv with the project installed (not editable)."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SHIPPED:
        path = ROOT / name
        (shutil.copytree(path, src / name, ignore=ignore) if path.is_dir() else shutil.copy(path, src / name))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "project_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return venv / "bin"


def _run(bin_dir: Path, args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIPELINE_DATA_DIR")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run([str(bin_dir / "seqpipe"), *args], cwd=cwd, env=env, input=stdin, capture_output=True,
                          text=True, timeout=600)


def test_console_script_help_and_bundled_config_from_outside_the_repo(installed, tmp_path):
    proc = _run(installed, ["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: seqpipe")
    for command in ("run", "serve", "compare", "register", "translate", "evaluate", "score", "generate"):
        assert command in proc.stdout
    proc = _run(installed, ["run", "translate_en_fr", "--print-config", "--set", "seed=7"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "name: translate_en_fr\nseed: 7\n" in proc.stdout
    # the installed copy's modules run, not the checkout's
    where = subprocess.run([str(installed / "python"), "-c", "import pipeline; print(pipeline.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True).stdout
    assert not where.startswith(str(ROOT)), where


def test_console_script_translates_with_a_tiny_export(installed, tiny_translator, tmp_path):
    root, _, _ = tiny_translator
    export = root / "exports" / "test_translate_tiny"
    proc = _run(installed, ["translate", str(export)], tmp_path, stdin="How are you?\nThank you.\n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = subprocess.run([sys.executable, "-m", "pipeline", "translate", str(export)], cwd=ROOT,
                              input="How are you?\nThank you.\n", capture_output=True, text=True, timeout=600)
    assert proc.stdout == expected.stdout and len(proc.stdout.splitlines()) == 2
