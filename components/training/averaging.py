"""Checkpoint averaging: the mean of the weights at the end of the last N epochs.

The OpenNMT-tf / Marian recipe for constant or inverse-square-root schedules, where the last
epochs' weights scatter around one minimum and their mean generalises better than any one of
them. With cosine decay to zero it did not help here (Multi30k: -0.3 to -0.6 BLEU,
docs/benchmarks.md), so it is off unless asked for. Done as a running sum in memory, not by
reading N checkpoint files back, and resumable: the sum and the epochs in it are callback state
that `ResumableTraining` checkpoints with each epoch, so a killed run that resumes averages the
same epochs as an unbroken one.
"""
from __future__ import annotations

import keras
import numpy as np


class WeightAveraging(keras.callbacks.Callback):
    """Leaves the mean of the trainable weights over epochs `total_epochs - last_epochs + 1 ..
    total_epochs` in the model when training ends.

    Only trainable weights: non-trainable state (e.g. dropout seed counters) is not an average
    of anything. If training ends before the window starts, the model is left as it is.
    """

    def __init__(self, last_epochs: int, total_epochs: int, log=None):
        super().__init__()
        if not 1 <= last_epochs <= total_epochs:
            raise ValueError(f"last_epochs must be in 1..{total_epochs}, got {last_epochs}")
        self.first = total_epochs - last_epochs  # 0-based epoch index where the window starts
        self.log = log
        self.sums: list[np.ndarray] = []
        self.epochs: list[int] = []

    def on_train_begin(self, logs=None):
        self.sums, self.epochs = [], []  # ResumableTraining's on_train_begin restores them later

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.first:
            return
        weights = [np.asarray(v.numpy(), dtype=np.float64) for v in self.model.trainable_variables]
        self.sums = weights if not self.sums else [s + w for s, w in zip(self.sums, weights)]
        self.epochs.append(epoch + 1)

    def on_train_end(self, logs=None):
        if len(self.epochs) < 2:
            return
        for variable, total in zip(self.model.trainable_variables, self.sums):
            variable.assign((total / len(self.epochs)).astype(variable.dtype))
        if self.log:
            self.log(f"weights averaged over epochs {self.epochs[0]}-{self.epochs[-1]}")

    def resume_state(self) -> tuple[dict, list[np.ndarray]]:
        return {"epochs": list(self.epochs)}, list(self.sums)

    def restore_state(self, state: dict, arrays: list[np.ndarray]) -> None:
        self.epochs, self.sums = list(state["epochs"]), [np.asarray(a, dtype=np.float64) for a in arrays]
