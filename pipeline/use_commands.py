"""Use an exported model on your files: each task's commands (`translate`, `evaluate`, `score`,
`generate`), wired into the main CLI through the task registry.

MODEL is an export folder (`exports/NAME`: its newest version), a version folder
(`exports/NAME/3`) or a registry URI (`models:/NAME@ALIAS`, `models:/NAME/VERSION`). Bad input
-> one `error: ...` line, exit 1. The commands themselves live in `pipeline/tasks/<task>/commands.py`.
"""
from __future__ import annotations

import argparse
import os
import sys

from pipeline.tasks import TASKS

COMMANDS = tuple(name for task in TASKS.values() for name in task.command_names)
_MODEL_HELP = "exports/NAME (newest version), exports/NAME/VERSION, or models:/NAME@ALIAS | models:/NAME/VERSION"


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI for models:/ (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    p.add_argument("--cache-dir", default=None,
                   help="where models:/ downloads are kept (default: work/registry_models, shared with serve)")


def add_parsers(sub) -> None:
    """Register every task's commands on the main CLI's subparsers."""
    for task in TASKS.values():
        task.commands().add_parsers(sub, common)


def dispatch(args) -> int:
    """Run one of COMMANDS; an InferenceError becomes one `error:` line and exit code 1."""
    from components.inference.errors import InferenceError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if hasattr(sys.stdout, "reconfigure"):  # inputs are read as strict UTF-8; outputs are written so too
        sys.stdout.reconfigure(encoding="utf-8")
    from pipeline.tasks import TASKS

    task = next(t for t in TASKS.values() if args.command in t.command_names)
    try:
        return task.commands().COMMANDS[args.command](args)
    except InferenceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `... | head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 1
