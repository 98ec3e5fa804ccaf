"""The pipeline's console set-up: re-exported from `components.console`, its one home.

The quiet-console logic is task-neutral and also used by `python -m components.serving.cli`,
which must not import `pipeline` (the layers contract in pyproject.toml); the pipeline's entry
points keep importing it from here.
"""
from __future__ import annotations

from components.console import (  # noqa: F401  (re-exports)
    filtered_stderr,
    has_nvidia_device,
    is_verbose,
    keep_line,
    quiet_python_libraries,
    setup,
)
