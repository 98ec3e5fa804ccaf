"""Each task as one record: its config class, its stages, its headline metrics, its summary.

Adding a task means adding a record here (and its config class and stage module), not
editing the CLI, the config loader and the comparison defaults one by one. Stage modules
import TensorFlow, so they are loaded only when a task's stages are asked for.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from pipeline.config import LMConfig, TranslateConfig


@dataclass(frozen=True)
class Task:
    name: str
    config_cls: type
    stages_module: str  # defines STAGES and summary(manifests) -> list[str]
    headline_metrics: tuple[str, ...]  # what `compare` sorts by and the run summary leads with
    # The stage names, known without importing the stage module (and TensorFlow): `--stages`
    # is checked in a second, not after a TensorFlow start (tests check they match STAGES).
    stage_names: tuple[str, ...] = ("prepare", "train", "evaluate", "export")

    def stages(self) -> list:
        return importlib.import_module(self.stages_module).STAGES

    def summary(self, manifests: dict) -> str:
        return "\n".join(importlib.import_module(self.stages_module).summary(manifests))


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("translate", TranslateConfig, "pipeline.stages.translate", ("test_bleu",)),
    Task("lm", LMConfig, "pipeline.stages.lm", ("test_perplexity", "val_perplexity")),
)}


def task_of(cfg) -> Task:
    return TASKS[cfg.task]


def default_compare_metrics() -> tuple[str, ...]:
    """Every task's headline metrics, in task order, then val_loss: `compare` sorts by the first
    one the runs logged."""
    seen: list[str] = []
    for task in TASKS.values():
        seen += [m for m in task.headline_metrics if m not in seen]
    return tuple(seen) + ("val_loss",)
