"""The stage runner with real stages and a real (sqlite) MLflow store."""
import json

import mlflow
import pytest

from components.tracking.mlflow_tracker import Tracker
from pipeline.config import parse_config
from pipeline.runner import MANIFEST, Stage, StageError, run_stages


def _cfg(tmp_path, **train):
    return parse_config({"name": "runner_test", "work_dir": str(tmp_path / "work"),
                         "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db"},
                         "train": {"epochs": 1, **train}})


def _stages(calls, fail_in=None):
    def make(name):
        def fn(ctx):
            calls.append(name)
            (ctx.out_dir / "out.txt").write_text(f"{name} epochs={ctx.cfg.train.epochs}")
            if name == fail_in:
                raise RuntimeError("boom")
            return {"metrics": {f"{name}_metric": 1.0}}
        return fn
    return [Stage("prepare", make("prepare"), sections=("data",)),
            Stage("train", make("train"), deps=("prepare",), sections=("train",)),
            Stage("evaluate", make("evaluate"), deps=("train",), sections=("evaluate",))]


def _run(cfg, stages, **kw):
    tracker = Tracker(cfg.run_spec())
    with tracker.pipeline_run([s.name for s in stages]):
        return run_stages(cfg, stages, tracker, **kw)


def test_skip_unchanged_and_rerun_downstream_of_a_change(tmp_path, capsys):
    calls = []
    _run(_cfg(tmp_path), _stages(calls))
    assert calls == ["prepare", "train", "evaluate"]
    calls.clear()
    _run(_cfg(tmp_path), _stages(calls))
    assert calls == []
    assert capsys.readouterr().out.count("skipped: unchanged") == 3
    _run(_cfg(tmp_path, epochs=2), _stages(calls))
    assert calls == ["train", "evaluate"]  # prepare does not read `train`
    out = (tmp_path / "work" / "runner_test" / "train" / "out.txt").read_text()
    assert out == "train epochs=2"


def test_failed_stage_leaves_previous_output_untouched(tmp_path):
    calls = []
    _run(_cfg(tmp_path), _stages(calls))
    train_dir = tmp_path / "work" / "runner_test" / "train"
    before = json.loads((train_dir / MANIFEST).read_text())
    with pytest.raises(RuntimeError, match="boom"):
        _run(_cfg(tmp_path, epochs=5), _stages(calls, fail_in="train"))
    # The old, complete output is still there and still says what produced it; no temp litter.
    assert json.loads((train_dir / MANIFEST).read_text()) == before
    assert (train_dir / "out.txt").read_text() == "train epochs=1"
    assert not [p for p in train_dir.parent.iterdir() if p.name.startswith(".")]


def test_folder_without_manifest_is_not_trusted(tmp_path):
    calls = []
    _run(_cfg(tmp_path), _stages(calls))
    (tmp_path / "work" / "runner_test" / "train" / MANIFEST).unlink()
    calls.clear()
    _run(_cfg(tmp_path), _stages(calls))
    assert calls == ["train", "evaluate"]


def test_selected_subset_runs_only_what_it_needs(tmp_path, capsys):
    calls = []
    _run(_cfg(tmp_path), _stages(calls), selected=["prepare", "train"])
    assert calls == ["prepare", "train"]
    assert "evaluate  not selected" in capsys.readouterr().out
    calls.clear()
    _run(_cfg(tmp_path), _stages(calls), selected=["evaluate"])  # upstream is current: reused
    assert calls == ["evaluate"]


def test_selected_stages_need_current_upstream(tmp_path):
    with pytest.raises(StageError, match="prepare"):
        _run(_cfg(tmp_path), _stages([]), selected=["train"])
    with pytest.raises(StageError, match="unknown stage"):
        _run(_cfg(tmp_path), _stages([]), selected=["trian"])


def test_mlflow_parent_and_nested_stage_runs(tmp_path):
    cfg = _cfg(tmp_path)
    _run(cfg, _stages([]))
    _run(cfg, _stages([]))  # all skipped, still recorded
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("runner_test")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2
    for parent in parents:
        assert parent.data.params["train.epochs"] == "1"
        assert parent.data.metrics["evaluate_metric"] == 1.0
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(r.data.tags["pipeline.stage"] for r in children) == ["evaluate", "prepare", "train"]
    second = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[1].info.run_id]
    assert all(r.data.tags["skipped"] == "true" for r in second)


# ---------------------------------------------------------------- issue 17
def test_stale_stages_and_current_run(tmp_path):
    from pipeline.runner import current_pipeline_run, stale_stages

    cfg = _cfg(tmp_path)
    assert stale_stages(cfg, _stages([])) == ["prepare"]
    tracker = Tracker(cfg.run_spec())
    with tracker.pipeline_run(["prepare", "train", "evaluate"]):
        run_stages(cfg, _stages([]), tracker)
    assert stale_stages(cfg, _stages([])) == []  # a rerun would skip everything: the CLI opens no run
    assert current_pipeline_run(cfg, _stages([])) == tracker.parent_run_id
    assert stale_stages(cfg, _stages([]), force=True) == ["prepare"]
    assert stale_stages(_cfg(tmp_path, epochs=3), _stages([])) == ["train"]


