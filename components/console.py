"""A quiet console: TensorFlow's C++ start-up log lines hidden unless `--verbose`.

Why this is more than `TF_CPP_MIN_LOG_LEVEL=2`: TensorFlow 2.21 logs through absl, and the
lines written while it loads (`oneDNN custom operations are on`, `Could not find cuda
drivers`, the `absl::InitializeLog()` banner) come before absl reads any setting, so no
environment variable hides them; and on a machine with no NVIDIA driver the first device
query logs an ERROR line (`failed call to cuInit: ... UNKNOWN ERROR (303)`) that reads like a
failure. `setup()` therefore

* sets `TF_CPP_MIN_LOG_LEVEL` (unless the user set it) for everything after start-up: 2 (no
  INFO/WARNING), or 3 (no ERROR either) on machines without an NVIDIA device, where the ERROR
  lines are hardware notes (`oneDNN supports DT_INT64 only on platforms with AVX-512`), and
* installs an import hook: the first `import tensorflow` (whoever triggers it) and the first
  device query run with file descriptor 2 captured; afterwards the captured text is written
  back to stderr minus absl-format INFO/WARNING lines and, only on machines without an NVIDIA
  device node, the CUDA-probe ERROR lines. Anything else (real errors, Python tracebacks) is
  passed through.

Must run before anything imports TensorFlow: every entry point calls it first (the pipeline
through `pipeline.console`, the server through `components.serving.cli`, the benchmarks).
"""
from __future__ import annotations

import contextlib
import glob
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# absl's format: "I0000 00:00:1795381633.765937   24482 port.cc:153] message"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.\-]+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# Continuation line of cpu_feature_guard's INFO message (printed without a log prefix).
_CONTINUATION = re.compile(r"^To enable the following instructions: .* rebuild TensorFlow")
_CUDA_PROBE = re.compile(r"cuInit|cuda_platform|cudart_stub|cuda_executor|cuda_diagnostics|CUDA driver")

_state = {"verbose": False, "installed": False}


def has_nvidia_device() -> bool:
    """True when an NVIDIA driver is present (device nodes or the driver's /proc entry)."""
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/proc/driver/nvidia/version")


def keep_line(line: str, gpu_present: bool) -> bool:
    """Whether a captured start-up stderr line is shown in quiet mode."""
    stripped = line.rstrip("\n")
    if stripped == _ABSL_BANNER or _CONTINUATION.match(stripped):
        return False
    match = _ABSL_LINE.match(stripped)
    if not match:
        return True
    if match.group(1) in "IW":
        return False
    # ERROR/FATAL: hide only the CUDA probe, and only where there is no GPU to probe.
    return gpu_present or not _CUDA_PROBE.search(stripped)


@contextlib.contextmanager
def filtered_stderr():
    """Capture fd 2 (C++ writes bypass sys.stderr), then replay the lines `keep_line` keeps."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            gpu = has_nvidia_device()
            kept = [line for line in text.splitlines(keepends=True) if keep_line(line, gpu)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self._loader.exec_module(module)
            # The first device query is what probes CUDA (cuInit); do it inside the capture.
            module.config.list_physical_devices()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one-shot; also lets find_spec below use the real finders
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def setup(verbose: bool = False) -> None:
    """Configure console noise for this process; call before TensorFlow is imported."""
    _state["verbose"] = verbose
    if verbose:
        return
    # 2 hides INFO/WARNING. Without a GPU also ERROR (3): what remains there are hardware notes
    # such as "oneDNN supports DT_INT64 only on platforms with AVX-512" or the CUDA probe; real
    # failures still reach the user as Python exceptions carrying TensorFlow's status message.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_nvidia_device() else "3")
    if "tensorflow" not in sys.modules and not _state["installed"]:
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
        _state["installed"] = True


def is_verbose() -> bool:
    return _state["verbose"]


def quiet_python_libraries() -> None:
    """Python-side noise (absl, tfds progress bars, known-harmless Keras warnings) unless verbose."""
    if _state["verbose"]:
        return
    import warnings

    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    warnings.filterwarnings("ignore", message=".*Your input ran out of data.*")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)
    import tensorflow_datasets as tfds
    tfds.display_progress_bar(False)
    import logging

    # MLflow's INFO lines about creating its sqlite tables and a new experiment on a first run;
    # the pipeline prints the run and store itself. Logging the export as an MLflow Model adds an
    # INFO line ("Validating input example ...") and a progress bar for copying six small files
    # (and a type-hint warning, dropped where the model is logged): none of it is news to a user,
    # and the export stage prints where the model went.
    for name in ("mlflow.store.db.utils", "mlflow.tracking.fluent", "alembic", "mlflow.pyfunc"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
