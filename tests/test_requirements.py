"""Declared dependencies: every package the code imports is declared, test/bench-only packages stay
out of the runtime set, and pyproject.toml agrees with requirements*.txt."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"components", "pipeline", "tests", "bench"}
# Not installed in the project's environment on purpose (docs/benchmarks.md: its own interpreter).
OUTSIDE = {"torch"}
TEST_ONLY = {"pytest", "ruff", "import-linter", "requests"}


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _pins(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-r"))]


def _undeclared_imports(folders: list[str], declared: set[str]) -> dict[str, list[str]]:
    """Top-level modules imported (anywhere in a file) under `folders` that no declared
    distribution provides -> the installed distributions that do provide them."""
    modules = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    modules -= FIRST_PARTY | set(sys.stdlib_module_names) | {"__future__"} | OUTSIDE
    owners = packages_distributions()
    missing = {}
    for module in sorted(modules):
        assert module in owners, f"imported module {module!r} belongs to no installed distribution"
        dists = {_name(d) for d in owners[module]}  # e.g. mlflow: mlflow, mlflow-skinny, mlflow-tracing
        if not dists & declared:
            missing[module] = sorted(dists)
    return missing


def test_pyproject_lists_the_requirements_files_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(project["dependencies"]) == sorted(_pins(ROOT / "requirements.txt"))
    assert sorted(project["optional-dependencies"]["dev"]) == sorted(_pins(ROOT / "requirements-dev.txt"))
    assert "-r requirements-dev.txt" in (ROOT / "requirements.txt").read_text()  # `make test` installs it all
    assert project["scripts"]["seqpipe"] == "pipeline.cli:main"


def test_every_package_the_tool_imports_is_a_runtime_requirement():
    runtime = {_name(r) for r in _pins(ROOT / "requirements.txt")}
    missing = _undeclared_imports(["components", "pipeline"], runtime)
    assert not missing, f"imported by the tool but not in requirements.txt: {missing}"


def test_tests_and_benchmarks_need_only_declared_packages():
    declared = {_name(r) for r in _pins(ROOT / "requirements.txt") + _pins(ROOT / "requirements-dev.txt")}
    missing = _undeclared_imports(["tests", "bench"], declared)
    assert not missing, f"imported by tests/bench but not declared: {missing}"


def test_test_and_bench_packages_stay_out_of_the_runtime_set():
    runtime = {_name(r) for r in _pins(ROOT / "requirements.txt")}
    assert not runtime & TEST_ONLY, sorted(runtime & TEST_ONLY)