def test_single_keys_of_other_sections_in_the_fingerprint(tmp_path):
    from pipeline.runner import stage_fingerprint

    stage = Stage("export", lambda ctx: {}, sections=("export",), keys=("evaluate.beam_size",))

    def fp(**evaluate):
        cfg = parse_config({"name": "k", "work_dir": str(tmp_path), "evaluate": evaluate})
        return stage_fingerprint(stage, cfg, {}, "code")

    assert fp() == fp(batch_size=7)  # a key export does not read: no new export
    assert fp() != fp(beam_size=4)


def test_interrupted_stage_ends_runs_killed(tmp_path):
    from pipeline.interrupt import Interrupted

    def stop(ctx):
        raise Interrupted(15, "epoch 2")

    cfg = _cfg(tmp_path)
    with pytest.raises(Interrupted):
        _run(cfg, [Stage("prepare", stop)])
    client = mlflow.MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    exp = client.get_experiment_by_name("runner_test")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]
    assert all(r.data.tags.get("pipeline.pid") for r in runs)
    assert not [p for p in (tmp_path / "work" / "runner_test").iterdir() if ".tmp-" in p.name]


def test_signal_that_surfaces_as_another_error_is_still_an_interrupt(tmp_path, capsys):
    """A SIGINT landing inside code that wraps the handler's exception (as a C extension does
    while TensorFlow starts) must still read as interrupted: no FAILED line, runs KILLED."""
    import os
    import signal

    from pipeline.interrupt import Interrupted, InterruptGuard

    def wrapped(ctx):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the real handler raises Interrupted here
        except KeyboardInterrupt as err:
            raise SystemError("error return with exception set") from err

    guard = InterruptGuard().install()
    try:
        cfg = _cfg(tmp_path)
        with pytest.raises(Interrupted) as info:
            _run(cfg, [Stage("train", wrapped)], interrupt=guard)
    finally:
        guard.uninstall()
    assert info.value.exit_code == 130 and info.value.where == "stage train"
    out, err = capsys.readouterr()
    assert "FAILED" not in out + err
    client = mlflow.MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("runner_test").experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]


def test_pruned_stage_says_pruned_and_ends_runs_killed_with_the_reason(tmp_path, capsys):
    """A sweep's pruner stopping training is not a failure: no FAILED line, MLflow says why."""
    from components.tracking.run_state import END_REASON_TAG, Pruned

    def prune(ctx):
        raise Pruned(2, "val_loss", 6.1934)

    cfg = _cfg(tmp_path)
    with pytest.raises(Pruned):
        _run(cfg, [Stage("train", prune)])
    out, err = capsys.readouterr()
    assert "[1/1] train     pruned at epoch 2 (val_loss 6.193) after" in out
    assert "FAILED" not in out + err
    client = mlflow.MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("runner_test").experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]  # the stage run and the pipeline run
    assert {r.data.tags.get(END_REASON_TAG) for r in runs} == {"pruned at epoch 2 (val_loss 6.193)"}
    assert not (tmp_path / "work" / "runner_test" / "train").exists()  # nothing cached


def test_shared_stage_is_built_once_under_its_lock(tmp_path, capsys):
    """Two processes' runs (a parallel sweep's workers) with their own work folders share `prepare`:
    one builds it in the shared folder while the other waits for the lock, then skips it."""
    import threading
    import time

    from components.tracking.mlflow_tracker import NullTracker

    calls = []

    def slow_prepare(ctx):
        calls.append("prepare")
        time.sleep(0.5)
        (ctx.out_dir / "vocab.txt").write_text("a b c")
        return {}

    def train(ctx):
        calls.append("train")
        assert (ctx.inputs["prepare"] / "vocab.txt").read_text() == "a b c"
        return {}

    stages = [Stage("prepare", slow_prepare, sections=("data",)),
              Stage("train", train, deps=("prepare",), sections=("train",))]
    shared_root = tmp_path / "work" / "runner_test"
    errors = []

    def worker(i):
        cfg = _cfg(tmp_path).model_copy(update={"work_dir": str(tmp_path / f"w{i}")})
        try:
            run_stages(cfg, stages, NullTracker(), shared={"prepare": shared_root})
        except Exception as err:  # noqa: BLE001  (reported below)
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert calls.count("prepare") == 1 and calls.count("train") == 2
    out = capsys.readouterr().out
    assert out.count("prepare   done") == 1 and out.count("prepare   skipped") == 1
    assert (shared_root / "prepare" / MANIFEST).exists() and not (tmp_path / "w0" / "runner_test" / "prepare").exists()
    assert all((tmp_path / f"w{i}" / "runner_test" / "train" / MANIFEST).exists() for i in range(2))


@pytest.mark.parametrize("task", ["translate", "lm"])
def test_task_stage_names_and_keys_match_the_stages(task):
    """`Task.stage_names` lets the CLI check --stages before TensorFlow loads; `Stage.keys` must exist."""
    from pipeline.config import flatten
    from pipeline.tasks import TASKS

    stages = TASKS[task].stages()
    assert tuple(s.name for s in stages) == TASKS[task].stage_names
    keys = set(flatten(parse_config({"name": "x", "task": task})))
    for stage in stages:
        assert set(stage.keys) <= keys, stage.name
