"""`sweep CONFIG --space SPACE.yaml --trials N`: an Optuna study whose trials are pipeline runs.

* Each trial is a full pipeline run through the stage runner, with the trial's values as
  `--set` overrides, logged as an MLflow child run of one sweep run (tags `sweep.id`,
  `sweep.trial`). Trials share the config's work folder and run one after another, so stage
  fingerprints reuse `prepare` (and any stage whose inputs a trial did not change); a stage
  whose inputs changed re-runs and replaces the previous trial's output, and every export
  gets its own SavedModel version, so the best trial's export survives later trials.
* The study lives in a sqlite file next to the MLflow store (`mlflow.db` -> `mlflow.optuna.db`;
  a remote store: the work folder). Its name hashes what defines the search (configs,
  overrides, space, metric, direction, sampler), so rerunning the same command continues it:
  `--trials` is the total wanted, not the number to add. Ctrl-C marks the running trial as
  interrupted (not counted) and leaves the study to be continued.
* Pruning: an `EpochMetricReporter` hands the metric's per-epoch value (when Keras logs it,
  e.g. `val_loss`) to Optuna's median pruner; a pruned trial's stage output is discarded.
* `--workers K`: K worker processes (this same command with a hidden `--worker` spec) share
  the study and the sweep run, each with its own work folder (`<work>/<name>/.sweep-workers/<i>`)
  and a static share of the trials. Stages no swept key reaches (`prepare`) stay in the
  config's work folder, shared: built once under a lock, skipped by every other trial. The
  parent holds the work-folder lock, relays the workers' output line by line, and passes
  Ctrl-C on to them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

EXIT_USAGE = 2
WORKERS_DIR = ".sweep-workers"
STAGE_ORDER_FOR_METRICS = ("evaluate", "train", "export", "prepare")


def add_parser(sub) -> None:
    sweep = sub.add_parser("sweep", help="search hyperparameters: an Optuna study of pipeline runs",
                           description="Run an Optuna study whose trials are pipeline runs (MLflow child runs "
                                       "of one sweep run). Rerunning the same command continues the study.")
    sweep.add_argument("config", nargs="+", help="YAML config(s), as for `run`")
    sweep.add_argument("--space", required=True, metavar="SPACE.yaml",
                       help="search space: config keys -> {log_uniform|uniform|int: [lo, hi]} or {choice: [...]}")
    sweep.add_argument("--trials", type=int, required=True, metavar="N",
                       help="total trials wanted in the study (finished ones count: a rerun adds the rest)")
    sweep.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    sweep.add_argument("--metric", default="val_loss",
                       help="the metric to optimize, from the run's stages (val_loss, val_perplexity, test_bleu, "
                            "...; best_<metric> of the train stage is used when only it has one)")
    sweep.add_argument("--direction", choices=("minimize", "maximize"), default=None,
                       help="default: maximize for bleu/accuracy, minimize for loss/perplexity")
    sweep.add_argument("--timeout", type=float, default=None, metavar="S",
                       help="stop starting new trials after S seconds")
    sweep.add_argument("--no-pruning", dest="pruning", action="store_false",
                       help="never stop a trial early (default: median pruner on the per-epoch metric)")
    sweep.add_argument("--stages", default=None, metavar="LIST",
                       help="stages each trial runs, e.g. prepare,train,evaluate (no export per trial)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value for every trial (repeatable)")
    sweep.add_argument("--workers", type=int, default=1, metavar="K",
                       help="run trials in K parallel processes on this machine (default 1)")
    sweep.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # set by the parent of K workers


def _stages(args) -> list[str] | None:
    return [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None


def study_storage(tracking_uri: str, work_dir: str) -> Path:
    """The study's sqlite file: beside a sqlite MLflow store, else in the work folder."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return db.with_name(f"{db.stem}.optuna.db")
    return Path(work_dir) / "optuna.db"


