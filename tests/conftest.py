import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The shared corpora sit beside the checkout (CI and dev machines); an explicit env var wins.
_shared = ROOT.parent / "shared" / "data"
if "PIPELINE_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["PIPELINE_DATA_DIR"] = str(_shared)


# ----------------------------------------------------------------- shared, expensive fixtures
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_server_url(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 for the whole session."""
    from tests.support.mlflow_server import mlflow_server

    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture(scope="session")
def tiny_translator(tmp_path_factory, mlflow_server_url):
    """One run of configs/test_translate_tiny.yaml through every stage, logged to the server.

    Returns (root folder, CLI args, stdout); the export is root/exports/test_translate_tiny/1.
    Shared by the pipeline end-to-end tests and the serving tests (a real pipeline export).
    """
    from tests.support.subprocess_run import run_cli

    root = tmp_path_factory.mktemp("tiny_translator")
    args = ["run", "configs/test_translate_tiny.yaml", "--set", f"work_dir={root}/work",
            "--set", f"export.export_dir={root}/exports"]
    proc = run_cli(args, env={"MLFLOW_TRACKING_URI": mlflow_server_url})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (root / "stderr.txt").write_text(proc.stderr)  # what the user saw besides stdout
    return root, args, proc.stdout


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """One run of configs/test_lm_tiny.yaml (sqlite store); export at root/exports/test_lm_tiny/1.

    Returns (root, CLI args, tracking URI, stdout); shared by the LM and serving tests.
    """
    from tests.support.subprocess_run import run_cli

    root = tmp_path_factory.mktemp("tiny_lm")
    uri = f"sqlite:///{root}/mlflow.db"
    args = ["run", "configs/test_lm_tiny.yaml", "--set", f"work_dir={root}/work",
            "--set", f"export.export_dir={root}/exports", "--set", f"mlflow.tracking_uri={uri}"]
    proc = run_cli(args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, args, uri, proc.stdout


@pytest.fixture(scope="session")
def random_lm_base(tmp_path_factory) -> Path:
    """Base path holding version 1 of a small random LM export (generate, score, warm-up file);
    used by the serving tests, which do not import the tasks themselves."""
    from tests.support.random_exports import export_random_lm

    base = tmp_path_factory.mktemp("lm_models") / "lm"
    export_random_lm(base)
    return base


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real corpora: $PIPELINE_DATA_DIR, else <repo>/../shared/data.

    Fails (never skips) when absent: a silently skipped data suite would hide
    a broken setup.
    """
    env = os.environ.get("PIPELINE_DATA_DIR")
    path = Path(env) if env else ROOT / ".." / "shared" / "data"
    path = path.resolve()
    if not path.is_dir():
        pytest.fail(
            f"data folder {path} not found: set PIPELINE_DATA_DIR to the folder "
            "holding tatoeba/, multi30k/ and tinyshakespeare/"
        )
    return path
