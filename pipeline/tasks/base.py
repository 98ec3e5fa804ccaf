"""What the runner, CLI, sweep and `compare` know about a task: this record, nothing more.

A task's package (`pipeline/tasks/<name>/`) owns its schema, data adapter, model, export,
evaluation, inference and stages; its `__init__` builds one `Task`. Stage and command modules
import TensorFlow or heavy libraries, so they are named here and imported only when asked for:
`--stages` checks and config loading stay fast.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    name: str
    config_cls: type  # the pydantic schema of `task: <name>` configs
    stages_module: str  # defines STAGES, summary(manifests) -> list[str] and data_source(data_section)
    headline_metrics: tuple[str, ...]  # what `compare` sorts by and the run summary leads with
    commands_module: str  # defines COMMANDS {name: fn(args) -> int} and add_parsers(sub, common)
    command_names: tuple[str, ...]  # the use commands it adds (`translate`, `score`, ...), known without imports
    # The stage names, known without importing the stage module (and TensorFlow): `--stages`
    # is checked in a second, not after a TensorFlow start (tests check they match STAGES).
    stage_names: tuple[str, ...] = ("prepare", "train", "evaluate", "export")

    def _stages_mod(self):
        return importlib.import_module(self.stages_module)

    def stages(self) -> list:
        return self._stages_mod().STAGES

    def summary(self, manifests: dict) -> str:
        return "\n".join(self._stages_mod().summary(manifests))

    def data_source(self, cfg):
        """The config's data as one source object (fingerprint, preflight, splits, description)."""
        return self._stages_mod().data_source(cfg.data)

    def commands(self):
        """The module of this task's use commands (`COMMANDS`, `add_parsers`)."""
        return importlib.import_module(self.commands_module)