def study_name(cfg_name: str, identity: dict) -> str:
    """Same command -> same study: a hash of what defines the search (not --trials/--timeout)."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return f"{cfg_name}-sweep-{digest[:10]}"


def metric_of(manifests: dict[str, dict], metric: str) -> float | None:
    """The metric from the stages' manifests (evaluate first), else the train stage's best_<metric>."""
    for name in [*STAGE_ORDER_FOR_METRICS, *manifests]:
        value = (manifests.get(name) or {}).get("metrics", {}).get(metric)
        if isinstance(value, (int, float)):
            return float(value)
    best = (manifests.get("train") or {}).get("metrics", {}).get(f"best_{metric}")
    return float(best) if isinstance(best, (int, float)) else None


def counted(trials) -> int:
    """Finished trials toward --trials: complete, pruned and failed, not interrupted ones."""
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return sum(1 for t in trials if t.state in done and not t.user_attrs.get("interrupted"))


def trial_table(study, keys: list[str], metric: str) -> str:
    from tabulate import tabulate

    rows = []
    for t in study.trials:
        state = "INTERRUPTED" if t.user_attrs.get("interrupted") else t.state.name
        value = "" if t.value is None else f"{t.value:.4g}"
        seconds = t.user_attrs.get("seconds")
        rows.append([t.number, *(_short(t.params.get(k, "")) for k in keys), value, state,
                     "" if seconds is None else f"{seconds:.1f}", (t.user_attrs.get("run_id") or "")[:12]])
    return tabulate(rows, headers=["trial", *keys, metric, "status", "time_s", "run"], tablefmt="simple")


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else value


def _check_space(args, dims) -> None:
    """Load the config with each bound and each choice: values the schema rejects fail now."""
    from components.tracking.sweep_space import SpaceError, bounds_to_check
    from pipeline.config import ConfigError
    from pipeline.config_files import load_configs

    for assignment in bounds_to_check(dims):
        (key, value), = assignment.items()
        try:
            load_configs(args.config, [*args.overrides, f"{key}={json.dumps(value)}"])
        except ConfigError as err:
            raise SpaceError(f"{key}: {value!r} is not a valid value: {str(err).splitlines()[0]}") from None


def cmd_sweep(args) -> int:
    """Validate everything, then run the study; exit 2 on a bad config/space, 130 on Ctrl-C."""
    from components.tracking.sweep_space import SpaceError, load_space
    from pipeline.config import ConfigError, flatten
    from pipeline.config_files import load_configs

    for flag, value in (("--trials", args.trials), ("--workers", args.workers)):
        if value < 1:
            print(f"error: {flag} must be at least 1, not {value}", file=sys.stderr)
            return EXIT_USAGE
    try:
        cfg = load_configs(args.config, args.overrides)
        dims = load_space(args.space, flatten(cfg).keys())
        _check_space(args, dims)
        if args.sampler == "grid":
            from components.tracking.sweep_space import grid
            grid(dims)
    except (ConfigError, SpaceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    from pipeline.interrupt import Interrupted, InterruptGuard

    guard = InterruptGuard().install()
    try:
        return _sweep(args, cfg, dims, guard)
    except Interrupted as stop:
        print(stop.message(), file=sys.stderr, flush=True)
        if not args.worker:
            print("the study is saved: rerun the same command to continue it", file=sys.stderr, flush=True)
        return stop.exit_code
    finally:
        guard.uninstall()


def _sweep(args, cfg, dims, guard) -> int:
    from components.tracking import compare
    from components.tracking.uri import resolve_tracking_uri
    from pipeline import preflight
    from pipeline.tasks import task_of

    task = task_of(cfg)
    if args.worker:
        return _work(args, cfg, dims, task, guard, json.loads(args.worker))
    uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)
    try:
        preflight.run_checks(cfg, _stages(args), task.stage_names, uri)
    except preflight.PreflightError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    preflight.http_client_defaults()
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    direction = args.direction or ("maximize" if compare.metric_direction(args.metric) == "desc" else "minimize")
    from components.runtime.locks import LockHeld, WorkLock

    root = Path(cfg.work_dir) / cfg.name
    try:
        lock = WorkLock(root).acquire(f"python -m pipeline sweep {' '.join(args.config)}")
    except LockHeld as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    import optuna

    from components.data.errors import DataError
    from components.training import distribute
    from pipeline import console

    parallel = args.workers > 1  # then this process starts no TensorFlow: the workers train
    try:
        strategy = None if parallel else distribute.make_strategy(cfg.train.strategy_spec())
    except (ValueError, RuntimeError) as err:
        print(f"error: train.distribute: {err}", file=sys.stderr)
        return 2
    console.quiet_python_libraries()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures: one line each, from the objective
    try:
        print(task.data_source(cfg).preflight(), flush=True)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    storage_path = study_storage(uri, cfg.work_dir)
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    identity = {"configs": list(args.config), "overrides": list(args.overrides), "metric": args.metric,
                "direction": direction, "sampler": args.sampler,
                "space": [[d.key, d.kind, list(d.args)] for d in dims]}
    name = study_name(cfg.name, identity)
    storage = _storage(storage_path)
    existing = optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=True)
    done = counted(existing.trials)
    study = optuna.load_study(study_name=name, storage=storage, sampler=_sampler(args.sampler, dims, cfg.seed + done),
                              pruner=_pruner(args.pruning))
    remaining = args.trials - done
    print(f"sweep {name}: {done} trial(s) done, {max(remaining, 0)} to run "
          f"({args.sampler}, {direction} {args.metric}; study in {storage_path})", flush=True)
    with lock:
        parent_id = _sweep_run(cfg, study, name, args, direction)
        client = _client(uri)
        status, failed = "FINISHED", 0
        try:
            if remaining > 0 and parallel:
                guard.where = "the workers' trials"
                failed = _run_workers(args, name, storage_path, parent_id, remaining, cfg.seed + done)
            elif remaining > 0:
                objective = _objective(args, cfg, dims, task, strategy, guard, study_id=name, parent_id=parent_id)
                study.optimize(objective, n_trials=remaining, timeout=args.timeout, catch=(Exception,),
                               gc_after_trial=True)
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            _summarize(client, parent_id, study, args.metric, status)
    keys = [d.key for d in dims]
    print(trial_table(study, keys, args.metric), flush=True)
    best = _best(study)
    if best is None:
        print(f"no trial finished with {args.metric}", flush=True)
        return 1
    print(f"best: trial {best.number} ({args.metric} {best.value:.4g}); MLflow run {best.user_attrs.get('run_id')}; "
          f"export {best.user_attrs.get('export') or '(none)'}", flush=True)
    print(f"sweep run {parent_id}: python -m pipeline compare --sweep {parent_id} --metric {args.metric}", flush=True)
    return 1 if failed else 0


def threads_per_worker(workers: int) -> tuple[int, int]:
    """(TensorFlow intra-op threads for each of `workers` processes, the cores this process may use)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers), cores


