"""compare: runs -> rows -> text, on real MLflow runs in a temporary sqlite store (no mocks)."""
from __future__ import annotations

import csv
import io
import json

import matplotlib.image
import pytest

from components.tracking import compare
from components.tracking.plots import plot_run_curves
from tests.support.compare_store import EXPERIMENT, make_store

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Four pipeline runs: a, b differ in the learning rate; c also in units; d has no BLEU."""
    return make_store(tmp_path_factory.mktemp("cmp"))


def _records(client, exp_id, filter_string=None):
    return [compare.run_record(r) for r in compare.search_pipeline_runs(client, exp_id, filter_string)]


def test_metric_direction():
    for name in ("test_bleu", "val_token_accuracy", "train_tokens_per_sec"):
        assert compare.metric_direction(name) == "desc", name
    for name in ("val_loss", "test_perplexity", "test_bpc", "time_train_s", "time_total_s"):
        assert compare.metric_direction(name) == "asc", name


def test_only_parent_runs_are_listed(store):
    client, exp_id, ids, _ = store
    records = _records(client, exp_id)
    assert sorted(r.run_id for r in records) == sorted(ids.values())
    assert {r.name for r in records} == {"run-a", "run-b", "run-c", "run-d"}
    assert all(r.status == "FINISHED" and r.duration_s is not None for r in records)


def test_sorts_by_first_metric_best_first_and_missing_last(store):
    client, exp_id, ids, _ = store
    cmp = compare.build_comparison(EXPERIMENT, _records(client, exp_id), ["test_bleu", "val_loss"])
    assert cmp.order == "desc"
    assert [r.run_id for r in cmp.runs] == [ids["b"], ids["c"], ids["a"], ids["d"]]
    assert cmp.notes == ["1 run(s) without test_bleu listed last"]
    by_loss = compare.build_comparison(EXPERIMENT, _records(client, exp_id), ["val_loss"])
    assert by_loss.order == "asc"
    assert [r.run_id for r in by_loss.runs][0] == ids["c"]
    assert by_loss.runs[-1].run_id == ids["b"]
    reverse = compare.build_comparison(EXPERIMENT, _records(client, exp_id), ["val_loss"], order="desc")
    assert reverse.runs[0].run_id == ids["b"]


def test_default_metric_is_test_bleu(store):
    client, exp_id, _, _ = store
    assert compare.build_comparison(EXPERIMENT, _records(client, exp_id)).metrics == ["test_bleu"]


def test_differing_params_are_computed_over_the_listed_runs_only(store):
    client, exp_id, ids, _ = store
    records = _records(client, exp_id)
    everything = compare.build_comparison(EXPERIMENT, records, ["test_bleu"])
    assert everything.differing == ["code.git_dirty", "model.units", "train.learning_rate"]
    top2 = compare.build_comparison(EXPERIMENT, records, ["test_bleu"], top=2)  # b and c
    assert [r.run_id for r in top2.runs] == [ids["b"], ids["c"]]
    assert top2.differing == ["model.units"] and top2.total == 4
    ignored = compare.build_comparison(EXPERIMENT, records, ["test_bleu"], ignore_params=["code.*", "model.*"])
    assert ignored.differing == ["train.learning_rate"]


def test_filter_string_is_passed_to_mlflow(store):
    client, exp_id, ids, _ = store
    records = _records(client, exp_id, "params.`train.learning_rate` = '0.01'")
    assert sorted(r.run_id for r in records) == sorted([ids["b"], ids["c"]])
    with pytest.raises(compare.CompareError, match="rejected the search filter"):
        _records(client, exp_id, "params.x = ")


def test_unknown_metric_and_experiment_errors_say_what_exists(store):
    client, exp_id, _, _ = store
    with pytest.raises(compare.CompareError, match=r"no run .* has metric\(s\) test_bleuu; logged metrics: "
                                                   r"test_bleu, val_loss"):
        compare.build_comparison(EXPERIMENT, _records(client, exp_id), ["test_bleuu"])
    with pytest.raises(compare.CompareError, match=r"experiment 'nope' not found; existing experiments: .*'cmp'"):
        compare.find_experiment(client, "nope")
    assert compare.find_experiment(client, None).name == EXPERIMENT  # the only one with runs


def test_render_formats(store):
    client, exp_id, ids, _ = store
    cmp = compare.build_comparison(EXPERIMENT, _records(client, exp_id), ["test_bleu", "val_loss"],
                                   ignore_params=["code.*"])
    table = compare.render(cmp, "table")
    lines = table.splitlines()
    assert lines[0].startswith("experiment 'cmp': 4 of 4 run(s), sorted by test_bleu (higher is better)")
    header = lines[1].split()
    assert header == ["run", "run_id", "start", "duration", "status", "test_bleu", "val_loss",
                      "model.units", "train.learning_rate"]
    assert "train.epochs" not in table  # same everywhere: not shown
    assert lines[3].split()[:2] == ["run-b", ids["b"]]

    rows = list(csv.DictReader(io.StringIO(compare.render(cmp, "csv"))))
    assert [r["run_id"] for r in rows] == [ids["b"], ids["c"], ids["a"], ids["d"]]
    assert rows[0]["test_bleu"] == "7.5" and rows[3]["test_bleu"] == ""
    assert [r["train.learning_rate"] for r in rows] == ["0.01", "0.01", "0.005", "0.005"]
    assert float(rows[0]["duration"]) >= 0

    md = compare.render(cmp, "markdown").splitlines()
    assert md[0].startswith("| run ") and set(md[1]) <= set("|-: ")
    assert len(md) == 2 + 4

    data = json.loads(compare.render(cmp, "json"))
    assert data["sort"] == {"metric": "test_bleu", "order": "desc"}
    assert data["differing_params"] == ["model.units", "train.learning_rate"]
    assert data["runs"][0]["metrics"] == {"test_bleu": 7.5, "val_loss": 2.9}
    assert data["runs"][3]["metrics"]["test_bleu"] is None


def test_validation_curves_follow_cached_train_runs_and_plot(store, tmp_path):
    client, exp_id, ids, _ = store
    cmp = compare.build_comparison(EXPERIMENT, _records(client, exp_id), ["test_bleu"])
    histories = compare.validation_histories(client, exp_id, cmp.runs)
    assert histories[ids["a"]]["val_loss"] == [(1, 3.0), (2, 2.7), (3, 2.5)]
    assert histories[ids["d"]] == histories[ids["a"]]  # skipped train: the cached run's curves
    labels = compare.curve_labels(cmp)
    assert labels[ids["c"]] == f"{ids['c'][:8]} (units=64, learning_rate=0.01)"
    out = plot_run_curves({labels[r.run_id]: histories[r.run_id] for r in cmp.runs}, tmp_path / "c.png")
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    assert matplotlib.image.imread(out).shape[0] > 100
    with pytest.raises(ValueError, match="no per-epoch metrics"):
        plot_run_curves({"x": {}}, tmp_path / "empty.png")
