"""Training-curve PNGs (headless matplotlib)."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history: dict[str, list[float]], path: Path, title: str = "") -> Path:
    """Loss and perplexity per epoch, train vs validation."""
    keys = [k for k in ("loss", "perplexity", "token_accuracy") if k in history]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        if key == "perplexity" and all(v > 0 and math.isfinite(v) for v in history[key]):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
