"""Write docs/configuration.md from the config schemas, so the reference cannot drift from the code.

Every key of every task's config is listed with its type, default, allowed values or bounds, and
the `Field(description=...)` text; a section's docstring introduces it. The schema is the single
source: change a default or a description in `pipeline/config.py` and regenerate the page with

    python -m pipeline.config_reference --write        # or: ... > docs/configuration.md

`tests/pipeline/test_config_reference.py` fails while the committed page differs from what this
prints. Tasks come from the task registry (`pipeline/tasks/__init__.py`), so a new task's keys appear
without editing this module.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
COMMAND = "python -m pipeline.config_reference --write"

_HEADER = f"""# Configuration reference

<!-- Generated from the schemas in pipeline/config.py by `{COMMAND}`; do not edit by hand.
     tests/pipeline/test_config_reference.py fails when this page is stale. -->

One YAML file per experiment in `configs/`, validated when it loads (pydantic; unknown keys are
an error that lists the allowed keys, a bad value names the key and the allowed values, exit
code 2). `task` picks the schema. Any key can be overridden on the command line with
`--set section.key=value` (the value is parsed as YAML, e.g. `--set train.bucket_boundaries=[8,16]`).

Columns: **type** (`| None` means the key may be `null`), **default** (*required* when there is
none), **allowed** (the values of a choice, or the bounds of a number), and what the key does.
"""


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _strip_none(tp: Any) -> Any:
    """`X | None` -> X (the section class behind an optional nested key); other types unchanged."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def type_name(tp: Any) -> str:
    """A short, stable spelling of an annotation: `int | None`, `list[str]`, `str` for a Literal."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "str" if all(isinstance(v, str) for v in typing.get_args(tp)) else "literal"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in typing.get_args(tp))}]"
    if tp is type(None):
        return "None"
    if _is_model(tp):
        return "section"
    return getattr(tp, "__name__", str(tp))


def allowed(field: FieldInfo) -> str:
    """Literal choices (`a`, `b`), or numeric bounds (`>= 1`, `> 0, < 1`) from the field's constraints."""
    tp = _strip_none(field.annotation)
    if typing.get_origin(tp) is Literal:
        return ", ".join(f"`{v}`" for v in typing.get_args(tp))
    bounds = []
    for item in field.metadata:
        for cls, op in ((annotated_types.Ge, ">="), (annotated_types.Gt, ">"),
                        (annotated_types.Le, "<="), (annotated_types.Lt, "<")):
            if isinstance(item, cls):
                bounds.append(f"`{op} {getattr(item, cls.__name__.lower())}`")
    return ", ".join(bounds)


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "*required*"
    else:
        value = field.default
    if _is_model(type(value)):
        return "(section)"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):  # YAML flow style, as it would be written in a config
        value = json.dumps(value, ensure_ascii=False)
    return f"`{value}`"


def _cell(text: str) -> str:
    """One table cell: on one line, `|` escaped, `<` escaped outside code so `<eos>` is not read as HTML."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "\\<") for i, p in enumerate(parts))


def _doc(cls: type) -> str:
    """The class docstring, unless it is pydantic's inherited BaseModel text."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _fields(cls: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    """The class's own keys first, then inherited ones (task keys before the shared export/mlflow)."""
    own = cls.__dict__.get("__annotations__", {})
    items = list(cls.model_fields.items())
    return [kv for kv in items if kv[0] in own] + [kv for kv in items if kv[0] not in own]


def _row(name: str, field: FieldInfo) -> str:
    return (f"| `{name}` | {_cell('`' + type_name(field.annotation) + '`')} | {default_text(field)} | "
            f"{_cell(allowed(field))} | {_cell(field.description or '')} |")


_TABLE_HEAD = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]


def _section(cls: type[BaseModel], key: str, level: int, out: list[str], seen: dict[type, str]) -> None:
    """One table for `cls`'s keys, then a sub-heading per nested section, depth first.

    A section class met before under the same task (`data.validation` after `data.train`) is
    referred back to instead of repeated.
    """
    out.append(f"{'#' * level} `{key}`\n")
    if cls in seen:
        out.append(f"The same keys as `{seen[cls]}` above.\n")
        return
    seen[cls] = key
    doc = _doc(cls)
    if doc:
        out.append(doc + "\n")
    fields = _fields(cls)
    out.extend(_TABLE_HEAD)
    out.extend(_row(name, field) for name, field in fields)
    out.append("")
    for name, field in fields:
        inner = _strip_none(field.annotation)
        if _is_model(inner):
            _section(inner, f"{key}.{name}", min(level + 1, 6), out, seen)


def render(tasks: dict[str, type[BaseModel]] | None = None) -> str:
    """The whole page, for every task in the registry (or the given `{task: config class}`)."""
    if tasks is None:
        from pipeline.tasks import TASKS

        tasks = {name: task.config_cls for name, task in TASKS.items()}
    out = [_HEADER]
    out.append("Tasks: " + ", ".join(f"[`{name}`](#task-{name})" for name in tasks) + ".\n")
    for name, cls in tasks.items():
        out.append(f"## Task `{name}`\n")
        doc = _doc(cls)
        if doc:
            out.append(doc + "\n")
        fields = _fields(cls)
        out.append("Top-level keys (each section follows):\n")
        out.extend(_TABLE_HEAD)
        out.extend(_row(key, field) for key, field in fields if not _is_model(_strip_none(field.annotation)))
        out.append("")
        seen: dict[type, str] = {}
        for key, field in fields:
            inner = _strip_none(field.annotation)
            if _is_model(inner):
                _section(inner, key, 3, out, seen)
    return "\n".join(out).rstrip("\n") + "\n"


def undocumented(tasks: dict[str, type[BaseModel]] | None = None) -> list[str]:
    """Keys without a `Field(description=...)`, as dotted paths (the test wants none)."""
    if tasks is None:
        from pipeline.tasks import TASKS

        tasks = {name: task.config_cls for name, task in TASKS.items()}
    missing: list[str] = []

    def walk(cls: type[BaseModel], prefix: str) -> None:
        for name, field in cls.model_fields.items():
            inner = _strip_none(field.annotation)
            if _is_model(inner):
                walk(inner, f"{prefix}{name}.")
            elif not field.description:
                missing.append(prefix + name)

    for task, cls in tasks.items():
        walk(cls, f"{task}: ")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.config_reference", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC_PATH.relative_to(DOC_PATH.parents[1])} "
                                                             "instead of printing to stdout")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOC_PATH}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
