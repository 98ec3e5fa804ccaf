"""Warm-up in steps or as a fraction, the long-warm-up warning, and the schedules' shapes."""
import numpy as np
import pytest

from components.training import schedules


def test_fraction_scales_with_the_run_and_steps_do_not():
    assert schedules.warmup_steps(1000, None, 0.05) == 50
    assert schedules.warmup_steps(100, None, 0.05) == 5
    assert schedules.warmup_steps(1000, 400, None) == 400
    assert schedules.warmup_steps(100, 400, None) == 99  # capped below the run: the peak is reached


def test_warning_only_when_warmup_exceeds_a_third_of_the_run():
    assert schedules.warmup_warning(400, 458) is not None
    assert "400 of 458" in schedules.warmup_warning(99, 458, requested=400)
    assert schedules.warmup_warning(152, 458) is None
    assert schedules.warmup_warning(153, 458) is not None


@pytest.mark.parametrize("kind", ["warmup_cosine", "warmup_rsqrt"])
def test_warmup_schedules_rise_linearly_peak_then_decay(kind):
    lr = schedules.learning_rate(kind, 0.002, total_steps=1000, warmup=100)
    values = np.array([float(lr(s)) for s in range(0, 1000, 10)])
    peak_at = int(np.argmax(values))
    assert abs(values.max() - 0.002) < 1e-4
    assert 9 <= peak_at <= 11  # step ~100
    assert np.all(np.diff(values[:peak_at]) > 0) and np.all(np.diff(values[peak_at + 1:]) <= 1e-9)
    assert values[-1] < 0.002 * 0.5


def test_rsqrt_follows_its_formula_and_serializes():
    lr = schedules.WarmupInverseSqrt(1e-3, 400)
    assert float(lr(1599)) == pytest.approx(1e-3 * (400 / 1600) ** 0.5, rel=1e-6)
    again = schedules.WarmupInverseSqrt.from_config(lr.get_config())
    assert float(again(50)) == pytest.approx(float(lr(50)))


def test_unknown_schedule_names_the_allowed_ones():
    with pytest.raises(ValueError, match="warmup_rsqrt"):
        schedules.learning_rate("linear", 0.1, 10, 1)
