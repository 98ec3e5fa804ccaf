"""Training throughput of the stacked-LSTM language model (tokens/s), with and without XLA.

    python bench/lm_throughput.py --vocab 24033 --embedding 200 --units 200 --layers 2 \\
        --batch 20 --seq-len 35 --steps 40

Random token windows through the same stateful training build, optimizer and loss the
pipeline uses; the first (tracing) steps are excluded. Prints one line per variant.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import console  # noqa: E402  (before TensorFlow: no C++ start-up log lines)

console.setup(verbose="--verbose" in sys.argv)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from components.training import fit  # noqa: E402
from pipeline.tasks.lm.config import LMModelConfig, LMTrainConfig  # noqa: E402
from pipeline.tasks.lm.model import build_language_model  # noqa: E402


def run(args, jit: bool) -> float:
    keras.utils.set_random_seed(0)
    mcfg = LMModelConfig(embedding_dim=args.embedding, units=args.units, layers=args.layers,
                         dropout=args.dropout, tie_weights=args.tie)
    tcfg = LMTrainConfig(batch_size=args.batch, seq_len=args.seq_len, optimizer=args.optimizer,
                         learning_rate=args.lr, jit_compile=jit)
    model = build_language_model(mcfg, args.vocab, stateful=True, batch_size=args.batch)
    model.compile(optimizer=fit.make_optimizer(tcfg.optimizer_spec()),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    rng = np.random.default_rng(0)
    data = rng.integers(4, args.vocab, size=(args.steps + args.warmup, args.batch, args.seq_len + 1)).astype("int32")
    for i in range(args.warmup):
        model.train_on_batch(data[i, :, :-1], data[i, :, 1:])
    start = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        model.train_on_batch(data[i, :, :-1], data[i, :, 1:])
    seconds = time.perf_counter() - start
    return args.steps * args.batch * args.seq_len / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=24033)
    p.add_argument("--embedding", type=int, default=200)
    p.add_argument("--units", type=int, default=200)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--tie", action="store_true")
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--seq-len", type=int, default=35)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--lr", type=float, default=20.0)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--variants", default="eager_graph,xla", help="comma list: eager_graph, xla")
    args = p.parse_args()
    print(f"cpus {os.cpu_count()}; vocab {args.vocab}, {args.layers}x{args.units} LSTM, embedding "
          f"{args.embedding}, batch {args.batch} x seq_len {args.seq_len}, {args.optimizer}", flush=True)
    for variant in args.variants.split(","):
        tokens_per_sec = run(args, jit=variant == "xla")
        print(f"{variant:<12} {tokens_per_sec:>10,.0f} tokens/s", flush=True)


if __name__ == "__main__":
    main()
