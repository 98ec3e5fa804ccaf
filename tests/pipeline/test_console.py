"""Quiet console: no TensorFlow C++ log lines by default, errors before any MLflow run."""
import os
import re
import subprocess
import sys

import pytest

from pipeline.console import keep_line
from tests.support.subprocess_run import ROOT, run_cli

# absl's C++ log prefix ("I0000 00:00:1795381633.765937   24482 port.cc:153] ") and the CUDA probe.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.\-]+:\d+\] ", re.M)


def test_keep_line_drops_info_and_cuda_probe_only_without_gpu():
    info = "I0000 00:00:1795381633.765937   24482 port.cc:153] oneDNN custom operations are on."
    cuinit = ("E0000 00:00:1795381642.653700   24482 cuda_platform.cc:52] failed call to cuInit: "
              "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
    other_error = "E0000 00:00:1795381642.653700   24482 op_kernel.cc:1857] OP_REQUIRES failed: bad"
    assert not keep_line(info, gpu_present=True)
    assert not keep_line(cuinit, gpu_present=False)
    assert keep_line(cuinit, gpu_present=True)  # a real GPU machine: the probe failing matters
    assert keep_line(other_error, gpu_present=False)
    assert keep_line("Traceback (most recent call last):", gpu_present=False)


def test_missing_data_fails_quietly_before_any_mlflow_run(tmp_path):
    """TensorFlow is imported on this path (the data pre-flight), yet stderr holds only our error."""
    db = tmp_path / "m.db"
    args = ["run", "configs/test_translate_tiny.yaml", "--set", f"work_dir={tmp_path}/w",
            "--set", f"data.data_dir={tmp_path}/nodata", "--set", f"mlflow.tracking_uri=sqlite:///{db}"]
    proc = run_cli(args)
    assert proc.returncode == 1, proc.stderr
    assert "urd.txt" in proc.stderr and "manythings.org" in proc.stderr
    assert not TF_LOG_LINE.search(proc.stderr) and "cuInit" not in proc.stderr, proc.stderr
    assert "absl::InitializeLog" not in proc.stderr
    assert not db.exists()  # no MLflow store, so no run
    # Nothing but the work-folder lock (taken before TensorFlow starts; an fcntl lock file stays).
    assert [p.name for p in (tmp_path / "w").rglob("*") if p.is_file()] in ([], [".lock"])

    verbose = run_cli(["--verbose", *args])
    assert verbose.returncode == 1
    assert TF_LOG_LINE.search(verbose.stderr), verbose.stderr  # --verbose brings them back


def test_config_error_creates_no_mlflow_run(tmp_path):
    db = tmp_path / "m.db"
    proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--set", "train.optimizer=adamw",
                    "--set", f"mlflow.tracking_uri=sqlite:///{db}"])
    assert proc.returncode == 2 and "train.optimizer" in proc.stderr
    assert not db.exists()
    assert not TF_LOG_LINE.search(proc.stderr)


@pytest.mark.slow
def test_real_tiny_run_prints_no_tensorflow_log_lines(tmp_path):
    """A real training run (tiny LM, sampled softmax) with the user's default environment:
    no TF_CPP_MIN_LOG_LEVEL set, so what the console shows is what a new user sees."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    args = ["run", "configs/test_lm_tiny.yaml", "--stages", "prepare,train,evaluate",
            "--set", f"work_dir={tmp_path}/w", "--set", f"mlflow.tracking_uri=sqlite:///{tmp_path}/m.db",
            "--set", "model.tie_weights=false", "--set", "model.softmax=sampled",
            "--set", "model.sampled_softmax_samples=16"]
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "test perplexity" in proc.stdout
    assert not TF_LOG_LINE.search(proc.stderr + proc.stdout), proc.stderr
    assert "absl::InitializeLog" not in proc.stderr and "cuInit" not in proc.stderr
    assert "Creating initial MLflow database tables" not in proc.stderr  # a new store is not news
