"""A Keras callback that hands one per-epoch metric to a function, e.g. a sweep's pruner.

The function may raise to stop training (Optuna's `TrialPruned`): raised from `on_epoch_end`,
it leaves `model.fit` like any error, so the stage's half-made output is discarded and never
cached under the trial's fingerprint. Task-neutral: it knows a metric name, nothing else.
"""
from __future__ import annotations

from typing import Callable

import keras


class EpochMetricReporter(keras.callbacks.Callback):
    """Calls `report(value, epoch)` after each epoch whose logs carry `metric`."""

    def __init__(self, metric: str, report: Callable[[float, int], None]):
        super().__init__()
        self.metric = metric
        self.report = report
        self.async_safe = True  # epoch-level only

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.metric)
        if value is not None:
            self.report(float(value), epoch)
