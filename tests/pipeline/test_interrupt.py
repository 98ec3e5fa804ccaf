"""InterruptGuard: a signal raises at once outside training, at the next safe point inside it."""
import os
import signal

import pytest

from pipeline.interrupt import Interrupted, InterruptGuard


@pytest.fixture
def guard():
    g = InterruptGuard().install()
    yield g
    g.uninstall()


def test_sigterm_outside_training_raises_at_once(guard):
    guard.check("stage prepare")
    with pytest.raises(Interrupted) as err:
        os.kill(os.getpid(), signal.SIGTERM)
    assert err.value.exit_code == 143
    assert err.value.message() == "interrupted in stage prepare; rerun the same command to resume"


def test_sigint_in_training_waits_for_the_safe_point(guard):
    with pytest.raises(Interrupted) as err, guard.deferred():
        os.kill(os.getpid(), signal.SIGINT)  # only sets the flag
        reached = True
        guard.check("epoch 4")  # the next batch starts: stop here
    assert reached and err.value.exit_code == 130
    assert err.value.message() == "interrupted at epoch 4; rerun the same command to resume"
    assert isinstance(err.value, KeyboardInterrupt)  # `except Exception` does not swallow it


def test_second_signal_stops_at_once(guard):
    with pytest.raises(Interrupted), guard.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        pytest.fail("not reached")


def test_uninstall_restores_handlers():
    before = signal.getsignal(signal.SIGTERM)
    g = InterruptGuard().install()
    g.uninstall()
    assert signal.getsignal(signal.SIGTERM) is before
