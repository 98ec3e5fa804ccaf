"""The LM's state-carrying validation callback: its resume state round-trips."""
import json

import numpy as np
import pytest

from pipeline.tasks.lm.tbptt import StreamValidation


@pytest.mark.parametrize("best", [None, 1.5])
def test_stream_validation_state_round_trips(best):
    v = StreamValidation(None, np.zeros(10, "int32"), 2, 4, False)
    if best is not None:
        v.best, v.best_epoch, v.best_weights = best, 3, [np.ones(2)]
    state, arrays = v.resume_state()
    json.dumps(state)
    w = StreamValidation(None, np.zeros(10, "int32"), 2, 4, False)
    w.restore_state(state, arrays)
    assert w.best == v.best and w.best_epoch == v.best_epoch
    assert (w.best_weights is None) == (v.best_weights is None)
