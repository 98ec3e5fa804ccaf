"""Experiment configs: YAML files validated into typed objects at load time.

Validation is done by pydantic (strict schemas, unknown keys forbidden) so a typo
fails before any work starts, with the offending key and the allowed values named.
Each task's schema lives with its task (`pipeline/tasks/<task>/config.py`); this module
loads a file, applies `--set` overrides and picks the schema through the task registry.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from components.tracking.params import flatten  # noqa: F401  (re-exported: configs flatten to params)
from pipeline.config_base import PipelineBase


class ConfigError(ValueError):
    """A config file or override is invalid; the message is meant for the user."""


def _task_configs() -> dict[str, type]:
    from pipeline.tasks import TASKS  # the registry imports the task schemas, not this module

    return {name: task.config_cls for name, task in TASKS.items()}


def __getattr__(name: str):
    """`from pipeline.config import TranslateConfig` (and the other schema classes) still works."""
    from pipeline import config_base
    from pipeline.tasks.lm import config as lm_config
    from pipeline.tasks.translate import config as translate_config

    for module in (translate_config, lm_config, config_base):
        if hasattr(module, name) and not name.startswith("_"):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- loading

def apply_override(raw: dict, assignment: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, value_text = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set has an empty key in {assignment!r}")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--set {key.strip()}: {value_text!r} is not a valid YAML value ({problem}); "
                          "quote strings, close brackets, e.g. --set 'train.bucket_boundaries=[8, 16]'") from None


def _allowed_keys(model_cls: type[BaseModel], loc: tuple) -> list[str]:
    """Walk the schema along an error location to list the keys allowed there."""
    cls = model_cls
    for part in loc[:-1]:
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        ann = getattr(field, "annotation", None)
        ann = next((a for a in getattr(ann, "__args__", ()) if a is not type(None)), ann)  # X | None -> X
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        cls = ann
    return sorted(cls.model_fields)


def _format_errors(err: ValidationError, model_cls: type[BaseModel], source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in _task_configs())  # drop discriminator tags
        key = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model_cls, loc))
            lines.append(f"  {key}: unknown key; allowed keys here: {allowed}")
        else:
            got = e.get("input")
            got_text = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {key}: {e['msg']}{got_text}")
    return "\n".join(lines)


def parse_config(raw: dict, source: str = "<dict>") -> PipelineBase:
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping of keys")
    task = raw.get("task", "translate")
    configs = _task_configs()
    if task not in configs:
        raise ConfigError(f"invalid config {source}:\n  task: unknown task {task!r}; allowed values: "
                          + ", ".join(repr(t) for t in configs))
    cls = configs[task]
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, cls, source)) from None


def load_config(path: str | Path, overrides: list[str] | tuple = ()) -> PipelineBase:
    """Read a YAML config, apply `--set` overrides, and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    raw = copy.deepcopy(raw)
    for assignment in overrides:
        if isinstance(raw, dict):
            apply_override(raw, assignment)
    return parse_config(raw, str(path))
