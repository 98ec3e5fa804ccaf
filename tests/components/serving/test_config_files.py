"""TF Serving's text-proto files (components/serving/config_files.py)."""

from __future__ import annotations

import os

import pytest

from components.serving.config import BatchingConfig, ConfigError, VersionPolicy
from components.serving.config_files import load_batching_parameters_file, load_model_config_file


def test_model_config_file(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("""
        model_config_list {
          config { name: "a" base_path: "/models/a" model_platform: "tensorflow" }
          config {
            name: "b" base_path: "rel/b"
            model_version_policy { specific { versions: 1 versions: 3 } }
            version_labels { key: "stable" value: 1 }
          }
        }""")
    a, b = load_model_config_file(str(path))
    assert (a.name, a.base_path, a.version_policy.kind) == ("a", "/models/a", "latest")
    assert b.base_path == os.path.abspath("rel/b")  # relative to the working dir, as in TF Serving
    assert b.version_policy == VersionPolicy("specific", versions=frozenset({1, 3}))
    assert b.version_labels == {"stable": 1}
    path.write_text("model_config_list { config { name: 'a' } }")
    with pytest.raises(ConfigError):
        load_model_config_file(str(path))


def test_batching_parameters_file(tmp_path):
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 5000 }\n"
                    "num_batch_threads { value: 3 }\nthread_pool_name { value: 'x' }\n"
                    "enable_large_batch_splitting { value: true }\n")
    cfg = load_batching_parameters_file(str(path), BatchingConfig(enabled=True))
    assert (cfg.max_batch_size, cfg.batch_timeout_micros, cfg.num_batch_threads) == (8, 5000, 3)
    assert cfg.max_enqueued_batches == BatchingConfig().max_enqueued_batches


@pytest.mark.parametrize("flag", ["model_config_file", "batching_parameters_file", "monitoring_config_file"])
def test_unreadable_or_unparsable_file_is_one_error_naming_the_flag(tmp_path, flag):
    from components.serving import config_files

    load = {"model_config_file": load_model_config_file,
            "batching_parameters_file": lambda p: load_batching_parameters_file(p, BatchingConfig()),
            "monitoring_config_file": config_files.load_monitoring_config_file}[flag]
    missing = tmp_path / "missing.config"
    with pytest.raises(ConfigError, match=f"^cannot read --{flag} {missing}: "):
        load(str(missing))
    broken = tmp_path / "broken.config"
    broken.write_text("this is { not a text proto")
    with pytest.raises(ConfigError, match=f"^invalid --{flag} {broken}: "):
        load(str(broken))
