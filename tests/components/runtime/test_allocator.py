"""The BFC CPU allocator: set by default, overridable, and it does stop the per-step page faults."""
import subprocess
import sys

import pytest

from components.runtime.allocator import ENV, prefer_bfc_allocator

# 20 steps that each create and drop a 64 MB tensor (bigger than malloc's largest mmap
# threshold, like the LM's logits); prints the minor page faults those steps caused.
FAULTS = """
import resource, tensorflow as tf
x = tf.ones([4096, 4096])
def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
(x * 2.0).numpy()
before = faults()
for _ in range(20):
    float(tf.reduce_sum(x * 2.0))
print(faults() - before)
"""


def test_default_is_true_and_a_user_setting_wins():
    env = {}
    assert prefer_bfc_allocator(env) == "true" and env == {ENV: "true"}
    env = {ENV: "false"}
    assert prefer_bfc_allocator(env) == "false" and env == {ENV: "false"}
    assert prefer_bfc_allocator({ENV: "0"}) == "0" and prefer_bfc_allocator({ENV: "TRUE"}) == "TRUE"


def test_a_value_tensorflow_cannot_read_is_refused_by_name():
    with pytest.raises(ValueError, match=f"{ENV}='yes'.*true, false, 1, 0"):
        prefer_bfc_allocator({ENV: "yes"})


def _faults(value: str, onednn: str | None = None) -> int:
    env = {"PATH": "/usr/bin:/bin", ENV: value, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    out = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


def test_bfc_reuses_large_blocks_instead_of_faulting_them_in_each_step():
    # TensorFlow turns oneDNN on by itself only on CPUs with AVX512-VNNI/BF16 or AMX, and with it
    # comes oneDNN's own pooling CPU allocator; oneDNN off gives the plain malloc allocator on
    # every CPU, which is the case the BFC setting exists for.
    default, bfc = _faults("false", onednn="0"), _faults("true", onednn="0")
    pages_per_tensor = 64 * 2**20 // 4096
    assert default > 10 * pages_per_tensor, default  # glibc: fresh pages for every 64 MB tensor
    assert bfc < 3 * pages_per_tensor, bfc  # BFC: the first block is reused
    # And as the CLI runs on this CPU (TensorFlow's own oneDNN choice): no per-step faults either.
    assert _faults("true") < 3 * pages_per_tensor
