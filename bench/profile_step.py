"""Where a word-LM training step's time goes, by op class, with achieved GFLOP/s (before vs after).

    .venv/bin/python bench/profile_step.py [--reps 5]

The pipeline's LM training step (configs/lm_shakespeare_word.yaml shape: 2x200 LSTM, vocab
24,033, batch 20 x 35 steps, SGD with global-norm clipping) timed whole, and each op class timed
alone as its own compiled function on the same shapes (forward + backward):

  output projection   [700 x 200] @ [200 x 24,033] and its two gradient matmuls
  softmax + CE        the fused sparse softmax cross-entropy over [700 x 24,033] logits
  extra softmax       the keras_hub perplexity metric's second softmax (before only)
  LSTM stack          2 LSTM layers, Keras' kernel (before) or FastLSTM (after)
  optimizer           clip_by_global_norm + SGD update of every weight

"rest" is the whole step minus these (embedding, dropout, state carry, Keras bookkeeping).
Reference matmul rates are measured in the same run, so the GFLOP/s compare with what this CPU
does right now (it is shared). Variants alternate rep by rep; medians are printed.
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

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.models.fast_lstm import FastLSTM  # noqa: E402
from components.training import fit  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.tasks.lm import model as language_model  # noqa: E402

B, T, E, U, V = 20, 35, 200, 200, 24033


def _timed(fn, *args, calls: int = 5) -> float:
    """Mean seconds per call over `calls` (one rep); the caller takes the median over reps."""
    start = time.perf_counter()
    for _ in range(calls):
        out = fn(*args)
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
    return (time.perf_counter() - start) / calls


def matmul_fn(m, k, n):
    a, b = tf.random.normal([m, k]), tf.random.normal([k, n])
    f = tf.function(lambda: tf.matmul(a, b))
    return f, 2.0 * m * k * n


def projection_fn(bf16: bool = False):
    from components.models.bf16_projection import matmul_bf16_backward

    x, w = tf.random.normal([B * T, U]), tf.Variable(tf.random.normal([U, V]) * 0.1)
    matmul = matmul_bf16_backward if bf16 else tf.matmul

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(matmul(x, tf.convert_to_tensor(w)) * 1e-3)
        return tape.gradient(y, [x, w])
    return f, 3 * 2.0 * B * T * U * V


def softmax_fn():
    logits = tf.random.normal([B * T, V])
    labels = tf.random.uniform([B * T], 0, V, tf.int32)

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        return tape.gradient(loss, logits)
    return f, 0.0


def extra_softmax_fn():
    logits = tf.random.normal([B, T, V])
    labels = tf.random.uniform([B, T], 0, V, tf.int32)
    import keras_hub

    metric = keras_hub.metrics.Perplexity(from_logits=True)
    f = tf.function(lambda: metric.update_state(labels, logits))
    return f, 0.0


def lstm_fn(cls):
    layers = [cls(U, return_sequences=True) for _ in range(2)]
    x = tf.random.normal([B, T, E])
    layers[0].build((B, T, E))
    layers[1].build((B, T, U))
    weights = [w for layer in layers for w in layer.trainable_weights]

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layers[1](layers[0](x, training=True), training=True)
            loss = tf.reduce_sum(y)
        return tape.gradient(loss, [x, *weights])
    # x @ W and h @ U for every step, forward and the two backward matmuls.
    return f, 2 * 3 * 2.0 * B * T * (E + U) * 4 * U


def optimizer_fn(model, cfg):
    opt = fit.make_optimizer(cfg.train.optimizer_spec())
    grads = [tf.random.normal(w.shape) * 1e-3 for w in model.trainable_weights]
    opt.build(model.trainable_weights)
    f = tf.function(lambda: opt.apply_gradients(zip(grads, model.trainable_weights)))
    return f, 0.0


def train_step_fn(variant, cfg):
    lstm = keras.layers.LSTM if variant == "before" else FastLSTM
    original = language_model.FastLSTM
    language_model.FastLSTM = lstm
    try:
        model = language_model.build_language_model(cfg.model, V, stateful=True, batch_size=B)
    finally:
        language_model.FastLSTM = original
    metrics = []
    if variant == "before":
        import keras_hub

        metrics = [keras_hub.metrics.Perplexity(from_logits=True, name="perplexity")]
    model.compile(optimizer=fit.make_optimizer(cfg.train.optimizer_spec()), metrics=metrics,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.integers(4, V, size=(B, T)).astype("int32")
    y = rng.integers(4, V, size=(B, T)).astype("int32")
    return model, (lambda: model.train_on_batch(x, y))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/lm_shakespeare_word.yaml")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    cfg = load_config(args.config)
    model_b, step_b = train_step_fn("before", cfg)
    _, step_a = train_step_fn("after", cfg)
    parts = {
        "step before": (step_b, 0.0), "step after": (step_a, 0.0),
        "matmul 2048^3": matmul_fn(2048, 2048, 2048), "matmul 700x200x24033": matmul_fn(700, 200, V),
        "matmul 20x400x800": matmul_fn(20, 400, 800),
        "output projection": projection_fn(), "output projection bf16": projection_fn(bf16=True),
        "softmax + CE": softmax_fn(), "extra softmax": extra_softmax_fn(),
        "LSTM stack before": lstm_fn(keras.layers.LSTM), "LSTM stack after": lstm_fn(FastLSTM),
        "optimizer": optimizer_fn(model_b, cfg),
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for fn, _ in parts.values():  # trace / warm up
        fn()
        fn()
    for _ in range(args.reps):
        for name, (fn, _) in parts.items():
            times[name].append(_timed(fn, calls=20 if name.startswith("matmul 20x") else 3))
    ms = {name: 1000 * statistics.median(ts) for name, ts in times.items()}
    flops = {name: f for name, (_, f) in parts.items()}

    def row(name, value_ms, gflop=0.0, total=None):
        rate = f"{gflop / value_ms:>7.0f}" if gflop else " " * 7
        share = f"{100 * value_ms / total:>5.1f}%" if total else " " * 6
        print(f"  {name:<24} {value_ms:>8.1f} ms {share} {rate} GFLOP/s" if gflop else
              f"  {name:<24} {value_ms:>8.1f} ms {share}")

    print(f"cpus {__import__('os').cpu_count()}; {ALLOCATOR}; LM step shape batch {B} x {T}, 2x{U} LSTM, vocab {V:,}; "
          f"medians of {args.reps} alternating reps")
    print("reference matmuls (this run):")
    for name in ("matmul 2048^3", "matmul 700x200x24033", "matmul 20x400x800"):
        row(name, ms[name], flops[name] / 1e6)
    for variant in ("before", "after"):
        total = ms[f"step {variant}"]
        print(f"{variant}: whole step {total:.1f} ms = {B * T / total * 1000:,.0f} tokens/s")
        classes = ["output projection", "softmax + CE"] + (["extra softmax"] if variant == "before" else []) + \
                  [f"LSTM stack {variant}", "optimizer"]
        for name in classes:
            row(name, ms[name], flops[name] / 1e6, total)
        row("rest", total - sum(ms[n] for n in classes), total=total)
    print("bf16 mode (model.output_dtype=bfloat16): the projection's gradient matmuls in bf16")
    row("output projection bf16", ms["output projection bf16"], flops["output projection bf16"] / 1e6)


if __name__ == "__main__":
    main()
