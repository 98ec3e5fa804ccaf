"""What this CPU's matmuls do natively, for settings that say `auto`.

Why /proc/cpuinfo: TensorFlow has no public API for CPU features, and the one that matters here
(native bf16 dot products: AVX512-BF16 or AMX) decides whether bf16 gradient matmuls are ~2x
faster than float32 (this project's shapes, `bench/matmul_rates.py --bfloat16`) or slower
(emulated). Elsewhere than Linux the file is absent and the answer is no, which is the safe one.
"""
from __future__ import annotations

from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of a /proc/cpuinfo text (the first `flags` line; all cores list the same)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def native_bf16_matmul(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU has AVX512-BF16 or AMX-BF16."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(cpu_flags(text) & set(BF16_FLAGS))
