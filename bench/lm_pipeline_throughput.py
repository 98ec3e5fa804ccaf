"""LM training throughput through the real pipeline path (tokens/s), before and after.

    python bench/lm_pipeline_throughput.py                       # 2x200 word LM, vocab 24,033
    python bench/lm_pipeline_throughput.py --steps 200 --variants before,after,sampled
    python bench/lm_pipeline_throughput.py --config configs/lm_shakespeare_char.yaml

Unlike `bench/lm_throughput.py` (random tokens through `train_on_batch`), this runs the
pipeline's own `prepare` and `train` stage functions (`pipeline/stages/lm.py`) on the real
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
  bf16     after + `model.output_dtype=bfloat16` (output projection computed in bf16)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import console  # noqa: E402  (before TensorFlow: no C++ start-up log lines)

console.setup(verbose="--verbose" in sys.argv)

VARIANTS = {
    "before": ["train.steps_per_execution=1"],
    "after": [],
    "sampled": ["model.softmax=sampled"],
    "bf16": ["model.output_dtype=bfloat16"],
}


def _stage_ctx(cfg, name, out_dir, inputs, tracking, fingerprint):
    from pipeline.runner import StageContext

    out_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(cfg, name, out_dir, inputs, {}, tracking, fingerprint)


def _prepare(cfg, root: Path) -> Path:
    """The real prepare stage, cached under `root` between bench runs."""
    from components.tracking.mlflow_tracker import NoTracking
    from pipeline.stages import lm

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
    from pipeline.stages import lm

    overrides = [f"train.epochs=2", f"train.steps_per_epoch={args.steps}", f"work_dir={root / variant}",
                 *VARIANTS[variant], *args.overrides]
    cfg = load_config(args.config, overrides)
    tracker = Tracker(cfg, tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    original = lm.lm_callbacks
    if variant == "before":
        lm.lm_callbacks = _synchronous_callbacks(original)
    try:
        with tracker.pipeline_run(["train"]), tracker.stage_run("train", variant) as tracking:
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/lm_shakespeare_word.yaml")
    p.add_argument("--steps", type=int, default=140, help="BPTT windows per epoch (2 epochs)")
    p.add_argument("--variants", default="before,after", help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override for every variant")
    p.add_argument("--work-dir", default=None, help="where prepared data is cached (default: a temp dir)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    console.quiet_python_libraries()
    import os

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from pipeline.config import load_config

    cfg = load_config(args.config, args.overrides)
    root = Path(args.work_dir or tempfile.mkdtemp(prefix="lm-bench-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    prepare_dir = _prepare(cfg, root)
    print(f"cpus {os.cpu_count()}; {args.config}: {cfg.model.layers}x{cfg.model.units} LSTM, embedding "
          f"{cfg.model.embedding_dim}, batch {cfg.train.batch_size} x seq_len {cfg.train.seq_len}, "
          f"{args.steps} windows/epoch x 2 epochs", flush=True)
    results = {}
    for variant in args.variants.split(","):
        r = results[variant] = run_variant(args, variant, prepare_dir, root)
        print(f"{variant:<8} {r['epochs'][-1]:>8,.0f} tokens/s  (epoch 1 with tracing: {r['epochs'][0]:,.0f}; "
              f"val ppl after 2 short epochs {r['val_ppl']:.1f}; {r['params']:,} params)", flush=True)
    if "before" in results and "after" in results:
        print(f"after / before: {results['after']['epochs'][-1] / results['before']['epochs'][-1]:.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
