"""WeightAveraging: the mean of the last epochs' weights, also across a kill and resume."""
import keras
import numpy as np
import pytest

from components.training.averaging import WeightAveraging
from components.training.resume import ResumableTraining
from tests.support.tiny_fit import regression_data, regression_model


class Stop(Exception):
    pass


def _fit(epochs, last, backup=None, stop_after=None):
    """Returns the model and the trainable weights seen at every epoch end (before averaging)."""
    model, seen = regression_model(0.1), {}
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: seen.__setitem__(e + 1, [v.numpy().copy() for v in model.trainable_variables]))
    averaging = WeightAveraging(last, epochs)
    callbacks = [record, averaging]
    if backup is not None:
        def check(epoch):
            if stop_after is not None and epoch > stop_after:
                raise Stop(epoch)
        callbacks.append(ResumableTraining(backup, stateful=(averaging,), check_interrupt=check, log=lambda _: None))
    x, y = regression_data()
    try:
        model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks)
    except Stop:
        pass
    return model, seen


def test_the_model_ends_with_the_mean_of_the_last_epochs():
    model, seen = _fit(epochs=5, last=3)
    for got, *per_epoch in zip(model.trainable_variables, seen[3], seen[4], seen[5]):
        np.testing.assert_allclose(got.numpy(), np.mean(per_epoch, axis=0), rtol=1e-6)
        assert not np.allclose(got.numpy(), per_epoch[-1])  # not simply the last epoch


def test_one_epoch_window_leaves_the_last_weights():
    model, seen = _fit(epochs=3, last=1)
    for got, last in zip(model.trainable_variables, seen[3]):
        np.testing.assert_array_equal(got.numpy(), last)


def test_resumed_run_averages_the_same_epochs(tmp_path):
    _, before = _fit(epochs=5, last=3, backup=tmp_path / "b", stop_after=4)  # killed inside the window
    resumed, after = _fit(epochs=5, last=3, backup=tmp_path / "b")
    assert sorted(before) == [1, 2, 3, 4] and sorted(after) == [5]  # only the last epoch ran again
    for got, *per_epoch in zip(resumed.trainable_variables, before[3], before[4], after[5]):
        np.testing.assert_allclose(got.numpy(), np.mean(per_epoch, axis=0), rtol=1e-6)


def test_window_longer_than_the_run_is_refused():
    with pytest.raises(ValueError, match="last_epochs must be in 1..3"):
        WeightAveraging(4, 3)
