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


def plot_run_curves(curves: dict[str, dict[str, list[tuple[int, float]]]], path: Path,
                    title: str = "", metrics: list[str] | None = None) -> Path:
    """Per-epoch curves of several runs on one figure: one panel per metric, one line per run.

    `curves` maps a legend label to {metric: [(epoch, value), ...]}. Raises ValueError when
    no run has any point to draw.
    """
    if metrics is None:
        metrics = []
        for per_run in curves.values():
            metrics.extend(k for k, points in per_run.items() if points and k not in metrics)
    metrics = [m for m in metrics if any(per_run.get(m) for per_run in curves.values())]
    if not metrics:
        raise ValueError("no per-epoch metrics to plot for these runs")
    # One legend for all panels, below them (the labels name runs and their differing params).
    ncol = max(1, min(len(curves), 3 if len(metrics) > 1 else 1))
    legend_rows = -(-len(curves) // ncol)
    legend_inches = 0.22 * legend_rows + 0.15
    height = 3.8 + legend_inches
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics) + 1, height), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lines = {}
    for ax, key in zip(axes[0], metrics):
        values = []
        for i, (label, per_run) in enumerate(curves.items()):
            points = per_run.get(key) or []
            if not points:
                continue
            epochs, ys = zip(*points)
            values.extend(ys)
            lines[label], = ax.plot(epochs, ys, marker="o", ms=3, label=label, color=colors[i % len(colors)],
                                    linestyle=("-", "--", ":", "-.")[i // len(colors) % 4])
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(key)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if "perplexity" in key and values and all(v > 0 and math.isfinite(v) for v in values) \
                and max(values) / min(values) > 10:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.legend(list(lines.values()), list(lines), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, legend_inches / height, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
