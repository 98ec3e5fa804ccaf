"""This CPU's float32 matmul rate right now, at the shapes the project's steps use (GFLOP/s).

    .venv/bin/python bench/matmul_rates.py

The physical limit to quote next to a training step's achieved rate: the machine is shared and
its speed changes by hour, so take these in the same session as the step being judged.
Each shape is one `tf.matmul` in a `tf.function`, repeated to ~2 GFLOP of work, median of 3.
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


def rate(m: int, k: int, n: int) -> float:
    import tensorflow as tf

    a, b = tf.random.normal((m, k)), tf.random.normal((k, n))
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

    print(f"cpus {os.cpu_count()}; float32 tf.matmul, GFLOP/s (median of 3)")
    for name, (m, k, n) in SHAPES.items():
        print(f"  {m:>5} x {k:>4} x {n:>5}  {rate(m, k, n):7.1f}  {name}")
