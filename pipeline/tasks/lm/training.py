"""The language model's Keras callback list: state resets, throughput, stream validation, LR decay,
early stopping, backups, MLflow.

Order matters: callbacks share one logs dict, so whatever adds a metric comes before what
reads it (LR schedule, early stopping, MLflow); the checkpointer comes after the stateful
callbacks, since its on_train_begin restores their state.
"""
from __future__ import annotations

from pathlib import Path

import keras

from components.training.callbacks import PerplexityFromLoss, epoch_level, resumable
from components.training.fit import Throughput
from pipeline.tasks.lm.tbptt import ResetStates


def lm_callbacks(train_cfg, *, tokens_per_epoch: int, backup_dir: Path, validation,
                 tracking_callback: keras.callbacks.Callback, resume: dict | None = None) -> list:
    """`validation`: the `StreamValidation` callback (adds val_* and keeps the best weights)."""
    # Throughput is measured before validation runs.
    callbacks = [ResetStates(), Throughput(tokens_per_epoch), PerplexityFromLoss(), validation]
    stateful = [validation]
    if train_cfg.lr_decay_factor:
        stateful.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=train_cfg.lr_decay_factor, patience=train_cfg.lr_decay_patience,
            min_delta=0.0, mode="min", verbose=0))
    if train_cfg.early_stopping_patience:
        stateful.append(keras.callbacks.EarlyStopping(monitor="val_perplexity", mode="min",
                                                      patience=train_cfg.early_stopping_patience))
    callbacks += [*stateful[1:], resumable(backup_dir, stateful, resume), epoch_level(tracking_callback)]
    return callbacks