def shared_stages(stages, keys) -> list[str]:
    """Stages no trial changes (no swept key in their fingerprint, nor upstream's): parallel
    workers share their output in the config's work folder instead of building one each."""
    shared: list[str] = []
    for stage in stages:
        if all(d in shared for d in stage.deps) and not any(stage.reads(k) for k in keys):
            shared.append(stage.name)
    return shared


def worker_argv(args, spec: dict) -> list[str]:
    """This sweep's command line for one worker process, rebuilt from the parsed arguments."""
    from pipeline.console import is_verbose

    argv = [sys.executable, "-m", "pipeline", *(["--verbose"] if is_verbose() else []), "sweep", *args.config,
            "--space", args.space, "--trials", str(args.trials), "--sampler", args.sampler,
            "--metric", args.metric, "--worker", json.dumps(spec)]
    optional = {"--direction": args.direction, "--timeout": args.timeout, "--stages": args.stages}
    argv += [item for flag, value in optional.items() if value is not None for item in (flag, str(value))]
    argv += [] if args.pruning else ["--no-pruning"]
    return argv + [item for override in args.overrides for item in ("--set", override)]


def _run_workers(args, study: str, storage: Path, parent_id: str, remaining: int, seed: int) -> int:
    """Start min(K, remaining) workers, each with its share of the trials; relay their output;
    pass SIGINT/SIGTERM on (a second one too). Returns how many workers failed."""
    k = min(args.workers, remaining)
    threads, cores = threads_per_worker(k)
    print(f"{k} worker processes, each with {threads} TensorFlow intra-op thread(s) ({cores} cores here)",
          flush=True)
    procs, relays = [], []
    try:
        for i in range(k):
            spec = {"index": i, "of": k, "trials": remaining // k + (i < remaining % k), "study": study,
                    "storage": str(storage), "run_id": parent_id, "seed": seed + 100_000 * i}
            # Its own process group: a terminal's Ctrl-C reaches only this process, which passes it on once.
            proc = subprocess.Popen(worker_argv(args, spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                    process_group=0)
            procs.append(proc)
            relays += [_relay(proc.stdout, sys.stdout, f"[w{i}] "), _relay(proc.stderr, sys.stderr, f"[w{i}] ")]
        _wait(procs)
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        _signal(procs, signum)
        try:
            _wait(procs)
        except KeyboardInterrupt:
            _signal(procs, signum)  # a second signal: the workers stop at once
            _wait(procs)
        raise
    finally:
        for relay in relays:
            relay.join()
    failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
    for i, code in failed:
        print(f"error: worker {i} exited with code {code}", file=sys.stderr, flush=True)
    return len(failed)


def _wait(procs) -> None:
    for proc in procs:
        proc.wait()


def _signal(procs, signum: int) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signum)


