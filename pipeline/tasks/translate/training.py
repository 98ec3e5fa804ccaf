"""The translator's Keras callback list: throughput, validation BLEU, LR plateau, early stopping,
backups, MLflow.

Order matters: callbacks share one logs dict, so whatever adds a metric comes before what
reads it (LR schedule, early stopping, MLflow); the checkpointer comes after the stateful
callbacks, since its on_train_begin restores their state.
"""
from __future__ import annotations

from pathlib import Path

import keras

from components.training.averaging import WeightAveraging
from components.training.callbacks import resumable
from components.training.fit import Throughput


def translator_callbacks(train_cfg, *, tokens_per_epoch: int, batches_per_epoch: int, backup_dir: Path,
                         tracking_callback: keras.callbacks.Callback, val_bleu=None,
                         resume: dict | None = None, log=None) -> list:
    """`val_bleu`: a `ValidationBleu` callback or None (only when early stopping or logging on it);
    `log`: where one-line notices go (the averaging's epochs)."""
    callbacks = [Throughput(tokens_per_epoch, batches_per_epoch)]
    stateful = []
    if val_bleu is not None:
        callbacks.append(val_bleu)
    if train_cfg.lr_schedule == "plateau":
        stateful.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=train_cfg.plateau_factor, patience=train_cfg.plateau_patience,
            verbose=1))
    if train_cfg.early_stopping_patience:
        monitor = train_cfg.early_stopping_metric
        stateful.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max" if monitor == "val_bleu" else "min",
            patience=train_cfg.early_stopping_patience, restore_best_weights=True))
    if train_cfg.average_last_epochs:
        stateful.append(WeightAveraging(train_cfg.average_last_epochs, train_cfg.epochs, log=log))
    # Backups are keyed by stage fingerprint: a killed run resumes, a changed config starts fresh.
    # The checkpointer comes after the stateful callbacks: its on_train_begin restores their state.
    callbacks += [*stateful, resumable(backup_dir, stateful, resume), tracking_callback]
    return callbacks
