"""This CPU's float32 matmul rate right now, at the shapes the project's steps use (GFLOP/s).

    .venv/bin/python bench/matmul_rates.py              # float32
    .venv/bin/python bench/matmul_rates.py --bfloat16   # and a bfloat16 column beside it

The physical limit to quote next to a training step's achieved rate: the machine is shared and
its speed changes by hour, so take these in the same session as the step being judged.
Each shape is one `tf.matmul` in a `tf.function`, repeated to ~2 GFLOP of work, median of 3.
The first line names the CPU and its vector extensions: bf16 compute only pays where oneDNN
finds AVX512-BF16 (or AMX); elsewhere TF falls back to Eigen, slower than float32.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import console  # noqa: E402  (before TensorFlow: no C++ start-up log lines)

console.setup(verbose="--verbose" in sys.argv)

SHAPES = {  # m x k x n
    "big square": (2048, 2048, 2048),
    "LM output projection (700 tokens, 200 -> 24,033)": (700, 200, 24033),
    "LM LSTM step (batch 20, [x;h] 400 -> 4x200)": (20, 400, 800),
    "translator LSTM step (batch 128, 512 -> 4x256)": (128, 512, 1024),
    "translator LSTM step (batch 64, 512 -> 4x256)": (64, 512, 1024),
    "translator output projection (1,792 tokens, 256 -> 5,000)": (1792, 256, 5000),
}


def cpu_features() -> str:
    """Model name and the vector extensions that decide bf16's fate, from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    wanted = [f for f in flags if f.startswith(("avx", "amx")) or f == "fma"]
    return f"{model}; {' '.join(sorted(set(wanted))) or 'no AVX'}"


def rate(m: int, k: int, n: int, dtype: str = "float32") -> float:
    import tensorflow as tf

    a = tf.cast(tf.random.normal((m, k)), dtype)
    b = tf.cast(tf.random.normal((k, n)), dtype)
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b).numpy()
    reps = max(3, int(2e9 / (2 * m * k * n)))
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            out = f(a, b)
        out.numpy()
        rates.append(2 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


if __name__ == "__main__":
    import os

    bf16 = "--bfloat16" in sys.argv
    print(f"cpus {os.cpu_count()}; {cpu_features()}")
    print("tf.matmul, GFLOP/s (median of 3): float32" + (" | bfloat16" if bf16 else ""))
    for name, (m, k, n) in SHAPES.items():
        extra = f" {rate(m, k, n, 'bfloat16'):7.1f}" if bf16 else ""
        print(f"  {m:>5} x {k:>4} x {n:>5}  {rate(m, k, n):7.1f}{extra}  {name}")
