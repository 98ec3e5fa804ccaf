"""TensorFlow's BFC allocator for CPU tensors, on unless the user says otherwise.

Why: TensorFlow's default CPU allocator passes every tensor to glibc malloc, and malloc serves
blocks above its mmap threshold (32 MB at most) with fresh pages from the kernel and unmaps
them on free. A training step's large tensors (the LM's [700 x 24,033] logits and their
gradient are 67 MB each) are therefore page-faulted and zeroed again every step. The BFC
allocator keeps freed regions for reuse. Measured on this project's steps (docs/benchmarks.md,
"The CPU allocator"): 2.5-4x fewer page faults, translator step 1.19x, LM 1.22x, the same peak
memory, the same LM perplexity. It must be chosen before TensorFlow creates its CPU allocator
(the first op), so the CLI (training and `serve`) calls this first thing; `TF_CPU_ALLOCATOR_USE_BFC=false` in the
environment keeps TensorFlow's default. On CPUs where TensorFlow turns oneDNN on by itself
(AVX512-VNNI/BF16, AMX), oneDNN's own pooling allocator already avoids the faults, and the
setting changes nothing there.
"""
from __future__ import annotations

import os

ENV = "TF_CPU_ALLOCATOR_USE_BFC"
ALLOWED = ("true", "false", "1", "0")  # what TensorFlow's ReadBoolFromEnvVar accepts, any case


def prefer_bfc_allocator(environ=os.environ) -> str:
    """Sets the variable to true unless already set; returns the value TensorFlow will read.

    Raises ValueError on a value TensorFlow cannot read: it would only log an error and
    silently keep its default allocator, so a typo would change speed without a word.
    """
    value = environ.setdefault(ENV, "true")
    if value.lower() not in ALLOWED:
        raise ValueError(f"{ENV}={value!r} is not a boolean: allowed values are {', '.join(ALLOWED)} "
                         "(true: the BFC allocator, the default; false: TensorFlow's own)")
    return value
