"""Translator training-step throughput (target tokens/s), before/after, alternating in one process.

    .venv/bin/python bench/translate_step_throughput.py --variants before,after,before,after,before,after

The Multi30k attention shape (configs/translate_multi30k_de_en_attention.yaml: 2/3 LSTM 256,
Luong general attention, 5k subwords per side, batch 128, label smoothing 0.1, Adam, clipnorm 1)
on synthetic batches whose source/target lengths follow Multi30k's (~12-14 subwords, right-padded,
bucketed so each batch pads to its own longest sentence); no data download. Each variant trains
`--steps` batches after a warm-up pass over every batch shape (tracing excluded) through `model.fit`
with the pipeline's compile arguments.

Variants:
  before   keras.layers.LSTM and the log-softmax label-smoothed loss (the code before issue 22)
  after    FastLSTM (components/models/fast_lstm.py) and the fused sparse cross-entropy
  lstm     FastLSTM with the old loss (the LSTM kernel alone)
  bf16     after, with model.backward_dtype=bfloat16 (gradient matmuls in bf16, forward float32)

A variant named more than once alternates; the summary uses each variant's median.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.cli_setup import setup_like_the_cli  # noqa: E402

ALLOCATOR = setup_like_the_cli()  # before TensorFlow starts


def old_masked_cross_entropy(label_smoothing: float):
    """The loss before issue 22: a [B, T, V] log-softmax, a gather and a mean over it."""
    import tensorflow as tf

    from components.training.losses import global_token_count, token_mask

    def masked_loss(y_true, logits):
        mask = token_mask(y_true)
        y = tf.cast(y_true, tf.int32)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        nll = -tf.gather(log_probs, y, batch_dims=y.shape.rank)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * -tf.reduce_mean(log_probs, axis=-1)
        return tf.reduce_sum(nll * mask) / tf.maximum(global_token_count(mask), 1.0)
    return masked_loss


def batches(n: int, batch: int, vocab: int, seed: int = 0):
    """(inputs, target_out) numpy batches with Multi30k-like lengths, each padded to its longest row."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        src_len = np.clip(rng.normal(13.5, 4.0, batch).round().astype(int), 3, 40)
        tgt_len = np.clip((src_len * rng.normal(1.05, 0.15, batch)).round().astype(int), 3, 40)
        src = np.zeros((batch, src_len.max()), "int32")
        tgt = np.zeros((batch, tgt_len.max() + 1), "int32")
        for i in range(batch):
            src[i, :src_len[i]] = rng.integers(4, vocab, src_len[i])
            tgt[i, :tgt_len[i] + 1] = rng.integers(4, vocab, tgt_len[i] + 1)
        out.append(({"source": src, "target_in": tgt[:, :-1]}, tgt[:, 1:]))
    return out


def run_variant(variant: str, cfg, data, steps: int) -> float:
    import keras

    from bench.kernel_swap import keras_lstm_in
    from components.training import fit
    from components.training.losses import masked_cross_entropy
    from pipeline.tasks.translate import model as translator

    with keras_lstm_in(translator, enabled=variant == "before"):
        keras.utils.set_random_seed(0)
        model_cfg = cfg.model.model_copy(update={"backward_dtype": "bfloat16"}) if variant == "bf16" else cfg.model
        model = translator.build_translator(model_cfg, 5000, 5000)
    ls = cfg.train.label_smoothing
    loss = masked_cross_entropy(ls) if variant in ("after", "bf16") else old_masked_cross_entropy(ls)
    model.compile(optimizer=fit.make_optimizer(cfg.train.optimizer_spec(), 10_000), loss=loss)
    for x, y in data:  # trace every shape once
        model.train_on_batch(x, y)
    tokens, start = 0, time.perf_counter()
    for i in range(steps):
        x, y = data[i % len(data)]
        model.train_on_batch(x, y)
        tokens += int((y != 0).sum())
    return tokens / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/translate_multi30k_de_en_attention.yaml")
    p.add_argument("--variants", default="before,after,before,after,before,after")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per variant run")
    p.add_argument("--shapes", type=int, default=6, help="distinct batches (shapes) cycled through")
    args = p.parse_args()
    import os

    from pipeline.config import load_config

    cfg = load_config(args.config)
    m = cfg.model
    data = batches(args.shapes, cfg.train.batch_size, 5000)
    print(f"cpus {os.cpu_count()}; {ALLOCATOR}; {args.config}: {m.encoder_layers}/{m.decoder_layers} LSTM {m.units}, "
          f"attention {m.attention}, batch {cfg.train.batch_size}, vocab 5000/5000, {args.steps} steps per run",
          flush=True)
    results: dict[str, list[float]] = {}
    for variant in args.variants.split(","):
        if variant not in ("before", "after", "lstm", "bf16"):
            raise SystemExit(f"unknown variant {variant!r}")
        tps = run_variant(variant, cfg, data, args.steps)
        results.setdefault(variant, []).append(tps)
        print(f"{variant:<7} {tps:>8,.0f} target tokens/s", flush=True)
    median = {v: statistics.median(xs) for v, xs in results.items()}
    print("median target tokens/s: " + ", ".join(f"{v} {x:,.0f}" for v, x in median.items()), flush=True)
    for num, den in (("after", "before"), ("lstm", "before"), ("after", "lstm"), ("bf16", "before"),
                     ("bf16", "after")):
        if num in median and den in median:
            print(f"{num} / {den}: {median[num] / median[den]:.2f}x", flush=True)


if __name__ == "__main__":
    main()
