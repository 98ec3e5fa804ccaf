"""The task registry: one line per task. Everything outside `pipeline/tasks/<name>/` (runner,
CLI, sweep, compare, config loader) knows tasks only through this module and `base.Task`.

Adding a task: a folder `pipeline/tasks/<name>/` whose `__init__` defines `TASK`, plus one line
below. Importing this module imports each task's config schema (pydantic only), never TensorFlow.
"""
from __future__ import annotations

from pipeline.tasks import lm, translate
from pipeline.tasks.base import Task

TASKS: dict[str, Task] = {t.name: t for t in (
    translate.TASK,  # the default: `task:` absent means translate
    lm.TASK,
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
