"""Typed, frozen training settings: what the optimizer and the distribution strategy are built from.

Each task turns its `train` config section into these once (`optimizer_spec()`,
`strategy_spec()` on the section), so the training components never see a config section and
a test builds them from plain values.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerSpec:
    optimizer: str  # adam | sgd
    learning_rate: float  # the peak rate (after any warm-up)
    clipnorm: float | None = None  # global gradient-norm clipping
    lr_schedule: str = "constant"  # schedules.learning_rate: constant, warmup_*
    warmup_steps: int | None = None
    warmup_fraction: float | None = None


@dataclass(frozen=True)
class StrategySpec:
    distribute: str = "default"  # default | mirrored | multi_worker | one_device
    devices: tuple[str, ...] = ()  # mirrored / one_device: device names
    logical_cpus: int | None = None  # split the CPU into N logical devices
