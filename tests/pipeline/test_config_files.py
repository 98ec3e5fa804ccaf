"""`run a.yaml b.yaml` merges left to right; `run --print-config` prints the resolved config; bundled
configs load by name (pipeline/config_files.py)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from pipeline.config import ConfigError, load_config
from pipeline.config_files import bundled_names, deep_merge, load_configs, resolved_yaml
from tests.support.subprocess_run import ROOT


def test_deep_merge_later_wins_key_by_key_and_replaces_lists():
    base = {"train": {"epochs": 2, "batch_size": 8}, "evaluate": {"examples": ["a", "b"]}, "name": "x"}
    update = {"train": {"epochs": 5}, "evaluate": {"examples": ["c"]}}
    assert deep_merge(base, update) == {"train": {"epochs": 5, "batch_size": 8},
                                        "evaluate": {"examples": ["c"]}, "name": "x"}
    assert base["train"]["epochs"] == 2  # inputs untouched


def test_files_merge_left_to_right_then_set_applies(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("train:\n  epochs: 4\n  batch_size: 16\nseed: 1\n")
    b = tmp_path / "b.yaml"
    b.write_text("train:\n  epochs: 7\nseed: 2\n")
    cfg = load_configs(["configs/test_translate_tiny.yaml", str(a), str(b)], ["seed=3"])
    base = load_config("configs/test_translate_tiny.yaml")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.seed) == (7, 16, 3)
    assert cfg.model == base.model and cfg.data == base.data  # untouched sections come from the first file


def test_one_file_is_what_load_config_gives():
    assert load_configs(["configs/translate_en_fr.yaml"]) == load_config("configs/translate_en_fr.yaml")


def test_bundled_config_by_name():
    assert {"translate_en_fr", "translate_en_ur", "lm_shakespeare_char", "examples/translate_tsv"} <= set(
        bundled_names())
    by_name = load_configs(["translate_en_fr"])
    assert by_name == load_configs(["translate_en_fr.yaml"]) == load_config("configs/translate_en_fr.yaml")


def test_unknown_name_lists_the_bundled_ones():
    with pytest.raises(ConfigError, match=r"nope.*bundled: .*translate_en_fr"):
        load_configs(["nope"])


def test_resolved_yaml_round_trips(tmp_path):
    cfg = load_configs(["translate_en_ur"], ["train.epochs=3"])
    out = tmp_path / "resolved.yaml"
    out.write_text(resolved_yaml(cfg), encoding="utf-8")
    assert load_configs([str(out)]) == cfg


def test_run_print_config_prints_and_exits_without_running(tmp_path):
    extra = tmp_path / "more.yaml"
    extra.write_text("train:\n  epochs: 9\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "translate_en_fr", str(extra),
                           "--set", "seed=5", "--set", f"work_dir={tmp_path}/work", "--print-config"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    assert (printed["name"], printed["seed"], printed["train"]["epochs"]) == ("translate_en_fr", 5, 9)
    assert not (tmp_path / "work").exists() and "MLflow run" not in proc.stdout