def _relay(stream, out, prefix: str) -> threading.Thread:
    def pump():
        for line in stream:
            out.write(prefix + line)
            out.flush()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def _work(args, cfg, dims, task, guard, spec: dict) -> int:
    """One worker: its share of the study's trials in its own work folder, sharing what no trial changes."""
    threads, _ = threads_per_worker(spec["of"])
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)  # before any TensorFlow op
    import optuna

    from components.runtime.locks import LockHeld, WorkLock
    from components.training import distribute
    from pipeline import console

    try:
        strategy = distribute.make_strategy(cfg.train.strategy_spec())
    except (ValueError, RuntimeError) as err:
        print(f"error: train.distribute: {err}", file=sys.stderr)
        return 2
    console.quiet_python_libraries()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    shared_root = Path(cfg.work_dir) / cfg.name
    work_dir = shared_root / WORKERS_DIR / str(spec["index"])
    try:
        lock = WorkLock(work_dir / cfg.name).acquire(f"sweep worker {spec['index']} of {spec['study']}")
    except LockHeld as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    study = optuna.load_study(study_name=spec["study"], storage=_storage(spec["storage"]),
                              sampler=_sampler(args.sampler, dims, spec["seed"], parallel=True),
                              pruner=_pruner(args.pruning))
    shared = {name: shared_root for name in shared_stages(task.stages(), [d.key for d in dims])}
    objective = _objective(args, cfg, dims, task, strategy, guard, study_id=spec["study"], parent_id=spec["run_id"],
                           work_dir=str(work_dir), shared=shared)
    parent = os.getppid()
    with lock:  # an orphaned worker (its parent killed) finishes its trial and starts no other
        study.optimize(objective, n_trials=spec["trials"], timeout=args.timeout, catch=(Exception,),
                       gc_after_trial=True, callbacks=[lambda st, _: st.stop() if os.getppid() != parent else None])
    return 0


def _storage(path):
    """The study's sqlite storage, with a long busy timeout: parallel workers write to it at once."""
    import optuna

    return optuna.storages.RDBStorage(f"sqlite:///{Path(path).resolve()}",
                                      engine_kwargs={"connect_args": {"timeout": 60}})


def _sampler(kind: str, dims, seed: int, parallel: bool = False):
    """Seeded by the config's seed plus the finished trials, so a resumed random search draws new
    points (worker i adds 100000 * i). Parallel TPE assumes running trials score badly (constant liar)."""
    import optuna

    from components.tracking.sweep_space import grid

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        return optuna.samplers.GridSampler(grid(dims), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)


def _pruner(enabled: bool):
    import optuna

    if not enabled:
        return optuna.pruners.NopPruner()
    # Two full trials before any pruning, and never before the second epoch.
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def _client(uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri)


def _sweep_run(cfg, study, name: str, args, direction: str) -> str:
    """The sweep's MLflow parent run: made once per study (its id kept in the study), reopened on resume."""
    import mlflow

    from components.tracking import run_state
    from components.tracking.mlflow_tracker import Tracker

    experiment_id = Tracker(cfg.run_spec()).open_store(log=lambda m: print(m, flush=True))
    client = mlflow.MlflowClient()
    run_id = study.user_attrs.get("mlflow_run_id")
    if run_id:
        try:
            if client.get_run(run_id).info.lifecycle_stage == "active":
                client.update_run(run_id, status="RUNNING")
                client.set_tag(run_id, run_state.PID_TAG, str(os.getpid()))
                return run_id
        except mlflow.exceptions.MlflowException:
            pass  # deleted or from another store: make a new one
    run = client.create_run(experiment_id, run_name=name, tags={
        **run_state.process_tags(), "sweep.id": name, "pipeline.sweep": "true", "pipeline.name": cfg.name})
    run_id = run.info.run_id
    client.log_param(run_id, "sweep.space", Path(args.space).read_text(encoding="utf-8")[:6000])
    for key, value in {"sweep.metric": args.metric, "sweep.direction": direction, "sweep.sampler": args.sampler,
                       "sweep.configs": " + ".join(args.config)}.items():
        client.log_param(run_id, key, value)
    study.set_user_attr("mlflow_run_id", run_id)
    return run_id


