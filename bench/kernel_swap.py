"""Build a task's model with Keras' own LSTM instead of FastLSTM, for benches that compare the kernels.

The model modules import `FastLSTM` by name, so the swap rebinds that module attribute for the
duration of a `with` block and always restores it (a bench that fails half-way must not leave
the next variant on the wrong kernel).
"""
from __future__ import annotations

import contextlib


def _keras_lstm(units, bf16_backward: bool = False, **kwargs):
    """A plain keras.layers.LSTM built from FastLSTM's arguments. Keras' kernel has no bf16
    gradient path, so `bf16_backward` is dropped (the benches compare the float32 kernels)."""
    import keras

    return keras.layers.LSTM(units, **kwargs)


@contextlib.contextmanager
def keras_lstm_in(model_module, enabled: bool = True):
    """Inside the block, `model_module.FastLSTM` is `keras.layers.LSTM` (when `enabled`)."""
    fast_lstm = model_module.FastLSTM
    if enabled:
        model_module.FastLSTM = _keras_lstm
    try:
        yield
    finally:
        model_module.FastLSTM = fast_lstm
