"""Training loop plumbing: strategy, optimizer, callbacks, throughput."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from components.training import schedules
from components.training.spec import OptimizerSpec


def make_optimizer(spec: OptimizerSpec, total_steps: int | None = None) -> keras.optimizers.Optimizer:
    """Adam or SGD with global-norm clipping; lr constant or a warm-up schedule (schedules.py)."""
    total = total_steps or 1
    warmup = schedules.warmup_steps(total, spec.warmup_steps, spec.warmup_fraction)
    lr = schedules.learning_rate(spec.lr_schedule, spec.learning_rate, total, warmup)
    kwargs = {"learning_rate": lr}
    if spec.clipnorm:
        kwargs["global_clipnorm"] = spec.clipnorm
    replicas = tf.distribute.get_strategy().num_replicas_in_sync  # the scope's strategy
    if spec.optimizer == "sgd":
        return (ReplicaClippedSGD if replicas > 1 and spec.clipnorm else keras.optimizers.SGD)(**kwargs)
    return (ReplicaClippedAdam if replicas > 1 and spec.clipnorm else keras.optimizers.Adam)(**kwargs)


class GlobalClipAcrossReplicas:
    """Clip the *global* gradient (summed over replicas), not each replica's part.

    Keras clips in `_backend_apply_gradients`, per replica, before the optimizer's all-reduce
    sums the parts: with 2 replicas that clips two half-gradients instead of their sum. Here
    the parts are summed first, the sum is clipped, and each replica keeps 1/N of it, so the
    optimizer's own all-reduce rebuilds exactly the clipped global gradient. Costs one extra
    all-reduce per step, only when clipping under a multi-replica strategy.
    """

    def _clip_gradients(self, grads):
        ctx = tf.distribute.get_replica_context()
        if not self.global_clipnorm or ctx is None or ctx.num_replicas_in_sync < 2:
            return super()._clip_gradients(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        dense = [tf.convert_to_tensor(grads[i]) for i in present]  # IndexedSlices (embeddings) too
        summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, dense)
        clipped, _ = tf.clip_by_global_norm(summed, self.global_clipnorm)
        out = list(grads)
        for i, g in zip(present, clipped):
            out[i] = g / ctx.num_replicas_in_sync
        return out


@keras.saving.register_keras_serializable(package="pipeline")
class ReplicaClippedAdam(GlobalClipAcrossReplicas, keras.optimizers.Adam):
    pass


@keras.saving.register_keras_serializable(package="pipeline")
class ReplicaClippedSGD(GlobalClipAcrossReplicas, keras.optimizers.SGD):
    pass


class Throughput(keras.callbacks.Callback):
    """Adds `tokens_per_sec` (real target tokens trained per second) to each epoch's logs.

    Counts the batches actually run, so a capped `steps_per_epoch` is measured right.
    """

    def __init__(self, tokens_per_epoch: int, batches_per_epoch: int | None = None):
        super().__init__()
        self.tokens_per_batch = tokens_per_epoch / max(batches_per_epoch or 1, 1)
        self.tokens_per_epoch = tokens_per_epoch if batches_per_epoch is None else None
        # With the tokens known per epoch the batch hook's count is unused: let Keras dispatch
        # it asynchronously instead of fetching every step's logs to the host (a sync per step).
        self.async_safe = batches_per_epoch is None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = max(time.perf_counter() - self._start, 1e-9)
        tokens = self.tokens_per_epoch or self.tokens_per_batch * self._batches
        if logs is not None:
            logs["tokens_per_sec"] = tokens / seconds
            logs["epoch_seconds"] = seconds


def count_tokens(ds: tf.data.Dataset) -> int:
    """Real (non-pad) target tokens in one pass over a batched (x, y) dataset."""
    return count_batches_and_tokens(ds)[1]


def count_batches_and_tokens(ds: tf.data.Dataset) -> tuple[int, int]:
    batches, tokens = ds.reduce(
        (tf.constant(0, tf.int64), tf.constant(0, tf.int64)),
        lambda acc, xy: (acc[0] + 1, acc[1] + tf.math.count_nonzero(xy[1], dtype=tf.int64)))
    return int(batches.numpy()), int(tokens.numpy())


def progress_verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def save_history(history: dict, path: Path) -> None:
    path.write_text(json.dumps({k: [float(v) for v in vals] for k, vals in history.items()}, indent=1))


def shard_batches_across_workers(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Global batches, split across workers by tf.distribute (each worker gets its piece of every batch).

    DATA sharding of the *batched* dataset keeps every worker on the same number of steps, which
    collective all-reduces need (per-worker file or example shards give uneven step counts and a
    hang at the epoch end); within a worker, Keras splits the piece across local replicas."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
