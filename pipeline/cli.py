"""`python -m pipeline run CONFIG [--stages ...] [--set key=value ...]` and the other jobs."""
from __future__ import annotations

import argparse
import os
import sys
import time


def _stage_list(text: str) -> list[str]:
    return [s.strip() for s in text.replace(" ", ",").split(",") if s.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="Recurrent sequence models from raw text to served SavedModels.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline config (prepare -> train -> evaluate -> export)")
    run.add_argument("config", help="YAML config, e.g. configs/translate_en_ur.yaml")
    run.add_argument("--stages", type=_stage_list, default=None,
                     help="comma-separated subset of stages to run (others must be up to date)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    run.add_argument("--force", action="store_true", help="re-run the selected stages even if unchanged")
    sub.add_parser("serve", help="serve SavedModels over TF Serving's REST and gRPC APIs", add_help=False)
    return parser


def cmd_run(args) -> int:
    from pipeline.config import ConfigError, load_config

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _quiet_library_noise()
    start = time.time()
    print(f"pipeline {cfg.name} ({cfg.task}) from {args.config}", flush=True)
    from pipeline.stages import pipeline_stages
    from pipeline.runner import StageError, check_selection, run_stages
    from components.data.errors import DataError
    from components.tracking.mlflow_tracker import Tracker

    stages = pipeline_stages(cfg)
    try:
        check_selection(stages, args.stages)  # before any MLflow run is opened
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tracker = Tracker(cfg)
    try:
        with tracker.pipeline_run([s.name for s in stages]) as run:
            print(f"MLflow run {run.info.run_id} (experiment {cfg.experiment!r}, {tracker.uri})", flush=True)
            manifests = run_stages(cfg, stages, tracker, selected=args.stages, force=args.force)
    except (StageError, DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"done in {time.time() - start:.1f}s; MLflow run {tracker.parent_run_id}", flush=True)
    summary = pipeline_summary(manifests)
    if summary:
        print(summary, flush=True)
    return 0


def _quiet_library_noise() -> None:
    """Keep the console to one line per stage plus Keras progress; drop known-harmless warnings."""
    import warnings

    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    warnings.filterwarnings("ignore", message=".*Your input ran out of data.*")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)
    import tensorflow_datasets as tfds
    tfds.display_progress_bar(False)


def pipeline_summary(manifests: dict) -> str:
    lines = []
    ev = manifests.get("evaluate", {}).get("metrics", {})
    if "test_bleu" in ev:
        lines.append(f"test BLEU {ev['test_bleu']:.2f} | test perplexity {ev['test_perplexity']:.2f} | "
                     f"val loss {ev['val_loss']:.3f}")
    if "test_perplexity" in ev and "test_bleu" not in ev:  # language model
        line = f"test perplexity {ev['test_perplexity']:.2f} | val perplexity {ev['val_perplexity']:.2f}"
        if "test_bpc" in ev:
            line += f" | test bpc {ev['test_bpc']:.3f} | val bpc {ev['val_bpc']:.3f}"
        tr = manifests.get("train", {}).get("metrics", {})
        if "train_tokens_per_sec" in tr:
            line += f" | train {tr['train_tokens_per_sec']:,.0f} tokens/s"
        lines.append(line)
        sample = manifests.get("evaluate", {}).get("info", {}).get("sample")
        if sample:
            lines.append("sample:")
            lines.extend(f"  | {s}" for s in sample.splitlines()[:8])
    ex = manifests.get("export", {}).get("info", {})
    if ex.get("path"):
        lines.append(f"SavedModel: {ex['path']}")
        for src, hyp in ex.get("examples", {}).items():
            lines.append(f"  {src}  ->  {hyp}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        from components.serving.cli import main as serve_main
        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    return 2
