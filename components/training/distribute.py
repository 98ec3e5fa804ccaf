"""tf.distribute set-up: devices, the strategy, and who is chief.

The strategy is made once, at program start, before any TensorFlow op runs: logical CPU
devices can only be configured before the runtime initialises, and
MultiWorkerMirroredStrategy must configure collective ops at start-up ("Collective ops
must be configured at program startup"). Everything after that asks this module, not
`tf.distribute.get_strategy()`, so the CLI and tests control it.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf


def configure_logical_cpus(n: int | None) -> None:
    """Split the first physical CPU into `n` logical devices (data-parallel testing without GPUs)."""
    if not n or n < 2:
        return
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current and len(current) == n:
        return
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)


def tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    try:
        return json.loads(raw) if raw else {}
    except ValueError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}): {raw[:200]!r}") from None


def is_chief() -> bool:
    """The chief logs, evaluates and exports: task type `chief`, or worker 0 when there is no chief.

    Decided from TF_CONFIG alone (as `MultiWorkerMirroredStrategy` does), so it is known before
    the strategy exists and is the same in every stage."""
    task = tf_config().get("task") or {}
    if not task:
        return True
    cluster = tf_config().get("cluster") or {}
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cluster


def make_strategy(train_cfg) -> tf.distribute.Strategy:
    """`train.distribute`: default (one device), mirrored (this machine's devices, or
    `train.devices`), multi_worker (the cluster in TF_CONFIG), one_device (first GPU else CPU)."""
    kind = train_cfg.distribute
    configure_logical_cpus(getattr(train_cfg, "logical_cpus", None))
    devices = list(getattr(train_cfg, "devices", None) or [])
    if kind == "mirrored":
        if not devices and getattr(train_cfg, "logical_cpus", None):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices or None)
    if kind == "multi_worker":
        if not tf_config().get("cluster"):
            raise ValueError("train.distribute: multi_worker reads the cluster from the TF_CONFIG environment "
                             "variable, which is not set (see README 'Scaling out')")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(devices[0] if devices else gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def worker_name() -> str:
    task = tf_config().get("task") or {}
    return f"{task.get('type', 'worker')}-{task.get('index', 0)}"


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Every worker waits here until all have arrived (one tiny all-reduce), so non-chief workers
    stay up until the chief has finished evaluating and exporting."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
