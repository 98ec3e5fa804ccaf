"""Stage lists per task."""
from __future__ import annotations


def pipeline_stages(cfg):
    if cfg.task == "translate":
        from pipeline.stages.translate import STAGES
        return STAGES
    if cfg.task == "lm":
        from pipeline.stages.lm import STAGES
        return STAGES
    raise ValueError(f"unknown task {cfg.task!r}")
