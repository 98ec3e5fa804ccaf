"""The sweep driver's pieces that need no trial: worker command lines, shared stages, threads."""
from __future__ import annotations

import json

import pytest

from pipeline.cli import build_parser
from pipeline.runner import Stage
from pipeline.sweep import shared_stages, threads_per_worker, worker_argv

STAGES = [Stage("prepare", None, sections=("data", "text")),
          Stage("train", None, deps=("prepare",), sections=("data", "text", "model", "train")),
          Stage("evaluate", None, deps=("prepare", "train"), sections=("evaluate",), keys=("train.epochs",))]


@pytest.mark.parametrize("argv", [
    ["sweep", "a.yaml", "b.yaml", "--space", "s.yaml", "--trials", "4", "--workers", "2"],
    ["sweep", "a.yaml", "--space", "s.yaml", "--trials", "3", "--sampler", "grid", "--metric", "test_bleu",
     "--direction", "maximize", "--timeout", "60.5", "--no-pruning", "--stages", "prepare,train",
     "--set", "train.epochs=1", "--set", "evaluate.examples=[]", "--workers", "3"],
])
def test_worker_argv_is_the_same_sweep(argv):
    """A worker parses back to the parent's arguments (plus its spec), so no option is dropped."""
    args = build_parser().parse_args(argv)
    spec = {"index": 1, "of": 2, "trials": 2, "study": "s", "storage": "/x.db", "run_id": "r", "seed": 7}
    command = worker_argv(args, spec)
    assert command[1:4] == ["-m", "pipeline", "sweep"]
    back = build_parser().parse_args(command[3:])
    assert json.loads(back.worker) == spec
    assert {**vars(back), "worker": None, "workers": args.workers} == vars(args)


def test_shared_stages_are_the_ones_no_swept_key_reaches():
    assert shared_stages(STAGES, ["train.learning_rate", "model.units"]) == ["prepare"]
    assert shared_stages(STAGES, ["data.max_train_examples"]) == []  # prepare changes: nothing shared
    assert shared_stages(STAGES, ["evaluate.beam_size"]) == ["prepare", "train"]
    assert shared_stages(STAGES, ["train.epochs"]) == ["prepare"]  # evaluate reads it as a single key
    assert shared_stages(STAGES, ["seed"]) == []


def test_threads_per_worker_share_the_cores():
    _, cores = threads_per_worker(1)
    assert threads_per_worker(1)[0] == cores
    assert threads_per_worker(2)[0] == max(1, cores // 2)
    assert threads_per_worker(cores + 5)[0] == 1
