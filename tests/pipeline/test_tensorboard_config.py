"""`train.tensorboard` / `train.profile_batches` in both tasks' schemas."""
from __future__ import annotations

import pytest

from pipeline.config import ConfigError
from pipeline.config_files import load_configs


@pytest.mark.parametrize("config", ["configs/test_translate_tiny.yaml", "configs/test_lm_tiny.yaml"])
def test_tensorboard_is_off_by_default_and_profile_needs_it(config):
    cfg = load_configs(config)
    assert cfg.train.tensorboard is False and cfg.train.profile_batches is None
    cfg = load_configs(config, ["train.tensorboard=true", "train.profile_batches=[2, 4]"])
    assert cfg.train.profile_batches == [2, 4]
    with pytest.raises(ConfigError, match="needs train.tensorboard: true"):
        load_configs(config, ["train.profile_batches=[2, 4]"])
    with pytest.raises(ConfigError, match="first <= last"):
        load_configs(config, ["train.tensorboard=true", "train.profile_batches=[4, 2]"])
