"""LM training throughput through the real pipeline path (tokens/s), before and after.

    python bench/lm_pipeline_throughput.py                       # 2x200 word LM, vocab 24,033
    python bench/lm_pipeline_throughput.py --steps 200 --variants before,after,sampled
    python bench/lm_pipeline_throughput.py --config configs/lm_shakespeare_char.yaml

Unlike `bench/lm_throughput.py` (random tokens through `train_on_batch`), this runs the
pipeline's own `prepare` and `train` stage functions (`pipeline/tasks/lm/stages.py`) on the real
Tiny Shakespeare data: the same tf.data windows, stateful model, compile arguments,
callbacks (stream validation, backups, a real MLflow run in a temporary sqlite store) and
`model.fit`. Training is bounded to `--steps` windows per epoch for 2 epochs; the line
printed per variant is epoch 2's tokens/s (epoch 1 includes tracing), as the pipeline's
own `tokens_per_sec` measures it (validation excluded).

Variants (all in one process, one after the other, on the same data):
  before   the settings before issue 13: one window per compiled call
           (`train.steps_per_execution=1`) and every callback's batch hook synchronous,
           so Keras fetches each step's logs to the host
  after    the current defaults
  sampled  after + `model.softmax=sampled` (sampled-softmax training loss)
  bf16     after + `model.output_dtype=bfloat16` (output projection's gradient matmuls in bf16)
  keras_lstm  after, but with keras.layers.LSTM instead of FastLSTM (the LSTM kernel alone)
  pytorch  the classic PyTorch word_language_model loop (`bench/pytorch_word_lm.py`) on the same
           prepared token ids and model sizes, in a subprocess of `--torch-python` (an
           interpreter with torch; torch is not a project dependency)

A variant may be named more than once (`--variants pytorch,after,pytorch,after`): runs alternate
and the summary uses each variant's median, so a load change hits both sides.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.cli_setup import setup_like_the_cli  # noqa: E402

ALLOCATOR = setup_like_the_cli()  # before TensorFlow starts

VARIANTS = {
    "before": ["train.steps_per_execution=1"],
    "after": [],
    "sampled": ["model.softmax=sampled"],
    "bf16": ["model.output_dtype=bfloat16"],
    "keras_lstm": [],
}


def _stage_ctx(cfg, name, out_dir, inputs, tracking, fingerprint):
    from pipeline.runner import StageContext

    out_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(cfg, name, out_dir, inputs, {}, tracking, fingerprint)


def _prepare(cfg, root: Path) -> Path:
    """The real prepare stage, cached under `root` between bench runs."""
    from components.tracking.mlflow_tracker import NoTracking
    from pipeline.tasks.lm import stages as lm

    out = root / "prepare"
    if not (out / "vocab.json").is_file():
        tmp = root / "prepare.tmp"
        lm.prepare(_stage_ctx(cfg, "prepare", tmp, {}, NoTracking(), "bench"))
        tmp.rename(out)
    return out


def _synchronous_callbacks(make_callbacks):
    """The pre-issue-13 callback list: no callback marked async-safe (each batch hook syncs)."""
    def wrapped(*args, **kwargs):
        callbacks = make_callbacks(*args, **kwargs)
        for cb in callbacks:
            cb.async_safe = False
        return callbacks
    return wrapped


def run_variant(args, variant: str, prepare_dir: Path, root: Path) -> dict:
    from components.tracking.mlflow_tracker import Tracker
    from pipeline.config import load_config
    from pipeline.tasks.lm import stages as lm

    overrides = ["train.epochs=2", f"train.steps_per_epoch={args.steps}", f"work_dir={root / variant}",
                 *VARIANTS[variant], *args.overrides]
    cfg = load_config(args.config, overrides)
    tracker = Tracker(cfg.run_spec(), tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    original = lm.lm_callbacks
    if variant == "before":
        lm.lm_callbacks = _synchronous_callbacks(original)
    from bench.kernel_swap import keras_lstm_in
    from pipeline.tasks.lm import model as language_model

    try:
        with (keras_lstm_in(language_model, enabled=variant == "keras_lstm"),
              tracker.pipeline_run(["train"]), tracker.stage_run("train", variant) as tracking):
            ctx = _stage_ctx(cfg, "train", root / variant / "train", {"prepare": prepare_dir}, tracking,
                             f"bench-{variant}-{time.time_ns()}")
            ctx.log = lambda message: None  # keep the bench output to one line per variant
            result = lm.train(ctx)
    finally:
        lm.lm_callbacks = original
    import json

    history = json.loads((root / variant / "train" / "history.json").read_text())
    return {"epochs": history["tokens_per_sec"], "val_ppl": history["val_perplexity"][-1],
            "params": result["metrics"]["model_parameters"]}


def run_pytorch(args, cfg, prepare_dir: Path) -> dict:
    """The PyTorch yardstick on the same stream, sizes and window budget, in a subprocess."""
    import json
    import subprocess

    if not args.torch_python:
        raise SystemExit("variant pytorch needs --torch-python PATH (an interpreter with torch and numpy)")
    from components.text.vocab import Vocabulary

    vocab = Vocabulary.load(prepare_dir / "vocab.json")
    m, t = cfg.model, cfg.train
    cmd = [args.torch_python, str(Path(__file__).with_name("pytorch_word_lm.py")),
           "--train", str(prepare_dir / "streams" / "train.npy"), "--vocab", str(len(vocab)),
           "--embedding", str(m.embedding_dim), "--units", str(m.units), "--layers", str(m.layers),
           "--dropout", str(m.dropout), "--batch", str(t.batch_size), "--bptt", str(t.seq_len),
           "--lr", str(t.learning_rate), "--clip", str(t.clipnorm or 1e9), "--steps", str(args.steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {"epochs": result["tokens_per_sec"], "val_ppl": float("nan"), "params": 0,
            "note": f"torch {result['torch']}, {result['threads']} threads"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/lm_shakespeare_word.yaml")
    p.add_argument("--steps", type=int, default=140, help="BPTT windows per epoch (2 epochs)")
    p.add_argument("--variants", default="before,after", help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override for every variant")
    p.add_argument("--work-dir", default=None, help="where prepared data is cached (default: a temp dir)")
    p.add_argument("--torch-python", default=None, help="interpreter with torch, for the pytorch variant")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    import os

    from pipeline import console

    console.quiet_python_libraries()

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from pipeline.config import load_config

    cfg = load_config(args.config, args.overrides)
    root = Path(args.work_dir or tempfile.mkdtemp(prefix="lm-bench-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    prepare_dir = _prepare(cfg, root)
    print(f"cpus {os.cpu_count()}; {ALLOCATOR}; {args.config}: {cfg.model.layers}x{cfg.model.units} LSTM, embedding "
          f"{cfg.model.embedding_dim}, batch {cfg.train.batch_size} x seq_len {cfg.train.seq_len}, "
          f"{args.steps} windows/epoch x 2 epochs", flush=True)
    import statistics

    results: dict[str, list[float]] = {}
    for variant in args.variants.split(","):
        if variant not in VARIANTS and variant != "pytorch":
            raise SystemExit(f"--variants: unknown {variant!r}; allowed: {', '.join([*VARIANTS, 'pytorch'])}")
        if variant == "pytorch":
            r = run_pytorch(args, cfg, prepare_dir)
            detail = f"epoch 1: {r['epochs'][0]:,.0f}; {r['note']}"
        else:
            r = run_variant(args, variant, prepare_dir, root)
            detail = (f"epoch 1 with tracing: {r['epochs'][0]:,.0f}; val ppl after 2 short epochs "
                      f"{r['val_ppl']:.1f}; {r['params']:,} params")
        results.setdefault(variant, []).append(r["epochs"][-1])
        print(f"{variant:<8} {r['epochs'][-1]:>8,.0f} tokens/s  ({detail})", flush=True)
    median = {v: statistics.median(xs) for v, xs in results.items()}
    if len(results) > 1:
        print("median tokens/s: " + ", ".join(f"{v} {x:,.0f}" for v, x in median.items()), flush=True)
    for num, den in (("after", "before"), ("after", "keras_lstm"), ("after", "pytorch"), ("bf16", "pytorch"),
                     ("bf16", "after"), ("sampled", "pytorch")):
        if num in median and den in median:
            print(f"{num} / {den}: {median[num] / median[den]:.2f}x", flush=True)

if __name__ == "__main__":
    main()
