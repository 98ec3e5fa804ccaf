"""A sweep's search space: a YAML file of the config's own dotted keys, each with one distribution.

    train.learning_rate: {log_uniform: [1e-4, 1e-2]}
    model.units: {choice: [128, 256]}
    model.dropout: {uniform: [0.0, 0.5]}
    train.batch_size: {int: [16, 64]}

Parsed and checked before any trial runs (unknown keys, bad ranges: one `SpaceError` line),
so a typo costs seconds, not a trial. Task-neutral: the caller passes the keys its config has.
Suggesting goes through an Optuna-style `trial` object (`suggest_float`, `suggest_int`,
`suggest_categorical`), passed in, so this module does not import Optuna.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

KINDS = ("log_uniform", "uniform", "int", "choice")


class SpaceError(ValueError):
    """The space file is invalid; the message is one line meant for the user."""


@dataclass(frozen=True)
class Dimension:
    """One searched config key: `kind` is one of KINDS; `args` its bounds or its choices."""

    key: str
    kind: str
    args: tuple

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.args))
        if self.kind == "int":
            return trial.suggest_int(self.key, self.args[0], self.args[1])
        return trial.suggest_float(self.key, self.args[0], self.args[1], log=self.kind == "log_uniform")

    def grid_values(self) -> list:
        """Values for a grid search: choices, or every integer of an int range."""
        if self.kind == "choice":
            return list(self.args)
        if self.kind == "int":
            if self.args[1] - self.args[0] > 1000:
                raise SpaceError(f"{self.key}: int range too wide for --sampler grid; use choice")
            return list(range(self.args[0], self.args[1] + 1))
        raise SpaceError(f"{self.key}: {self.kind} has no grid; --sampler grid needs choice or int")


def _number(key: str, value, integer: bool = False):
    if isinstance(value, str) and not integer:  # PyYAML reads 1e-4 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
        raise SpaceError(f"{key}: bound {value!r} is not {'an integer' if integer else 'a finite number'}")
    return value


def _dimension(key: str, spec) -> Dimension:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise SpaceError(f"{key}: expected one of {{{': ..., '.join(KINDS)}: ...}}, got {spec!r}")
    kind, args = next(iter(spec.items()))
    if kind not in KINDS:
        raise SpaceError(f"{key}: unknown distribution {kind!r}; allowed: {', '.join(KINDS)}")
    if not isinstance(args, list) or not args:
        raise SpaceError(f"{key}: {kind} expects a list, e.g. {kind}: [a, b]")
    if kind == "choice":
        if len(set(map(repr, args))) != len(args):
            raise SpaceError(f"{key}: choice has repeated values {args!r}")
        if not all(isinstance(v, (str, int, float, bool)) or v is None for v in args):
            raise SpaceError(f"{key}: choice values must be plain scalars, got {args!r}")
        return Dimension(key, kind, tuple(args))
    if len(args) != 2:
        raise SpaceError(f"{key}: {kind} expects [low, high], got {args!r}")
    low, high = (_number(key, v, integer=kind == "int") for v in args)
    if not low < high:
        raise SpaceError(f"{key}: {kind} range [{low}, {high}] is empty (low must be < high)")
    if kind == "log_uniform" and low <= 0:
        raise SpaceError(f"{key}: log_uniform needs low > 0, got [{low}, {high}]")
    if kind != "int":
        low, high = float(low), float(high)
    return Dimension(key, kind, (low, high))


def parse_space(raw, known_keys: Iterable[str]) -> list[Dimension]:
    """The dimensions of a parsed YAML mapping; every key must be one of `known_keys`."""
    if not isinstance(raw, dict) or not raw:
        raise SpaceError("the space file must be a non-empty mapping of config keys, "
                         "e.g. train.learning_rate: {log_uniform: [1e-4, 1e-2]}")
    known = set(known_keys)
    dims = []
    for key, spec in raw.items():
        key = str(key)
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise SpaceError(f"unknown config key {key!r} in the space{hint}")
        dims.append(_dimension(key, spec))
    return dims


def load_space(path: str | Path, known_keys: Iterable[str]) -> list[Dimension]:
    """Read and check a space file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SpaceError(f"cannot read the space file {path}: {err.strerror or err}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpaceError(f"space file {path} is not valid YAML: {problem}") from None
    return parse_space(raw, known_keys)


def bounds_to_check(dims: list[Dimension]) -> list[dict[str, Any]]:
    """One assignment per extreme value (each bound, each choice), for validating against the
    config schema before any trial: a bound the schema rejects fails the sweep up front."""
    out = []
    for dim in dims:
        for value in dim.args:
            out.append({dim.key: value})
    return out


def grid(dims: list[Dimension]) -> dict[str, list]:
    """The search space of Optuna's GridSampler."""
    return {dim.key: dim.grid_values() for dim in dims}
