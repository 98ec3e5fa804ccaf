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

from components.training.spec import StrategySpec


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


def make_strategy(spec: StrategySpec) -> tf.distribute.Strategy:
    """`train.distribute`: default (one device), mirrored (this machine's devices, or
    `train.devices`), multi_worker (the cluster in TF_CONFIG), one_device (first GPU else CPU)."""
    kind = spec.distribute
    configure_logical_cpus(spec.logical_cpus)
    devices = list(spec.devices)
    if kind == "mirrored":
        if not devices and spec.logical_cpus:
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
        @tf.function
        def meet():
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
        meet()


def patch_keras_for_multi_worker(model) -> None:
    """Work around Keras 3.15 `fit` under MultiWorkerMirroredStrategy with dict inputs
    (keras-team/keras#20329): before the first step Keras builds the model from one batch by
    *reducing* the per-replica batch with `strategy.reduce("MEAN", ...)`, which the collective
    strategy cannot do for a dict (and a mean of token ids is no batch anyway). Here the build
    uses this worker's first replica's part of the batch instead. Instance-level, so models
    trained without a strategy are untouched."""
    import types

    import keras
    from keras.src import tree

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, batch)
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    assert isinstance(model, keras.Model)
    model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)
    _patch_scalar_log_reduction()


def _patch_scalar_log_reduction() -> None:
    """keras-team/keras#20585: under MultiWorkerMirroredStrategy Keras reduces each step's logs
    with `strategy.reduce("MEAN", v, axis=0)`, which fails on the scalar metric values
    ("Invalid reduction dimension 0 for input with 0 dimensions"). Scalars are reduced with
    axis=None (a mean across all replicas of all workers) instead; everything else, and every
    other strategy, goes through Keras' own function unchanged."""
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "_pipeline_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and reduction in ("auto", "mean")):
            return original(values, strategy, reduction)

        def _reduce(v):
            # With one replica per worker the values are plain tensors, not PerReplica.
            local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                return strategy.reduce("MEAN", v, axis=None)
            return original(v, strategy, reduction)

        return tree.map_structure(_reduce, values)

    reduce_per_replica._pipeline_patched = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def _row_digest(rows) -> tuple[int, int, int]:
    """(rows, real tokens, order-free digest) of a batch of padded id rows."""
    import hashlib

    import numpy as np

    rows = np.asarray(rows)
    digest = 0
    for row in rows:
        ids = row[row != 0].astype(np.int64).tobytes()
        digest += int.from_bytes(hashlib.sha256(ids).digest()[:8], "big")
    return len(rows), int((rows != 0).sum()), digest % (1 << 64)


def _add(total: dict, part: tuple[int, int, int]) -> None:
    total["rows"] += part[0]
    total["tokens"] += part[1]
    total["digest"] = (total["digest"] + part[2]) % (1 << 64)


def data_summary(ds) -> dict:
    """Rows, real target tokens and an order-free digest of one pass over a batched (x, y) dataset."""
    total = {"rows": 0, "tokens": 0, "digest": 0}
    for _, y in ds.as_numpy_iterator():
        _add(total, _row_digest(y))
    return total


def local_shard_summary(strategy, ds) -> dict:
    """The same for what *this worker's* replicas get of `ds` under `strategy` in one pass.

    The workers' summaries add up to `data_summary(ds)` (rows, tokens, digest mod 2^64)
    exactly when the shards partition the data; recorded in the train manifest so a test
    (or a user) can check it."""
    total = {"rows": 0, "tokens": 0, "digest": 0}
    for _, y in strategy.experimental_distribute_dataset(ds):
        for part in strategy.experimental_local_results(y):
            _add(total, _row_digest(part.numpy()))
    return total
