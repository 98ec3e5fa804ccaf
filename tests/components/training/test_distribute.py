"""Data parallelism is exact: N replicas train to the same weights and log the same loss as one device.

Each run is a fresh process (logical CPU devices must be set before TensorFlow starts) that
trains a fixed batch with dropout 0 through the pipeline's own builders, loss and optimizer.
"""
import subprocess
import sys

import numpy as np
import pytest

from tests.support.subprocess_run import ROOT


def _train(tmp_path, task: str, replicas: int, clipnorm: float | None) -> dict:
    out = tmp_path / f"{task}-{replicas}-{clipnorm}.npz"
    proc = subprocess.run([sys.executable, "-m", "tests.support.distributed_step", task, str(replicas), str(out),
                           *([str(clipnorm)] if clipnorm else [])],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = np.load(out)
    return {k: data[k] for k in data.files}


@pytest.mark.parametrize("task", ["translate", "lm"])
@pytest.mark.parametrize("clipnorm", [None, 0.05])  # 0.05: the global gradient is clipped
def test_mirrored_two_replicas_equal_one_device(tmp_path, task, clipnorm):
    one = _train(tmp_path, task, 1, clipnorm)
    two = _train(tmp_path, task, 2, clipnorm)
    weights = sorted(k for k in one if k.startswith("w"))
    assert weights and weights == sorted(k for k in two if k.startswith("w"))
    for k in weights:
        np.testing.assert_allclose(two[k], one[k], atol=1e-6, rtol=0, err_msg=f"{task} weight {k}")
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-6)  # logged loss means the same
