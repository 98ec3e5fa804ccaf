"""Writing a servable: a tf.Module with its signatures saved as the next TF Serving version,
with warm-up requests and pipeline metadata, and reading back the graph's op types.

Task-neutral: each task's `export.py` builds its module and signatures and calls `save_servable`.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from components.export.warmup import write_warmup_requests
from components.savedmodel.layout import METADATA_FILE, publish_version


def save_servable(module: tf.Module, signatures: dict, base: Path, warmup: list | None = None,
                  metadata: dict | None = None) -> Path:
    """Write to a hidden temp folder, then rename to the next version (never half-visible).

    ``warmup``: requests for assets.extra/tf_serving_warmup_requests; ``metadata``: what the
    pipeline knew at export (config name, languages, BLEU tokenizer), as assets.extra/pipeline.json
    for the `translate`/`evaluate` commands. Both are written before the rename so a server never
    sees the version without them; TF Serving ignores other files in assets.extra."""
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        if warmup:
            write_warmup_requests(tmp, warmup)
        if metadata:
            (tmp / METADATA_FILE).parent.mkdir(parents=True, exist_ok=True)
            (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
        final = publish_version(tmp, base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def graph_op_types(saved_model_dir: Path) -> set[str]:
    """All op types in the SavedModel's graph and function library (for the CudnnRNN check)."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops = set()
    for mg in sm.meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
    return ops
