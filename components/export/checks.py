"""Checks every export passes before a stage reports it: portable graph, faithful reload.

Run at export time rather than discovered in production: a SavedModel traced with the
cuDNN kernel does not load on a CPU server, and a reload that decodes differently from the
trained model means the serving graph is wrong.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from components.export.translator_export import graph_op_types


class ExportCheckError(RuntimeError):
    pass


def assert_portable(path: Path) -> None:
    cudnn_ops = sorted(op for op in graph_op_types(path) if op.startswith("CudnnRNN"))
    if cudnn_ops:
        raise ExportCheckError(f"exported graph is not portable: it contains {cudnn_ops}")


def check_translator_reload(path: Path, translate_fn, examples: list[str]) -> list[str]:
    """Reload in this process and compare `serving_default` with `translate_fn`; returns the outputs."""
    from components.evaluation.translation_eval import translate_corpus

    expected = translate_corpus(translate_fn, examples, 64)
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = [s.decode("utf-8") for s in served(inputs=tf.constant(examples))["outputs"].numpy()]
    if got != expected:
        raise ExportCheckError(f"reloaded SavedModel disagrees with the in-process decode: {got} != {expected}")
    return got


def check_lm_reload(path: Path, local, prompts: list[str], tokens: int) -> dict:
    """Reload and compare greedy `generate` and `score` with the in-process `LMServing` module."""
    n = len(prompts)
    gen_args = dict(prompt=tf.constant(prompts), max_tokens=tf.fill([n], max(tokens, 1)),
                    temperature=tf.zeros([n]), top_k=tf.zeros([n], tf.int32))
    expected = [s.decode("utf-8") for s in local.generate(**gen_args)["outputs"].numpy()]
    expected_score = local.score(tf.constant(prompts))["log_likelihood"].numpy()
    loaded = tf.saved_model.load(str(path))
    got = [s.decode("utf-8") for s in loaded.signatures["generate"](**gen_args)["outputs"].numpy()]
    got_score = loaded.signatures["score"](inputs=tf.constant(prompts))["log_likelihood"].numpy()
    if got != expected:
        raise ExportCheckError(f"reloaded SavedModel generates differently: {got} != {expected}")
    if not np.allclose(got_score, expected_score, rtol=1e-4, atol=1e-3):
        raise ExportCheckError(f"reloaded SavedModel scores differently: {got_score} != {expected_score}")
    return {"generated": got, "log_likelihood": [float(x) for x in got_score],
            "signatures": sorted(loaded.signatures.keys())}
