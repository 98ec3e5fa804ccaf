"""The sweep space parser: every mistake fails with one line before any trial runs."""
from __future__ import annotations

import pytest

from components.tracking.sweep_space import Dimension, SpaceError, grid, load_space, parse_space

KEYS = {"train.learning_rate", "model.units", "model.dropout", "train.batch_size", "train.optimizer"}


class FakeTrial:
    """Records what Optuna would be asked, returns the low bound / first choice."""

    def __init__(self):
        self.calls = []

    def suggest_float(self, name, low, high, log=False):
        self.calls.append(("float", name, low, high, log))
        return low

    def suggest_int(self, name, low, high):
        self.calls.append(("int", name, low, high))
        return low

    def suggest_categorical(self, name, choices):
        self.calls.append(("choice", name, tuple(choices)))
        return choices[0]


def test_parses_every_kind_and_suggests_through_the_trial():
    dims = parse_space({"train.learning_rate": {"log_uniform": ["1e-4", 1e-2]},  # YAML reads 1e-4 as a string
                        "model.dropout": {"uniform": [0, 0.5]},
                        "train.batch_size": {"int": [16, 64]},
                        "model.units": {"choice": [128, 256]}}, KEYS)
    assert dims[0] == Dimension("train.learning_rate", "log_uniform", (1e-4, 1e-2))
    trial = FakeTrial()
    values = {d.key: d.suggest(trial) for d in dims}
    assert values == {"train.learning_rate": 1e-4, "model.dropout": 0.0, "train.batch_size": 16, "model.units": 128}
    assert trial.calls[0] == ("float", "train.learning_rate", 1e-4, 1e-2, True)
    assert trial.calls[1][-1] is False


@pytest.mark.parametrize("raw,words", [
    ({"train.learnig_rate": {"uniform": [0.1, 0.2]}}, ["unknown config key", "did you mean train.learning_rate"]),
    ({"model.units": {"choice": []}}, ["expects a list"]),
    ({"model.units": {"choice": [1, 1]}}, ["repeated"]),
    ({"model.units": {"normal": [1, 2]}}, ["unknown distribution", "log_uniform"]),
    ({"model.dropout": {"uniform": [0.5, 0.1]}}, ["empty"]),
    ({"model.dropout": {"uniform": [0.1]}}, ["[low, high]"]),
    ({"train.learning_rate": {"log_uniform": [0, 0.1]}}, ["low > 0"]),
    ({"train.batch_size": {"int": [1.5, 8]}}, ["integer"]),
    ({"model.dropout": {"uniform": ["a", 1]}}, ["finite number"]),
    ({"model.units": 128}, ["expected one of"]),
    ({}, ["non-empty mapping"]),
    ([1, 2], ["non-empty mapping"]),
])
def test_mistakes_fail_with_one_line(raw, words):
    with pytest.raises(SpaceError) as err:
        parse_space(raw, KEYS)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_load_space_reads_yaml_and_reports_bad_files(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("train.learning_rate: {log_uniform: [1e-4, 1e-2]}\nmodel.units: {choice: [128, 256]}\n")
    assert [d.key for d in load_space(path, KEYS)] == ["train.learning_rate", "model.units"]
    path.write_text("model.units: {choice: [1, 2\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space(path, KEYS)
    with pytest.raises(SpaceError, match="cannot read"):
        load_space(tmp_path / "missing.yaml", KEYS)


def test_grid_needs_discrete_dimensions():
    dims = parse_space({"model.units": {"choice": [8, 16]}, "train.batch_size": {"int": [2, 4]}}, KEYS)
    assert grid(dims) == {"model.units": [8, 16], "train.batch_size": [2, 3, 4]}
    with pytest.raises(SpaceError, match="no grid"):
        grid(parse_space({"model.dropout": {"uniform": [0, 0.5]}}, KEYS))


def test_compare_sweep_scope_takes_a_run_id_or_a_sweep_id():
    from components.tracking.compare import CompareError, sweep_scope

    run_id = "a04978f14b8c407598effce0543242b1"
    assert sweep_scope(run_id) == f"tags.`mlflow.parentRunId` = '{run_id}'"
    assert sweep_scope("tiny-sweep-cb01f3b7a3") == "tags.`sweep.id` = 'tiny-sweep-cb01f3b7a3'"
    with pytest.raises(CompareError):
        sweep_scope("x' or '1")
