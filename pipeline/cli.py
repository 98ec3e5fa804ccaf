"""`python -m pipeline run CONFIG [--stages ...] [--set key=value ...]` and the other jobs
(`compare`, `register`, `serve`)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from pipeline.use_commands import COMMANDS as USE_COMMANDS
from pipeline.use_commands import add_parsers, dispatch


def _stage_list(text: str) -> list[str]:
    return [s.strip() for s in text.replace(" ", ",").split(",") if s.strip()]


def build_parser() -> argparse.ArgumentParser:
    prog = "python -m pipeline" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name  # or seqpipe
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Recurrent sequence models from raw text to served SavedModels.")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ start-up log lines (hidden by default); any position")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a pipeline config (prepare -> train -> evaluate -> export)")
    run.add_argument("config", nargs="+",
                     help="YAML config (a path, or a bundled name such as translate_en_fr); several merge "
                          "left to right (later files win, key by key)")
    run.add_argument("--print-config", action="store_true",
                     help="print the resolved config (after merging and --set) as YAML and exit")
    run.add_argument("--stages", type=_stage_list, default=None,
                     help="comma-separated subset of stages to run (others must be up to date)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    run.add_argument("--force", action="store_true", help="re-run the selected stages even if unchanged")
    sub.add_parser("serve", help="serve SavedModels over TF Serving's REST and gRPC APIs "
                                 "(also from the MLflow Model Registry: --model models:/NAME@ALIAS)",
                   add_help=False)

    cmp = sub.add_parser("compare", help="compare the pipeline runs of an MLflow experiment",
                         description="List an experiment's pipeline runs, best first by a metric, with the "
                                     "params that differ between them.")
    cmp.add_argument("--experiment", help="experiment name (default: the only experiment with runs)")
    cmp.add_argument("--metric", dest="metrics", action="append", default=[], metavar="NAME",
                     help="metric to show, e.g. test_bleu (repeatable; the first sorts; default: "
                          "test_bleu, else test_perplexity, val_perplexity, val_loss)")
    cmp.add_argument("--filter", dest="filter_string", default=None, metavar="FILTER",
                     help="MLflow search filter, e.g. \"params.`train.optimizer` = 'adam'\"")
    cmp.add_argument("--sweep", default=None, metavar="RUN_ID",
                     help="list the trials of one sweep (its MLflow run id, or the sweep id) instead")
    cmp.add_argument("--top", type=int, default=None, metavar="N", help="list only the best N runs")
    cmp.add_argument("--order", choices=("asc", "desc"), default=None,
                     help="sort order (default: desc for bleu/accuracy, asc for loss/perplexity/bpc)")
    cmp.add_argument("--format", dest="fmt", choices=("table", "csv", "markdown", "json"), default="table")
    cmp.add_argument("--plot", default=None, metavar="OUT.png",
                     help="draw the listed runs' per-epoch validation curves into this PNG")
    cmp.add_argument("--ignore-param", dest="ignore_params", action="append", default=[], metavar="PATTERN",
                     help="leave matching params out of the diff (glob, repeatable), e.g. work_dir")
    cmp.add_argument("--tracking-uri", default=None,
                     help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")

    reg = sub.add_parser("register", help="register a run's exported SavedModel in the MLflow Model Registry",
                         description="Register the SavedModel a pipeline run exported as a new version of a "
                                     "registered model, and optionally point an alias at it.")
    reg.add_argument("run_id", metavar="RUN_ID", help="the pipeline (parent) run, or its export stage run")
    reg.add_argument("--name", default=None, help="registered model name (default: the pipeline's model name)")
    reg.add_argument("--alias", default=None, help="alias to point at the new version, e.g. champion")
    reg.add_argument("--tracking-uri", default=None,
                     help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    add_parsers(sub)  # translate, evaluate, score, generate (pipeline/use_commands.py)
    from pipeline.sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)  # sweep (pipeline/sweep.py)
    return parser


def _mlflow_client(tracking_uri: str | None):
    """A client for the resolved URI; a missing sqlite file is an error, not a new empty store."""
    from components.tracking.uri import check_store_exists, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_store_exists(uri, "run a pipeline first, or pass --tracking-uri / set MLFLOW_TRACKING_URI")
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def cmd_compare(args) -> int:
    from components.tracking import compare

    try:
        client = _mlflow_client(args.tracking_uri)
        experiment = compare.find_experiment(client, args.experiment)
        runs = compare.search_pipeline_runs(client, experiment.experiment_id, args.filter_string,
                                              sweep=args.sweep)
        if not runs:
            where = f" matching {args.filter_string!r}" if args.filter_string else ""
            raise compare.CompareError(f"no pipeline runs{where} in experiment {experiment.name!r}")
        from pipeline.tasks import default_compare_metrics

        result = compare.build_comparison(experiment.name, [compare.run_record(r) for r in runs],
                                          args.metrics, args.order, args.top, args.ignore_params,
                                          default_metrics=default_compare_metrics())
        print(compare.render(result, args.fmt), flush=True)
        if args.plot:
            from components.tracking.plots import plot_run_curves

            histories = compare.validation_histories(client, experiment.experiment_id, result.runs)
            labels = compare.curve_labels(result)
            curves = {labels[r.run_id]: histories.get(r.run_id, {}) for r in result.runs}
            try:
                path = plot_run_curves(curves, args.plot, title=f"{experiment.name}: validation curves")
            except ValueError as err:
                raise compare.CompareError(f"--plot: {err} (per-epoch metrics live on each run's train stage)")
            print(f"plot: {path} ({len(curves)} run(s))", file=sys.stderr, flush=True)
    except (compare.CompareError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_register(args) -> int:
    from components.tracking.registry import RegistryError, register_export

    try:
        client = _mlflow_client(args.tracking_uri)
        version = register_export(client, args.run_id, name=args.name, alias=args.alias)
    except (RegistryError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    uri = f"models:/{version.name}/{version.version}"
    print(f"registered {uri} from export run {version.run_id} (source {version.source})")
    if args.alias:
        print(f"alias @{args.alias} -> version {version.version}")
    target = f"models:/{version.name}@{args.alias}" if args.alias else uri
    print(f"serve it: python -m pipeline serve --model {target} --tracking_uri {client.tracking_uri}")
    return 0


def cmd_run(args) -> int:
    """`run`, with the reliability wrapping: interrupts, OS errors and the work-folder lock."""
    from pipeline.interrupt import Interrupted, InterruptGuard
    from pipeline.preflight import os_error_line

    guard = InterruptGuard().install()
    try:
        return _run(args, guard)
    except Interrupted as stop:
        print(stop.message(), file=sys.stderr, flush=True)
        return stop.exit_code
    except OSError as err:  # ENOSPC, EROFS, EACCES, ...: one line naming the path
        print(f"error: {os_error_line(err)}", file=sys.stderr, flush=True)
        return 1
    except Exception as err:
        if not type(err).__module__.startswith("mlflow"):
            raise
        # The tracking server went away mid-run (pre-flight found it up): one line, not 100.
        print(f"error: MLflow: {str(err).splitlines()[0][:300]}", file=sys.stderr, flush=True)
        return 1
    finally:
        guard.uninstall()


def _run(args, guard) -> int:
    from pipeline.config import ConfigError
    from pipeline.config_files import load_configs, resolved_yaml

    try:
        cfg = load_configs(args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        print(resolved_yaml(cfg), end="", flush=True)
        return 0
    from components.tracking.uri import resolve_tracking_uri
    from pipeline import preflight
    from pipeline.tasks import task_of

    task = task_of(cfg)
    selected = args.stages
    try:  # before TensorFlow starts and before any MLflow run is opened: seconds, not minutes
        preflight.run_checks(cfg, selected, task.stage_names, resolve_tracking_uri(cfg.mlflow.tracking_uri))
    except preflight.PreflightError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    preflight.http_client_defaults()
    from components.runtime.locks import LockHeld, WorkLock

    lock = None
    if "TF_CONFIG" not in os.environ:  # one process: lock now, before TensorFlow starts (workers: below)
        try:  # one run per work folder; held until this process ends (the kernel drops it on any exit)
            lock = WorkLock(Path(cfg.work_dir) / cfg.name).acquire(f"python -m pipeline run {' '.join(args.config)}")
        except LockHeld as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    # MLflow prints a URL per (nested) run against a server; we print the parent run's once.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from components.training import distribute

    try:
        # Before any other TensorFlow op: logical devices and collective ops are start-up settings.
        strategy = distribute.make_strategy(cfg.train.strategy_spec())
    except (ValueError, RuntimeError) as err:
        print(f"error: train.distribute: {err}", file=sys.stderr)
        return 2
    chief = distribute.is_chief()
    from pipeline import console

    console.quiet_python_libraries()
    start = time.time()
    print(f"pipeline {cfg.name} ({cfg.task}) from {' + '.join(args.config)}"
          + ("" if chief else f" [{distribute.worker_name()}: trains only; the chief logs and exports]"), flush=True)
    from components.data.errors import DataError
    from components.runtime.cleanup import remove_dead_temps
    from components.tracking.mlflow_tracker import NullTracker, Tracker
    from pipeline.runner import (
        StageError,
        check_selection,
        code_fingerprint,
        current_pipeline_run,
        run_stages,
        stale_stages,
    )

    stages = task.stages()
    try:
        check_selection(stages, selected)  # before any MLflow run is opened
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not chief:
        # Workers only train (every replica must join each step); their files go to their own
        # folder, so a killed worker resumes from its own checkpoints and nothing races the chief's.
        cfg = cfg.model_copy(update={"work_dir": str(Path(cfg.work_dir) / ".workers" / distribute.worker_name())})
        selected = [s for s in (selected or [st.name for st in stages]) if s in ("prepare", "train")] or ["train"]
        selected = sorted(set(selected) | {"prepare"}, key=[st.name for st in stages].index)
    root = Path(cfg.work_dir) / cfg.name
    if lock is None:
        try:
            lock = WorkLock(root).acquire(f"python -m pipeline run {' '.join(args.config)}")
        except LockHeld as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    remove_dead_temps(root, log=lambda m: print(m, flush=True))
    if hasattr(cfg, "export"):
        remove_dead_temps(Path(cfg.export.export_dir) / cfg.model_name, log=lambda m: print(m, flush=True))
    try:  # data problems fail here, before an MLflow run exists
        print(task.data_source(cfg).preflight(), flush=True)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if chief and not stale_stages(cfg, stages, selected, args.force):
        # Nothing would run: a new MLflow run would only copy the current one's metrics.
        tracker = NullTracker()
        current = current_pipeline_run(cfg, stages)
        print("every stage is unchanged: no new MLflow run"
              + (f"; the current one is {current}" if current else ""), flush=True)
    elif chief:
        tracker = Tracker(cfg.run_spec(), code_fingerprint=code_fingerprint())
    else:
        tracker = NullTracker()
    try:
        with lock, tracker.pipeline_run([s.name for s in stages]) as run:
            if run is not None:
                print(f"MLflow run {run.info.run_id} (experiment {cfg.experiment!r}, {tracker.uri})", flush=True)
                if tracker.uri.startswith("http"):
                    print(f"  {tracker.uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/"
                          f"{run.info.run_id}", flush=True)
            manifests = run_stages(cfg, stages, tracker, selected=selected, force=args.force, strategy=strategy,
                                   interrupt=guard)
    except (StageError, DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    distribute.barrier(strategy)
    if not chief:
        print(f"done in {time.time() - start:.1f}s ({distribute.worker_name()}; files in {cfg.work_dir})", flush=True)
        return 0
    run_note = f"MLflow run {tracker.parent_run_id}" if tracker.parent_run_id else "nothing re-ran"
    print(f"done in {time.time() - start:.1f}s; {run_note}", flush=True)
    summary = task.summary(manifests)
    if summary:
        print(summary, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # --verbose is global (any position, also for serve): it must act before TensorFlow loads.
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    from pipeline import console

    console.setup(verbose=verbose)
    if argv and argv[0] == "serve":
        from components.serving.cli import main as serve_main
        return serve_main(argv[1:])
    from components.runtime.allocator import prefer_bfc_allocator

    try:
        prefer_bfc_allocator()  # before TensorFlow's first op (training steps: 1.2x, docs/benchmarks.md)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "compare":
        return cmd_compare(args)
    if args.command == "register":
        return cmd_register(args)
    if args.command == "sweep":
        from pipeline.sweep import cmd_sweep
        return cmd_sweep(args)
    if args.command in USE_COMMANDS:
        return dispatch(args)
    return 2
