"""cuDNN eligibility: checked by construction, because no GPU is here to try it on.

Keras picks the fused cuDNN kernel only when every condition below holds; one wrong
argument silently falls back to a kernel that is several times slower on GPU.
"""
from __future__ import annotations

import contextlib

import keras

# Keras' own argument check (its public cudnn_ok also requires a visible GPU).
from keras.src.backend.tensorflow.rnn import _do_lstm_arguments_support_cudnn


def lstm_layers(model: keras.Model) -> list[keras.layers.LSTM]:
    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.LSTM)]


def cudnn_problems(layer: keras.layers.LSTM) -> list[str]:
    """Why a layer would miss the cuDNN kernel (empty when it is eligible)."""
    cell = layer.cell
    problems = []
    if not _do_lstm_arguments_support_cudnn(cell.activation, cell.recurrent_activation,
                                            layer.unroll, cell.use_bias):
        problems.append("needs activation=tanh, recurrent_activation=sigmoid, unroll=False, use_bias=True")
    if cell.recurrent_dropout:
        problems.append("recurrent_dropout must be 0 (put dropout between layers)")
    if layer.use_cudnn not in ("auto", True):
        problems.append(f"use_cudnn={layer.use_cudnn!r}")
    return problems


def assert_cudnn_eligible(model: keras.Model) -> None:
    bad = {layer.name: cudnn_problems(layer) for layer in lstm_layers(model)}
    bad = {name: p for name, p in bad.items() if p}
    if bad:
        raise ValueError(f"LSTM layers not cuDNN-eligible: {bad}")


@contextlib.contextmanager
def portable_lstms(model: keras.Model):
    """Trace with the generic kernel so a SavedModel made on a GPU has no CudnnRNN op."""
    layers = lstm_layers(model)
    saved = [layer.use_cudnn for layer in layers]
    for layer in layers:
        layer.use_cudnn = False
    try:
        yield
    finally:
        for layer, value in zip(layers, saved):
            layer.use_cudnn = value
