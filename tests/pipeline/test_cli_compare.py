"""`compare` through the CLI, in process, on a small store of pipeline-shaped runs."""
from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from tests.support.compare_store import EXPERIMENT, make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("cmp"))


def test_cli_compare_in_process(store, tmp_path, capsys):
    _, _, ids, uri = store
    assert main(["compare", "--tracking-uri", uri, "--experiment", EXPERIMENT, "--metric", "val_loss",
                 "--top", "2", "--format", "json", "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert [r["run_id"] for r in data["runs"]] == [ids["c"], ids["d"]]  # d ties a on val_loss; newer first
    assert "plot:" in out.err and (tmp_path / "p.png").stat().st_size > 5000
    assert main(["compare", "--tracking-uri", uri, "--experiment", "nope"]) == 1
    assert "existing experiments" in capsys.readouterr().err
    assert main(["compare", "--tracking-uri", f"sqlite:///{tmp_path}/none.db"]) == 1
    assert "no MLflow store" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