def _objective(args, cfg, dims, task, strategy, guard, study_id: str, parent_id: str,
               work_dir: str | None = None, shared: dict | None = None):
    """`work_dir`: where this process's trials put their stage outputs (a worker's own folder);
    `shared`: stage name -> the work folder of outputs all workers share (see `run_stages`)."""
    import json as _json

    import keras
    import optuna

    from components.tracking.mlflow_tracker import Tracker
    from components.tracking.run_state import Pruned
    from components.training.reporting import EpochMetricReporter
    from pipeline.config_files import load_configs
    from pipeline.interrupt import Interrupted
    from pipeline.runner import code_fingerprint, run_stages

    code = code_fingerprint()
    stages = task.stages()

    def objective(trial: optuna.Trial) -> float:
        values = {d.key: d.suggest(trial) for d in dims}
        overrides = [*args.overrides, *(f"{k}={_json.dumps(v)}" for k, v in values.items())]
        trial_cfg = load_configs(args.config, overrides)
        run_cfg = trial_cfg.model_copy(update={"work_dir": work_dir}) if work_dir else trial_cfg
        print(f"--- trial {trial.number}: " + ", ".join(f"{k}={_short(v)}" for k, v in values.items()), flush=True)

        def report(value: float, epoch: int) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise Pruned(epoch + 1, args.metric, value)

        tracker = Tracker(trial_cfg.run_spec(), code_fingerprint=code, under_run_id=parent_id,
                          tags={"sweep.id": study_id, "sweep.trial": str(trial.number)})
        start = time.time()
        try:
            keras.backend.clear_session()
            with tracker.pipeline_run([s.name for s in stages]) as run:
                trial.set_user_attr("run_id", run.info.run_id)
                manifests = run_stages(run_cfg, stages, tracker, selected=_stages(args), strategy=strategy,
                                       interrupt=guard, code=code, shared=shared,
                                       callbacks=[EpochMetricReporter(args.metric, report)])
        except Pruned as pruned:
            print(f"--- trial {trial.number} {pruned}", flush=True)
            if tracker.parent_run_id:
                _client(tracker.uri).set_tag(tracker.parent_run_id, "sweep.state", "PRUNED")
            raise optuna.TrialPruned(str(pruned)) from None
        except Interrupted:
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as err:  # counted as failed; the study goes on (Optuna's own log is off)
            print(f"--- trial {trial.number} failed: {type(err).__name__}: {str(err).splitlines()[0][:300]}",
                  file=sys.stderr, flush=True)
            raise
        finally:
            trial.set_user_attr("seconds", round(time.time() - start, 2))
        value = metric_of(manifests, args.metric)
        export = (manifests.get("export") or {}).get("info", {}).get("path")
        if export:
            trial.set_user_attr("export", export)
        if value is None:
            raise ValueError(f"trial {trial.number}: no stage reported {args.metric!r}")
        print(f"--- trial {trial.number}: {args.metric} {value:.4g} (run {tracker.parent_run_id})", flush=True)
        return value

    return objective


def _best(study):
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    return study.best_trial


def _summarize(client, parent_id: str, study, metric: str, status: str) -> None:
    """The best value and run on the sweep run, then end it (KILLED on Ctrl-C: the study continues later)."""
    best = _best(study)
    if best is not None:
        client.log_metric(parent_id, f"best_{metric}", float(best.value))
        client.set_tag(parent_id, "sweep.best_run_id", best.user_attrs.get("run_id", ""))
        client.set_tag(parent_id, "sweep.best_trial", str(best.number))
    client.log_metric(parent_id, "sweep_trials", float(len(study.trials)))
    client.set_terminated(parent_id, status)

