"""Remove temporary folders left by processes that no longer exist.

Stage outputs are built in `.<stage>.tmp-<pid>` and exports in `.tmp-export-<pid>`, then
renamed into place; a killed process leaves its temp folder behind (prepare's holds a full
copy of the data). Only folders whose pid is gone are removed, so a live run is never touched.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from components.tracking.run_state import pid_alive

# .prepare.tmp-123, .train.old-123 (runner.atomic_replace_dir), .tmp-export-123, .tmp-123-epoch-0003.json
_TEMP = re.compile(r"^\.(?:[\w-]+\.(?:tmp|old)|tmp-export|tmp)-(\d+)(?:$|-)")


def temp_owner(name: str) -> int | None:
    """The pid in a temp file or folder name made by this project, else None."""
    m = _TEMP.match(name)
    return int(m.group(1)) if m else None


def remove_dead_temps(folder: Path, log=None) -> list[Path]:
    """Remove the entries of `folder` (not recursive) named after a pid that is no longer running."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        pid = temp_owner(path.name)
        if pid is None or pid_alive(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    if removed and log is not None:
        log(f"removed {len(removed)} temporary folder(s) of ended runs in {folder}")
    return removed
