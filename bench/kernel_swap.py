"""Build a task's model with Keras' own LSTM instead of FastLSTM, for benches that compare the kernels.

The model modules import `FastLSTM` by name, so the swap rebinds that module attribute for the
duration of a `with` block and always restores it (a bench that fails half-way must not leave
the next variant on the wrong kernel).
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def keras_lstm_in(model_module, enabled: bool = True):
    """Inside the block, `model_module.FastLSTM` is `keras.layers.LSTM` (when `enabled`)."""
    import keras

    fast_lstm = model_module.FastLSTM
    if enabled:
        model_module.FastLSTM = keras.layers.LSTM
    try:
        yield
    finally:
        model_module.FastLSTM = fast_lstm
