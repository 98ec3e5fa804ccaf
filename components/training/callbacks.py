"""Task-neutral training callbacks and helpers; each task builds its callback list from them
(`pipeline/tasks/<task>/training.py`).

Order matters: callbacks share one logs dict, so whatever adds a metric (throughput,
validation BLEU, stream validation) comes before what reads it (LR schedule, early
stopping, MLflow).
"""
from __future__ import annotations

import math
from pathlib import Path

import keras

from components.training.resume import ResumableTraining

TENSORBOARD_DIR = "tensorboard"  # under the train stage's output folder


def resumable_of(callbacks: list) -> ResumableTraining:
    """The list's `ResumableTraining`: its `history` covers every epoch, also across restarts."""
    return next(cb for cb in callbacks if isinstance(cb, ResumableTraining))


def resumable(backup_dir: Path, stateful: list, resume: dict | None) -> ResumableTraining:
    """`resume`: keyword arguments of `ResumableTraining` (fresh, on_resume, check_interrupt, log)."""
    return epoch_level(ResumableTraining(backup_dir, stateful=tuple(stateful), **(resume or {})))


def epoch_level(callback: keras.callbacks.Callback) -> keras.callbacks.Callback:
    """Mark a callback whose batch hooks do nothing (epoch-level backups, MLflow's per-epoch
    logging) as async-safe. Keras otherwise treats any callback defining a batch hook as
    needing every step's logs on the host, which synchronises the training loop each step."""
    callback.async_safe = True
    return callback


class PerplexityFromLoss(keras.callbacks.Callback):
    """Adds the epoch's training `perplexity` = exp(mean loss) when no metric computed it.

    A perplexity metric on the logits (keras_hub's) runs a second full softmax over every
    [tokens x vocabulary] logit each step; the loss already is the mean token cross-entropy
    (every LM window is full, so the mean of window means is the token mean)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "loss" in logs and "perplexity" not in logs:
            logs["perplexity"] = math.exp(min(float(logs["loss"]), 700.0))


def tensorboard_callback(log_dir: Path, profile_batches: list[int] | None = None) -> keras.callbacks.TensorBoard:
    """Keras' TensorBoard callback: per-epoch scalars (train/ and validation/ runs, the same values
    the MLflow callback logs) and, with `profile_batches`, a TF profiler trace of those batches.
    Goes after the callbacks that add metrics to the logs (throughput, validation BLEU)."""
    return keras.callbacks.TensorBoard(log_dir=str(log_dir), histogram_freq=0, write_graph=False,
                                       update_freq="epoch", profile_batch=tuple(profile_batches or (0, 0)))
