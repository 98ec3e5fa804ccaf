"""TF Serving's on-disk layout of a model: ``BASE/<integer version>/saved_model.pb``.

One home for the rule, because three parts of the project must agree on it: the export writes
the next version, `serve` polls the base path for versions, and the inference commands pick the
newest one. A folder is a version when its name is a non-negative integer that fits int64 (as
TF Serving's ``ParseVersionNumber``); other names, such as an exporter's hidden temp folder
before its rename, are ignored by everyone. Pure standard library, so the server's flag
parsing and the CLI stay fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SAVED_MODEL_FILE = "saved_model.pb"
# What the export stage knew (config name, languages, BLEU tokenizer), next to TF Serving's own
# assets.extra/tf_serving_warmup_requests; TF Serving ignores other files in assets.extra.
METADATA_FILE = Path("assets.extra") / "pipeline.json"

_VERSION_NAME = re.compile(r"^\d{1,18}$")  # fits int64, like TF Serving's ParseVersionNumber


def is_version_name(name: str) -> bool:
    """Whether a folder name is a version number."""
    return bool(_VERSION_NAME.match(name))


def version_dirs(base_path: str | os.PathLike) -> dict[int, str] | None:
    """Integer-named folders under a base path ({version: path}); None if it cannot be listed.

    The folders need not hold a SavedModel yet: the server reports such a version as failing to
    load instead of silently skipping it."""
    try:
        entries = list(os.scandir(base_path))
    except OSError:
        return None
    return {int(e.name): e.path for e in entries if is_version_name(e.name) and e.is_dir()}


def newest_version(base_path: str | os.PathLike) -> Path | None:
    """The newest version folder that holds a saved_model.pb (what TF Serving would serve)."""
    complete = {v: path for v, path in (version_dirs(base_path) or {}).items() if is_saved_model_dir(path)}
    return Path(complete[max(complete)]) if complete else None


def next_version(base_path: str | os.PathLike) -> int:
    """The version number a new export takes: one above every version folder (complete or not)."""
    return max(version_dirs(base_path) or {}, default=0) + 1


def is_saved_model_dir(path: str | os.PathLike) -> bool:
    """Whether a folder holds a SavedModel at its root (a version folder itself)."""
    return os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))
