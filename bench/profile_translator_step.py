"""Where the translator's training step spends its time: TensorFlow's op stats, by op type and by op.

    .venv/bin/python bench/profile_translator_step.py [--steps 12] [--backward-dtype bfloat16]

The Multi30k attention shape (configs/translate_multi30k_de_en_attention.yaml) on the synthetic
Multi30k-length batches of bench/translate_step_throughput.py, trained through `train_on_batch`
with the pipeline's loss and optimizer. After one warm-up pass over every batch shape, `--steps`
steps run under `tf.profiler`, and the trace is summarised with the profiler's own
`framework_op_stats` tool (what TensorBoard's profile plugin shows). Self times are summed over
the profiler's threads; "IDLE" is time a thread waited. Shares are what to read: the absolute
milliseconds include the profiler's overhead.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.cli_setup import setup_like_the_cli  # noqa: E402

ALLOCATOR = setup_like_the_cli()  # before TensorFlow starts


def op_stats(logdir: str) -> list[dict]:
    """Rows of the profiler's framework_op_stats table for the newest trace under `logdir`."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    xspace = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    data, ok = plugin.xspace_to_tools_data([xspace], "framework_op_stats", {})
    if not ok:
        raise SystemExit(f"profiler tool failed: {data!r}")
    table = json.loads(data)[0]
    cols = [c["id"] for c in table["cols"]]
    return [dict(zip(cols, (c["v"] if c else None for c in row["c"]))) for row in table["rows"]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/translate_multi30k_de_en_attention.yaml")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--backward-dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--top", type=int, default=15, help="op types and ops to list")
    args = p.parse_args()
    import keras
    import tensorflow as tf

    from bench.translate_step_throughput import batches
    from components.training import fit
    from components.training.losses import masked_cross_entropy
    from pipeline.config import load_config
    from pipeline.tasks.translate.model import build_translator

    cfg = load_config(args.config)
    keras.utils.set_random_seed(0)
    model = build_translator(cfg.model.model_copy(update={"backward_dtype": args.backward_dtype}), 5000, 5000)
    model.compile(optimizer=fit.make_optimizer(cfg.train.optimizer_spec(), 10_000),
                  loss=masked_cross_entropy(cfg.train.label_smoothing))
    data = batches(6, cfg.train.batch_size, 5000)
    for x, y in data:  # trace every shape outside the profile
        model.train_on_batch(x, y)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for i in range(args.steps):
            model.train_on_batch(*data[i % len(data)])
        tf.profiler.experimental.stop()
        rows = op_stats(logdir)

    by_type: collections.Counter = collections.Counter()
    for row in rows:
        by_type[row["type"]] += row["total_self_time"]
    total = sum(by_type.values())
    print(f"{ALLOCATOR}; {args.config}, backward {args.backward_dtype}, {args.steps} profiled steps; "
          f"self time {total / 1e3:,.0f} ms over all threads")
    print("by op type:")
    for kind, us in by_type.most_common(args.top):
        print(f"  {kind:<38} {us / 1e3:9.1f} ms  {100 * us / total:5.1f}%")
    print("by op:")
    for row in sorted(rows, key=lambda r: -r["total_self_time"])[:args.top]:
        print(f"  {row['total_self_time'] / 1e3:9.1f} ms  {100 * row['total_self_time'] / total:5.1f}%  "
              f"{row['type']:<24} {row['operation'][:90]}")


if __name__ == "__main__":
    main()
