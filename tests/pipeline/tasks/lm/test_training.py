"""The LM's callback list: stream validation first among the stateful callbacks, checkpointer after them."""
from types import SimpleNamespace

import keras
import numpy as np

from components.training.callbacks import resumable_of
from pipeline.tasks.lm.tbptt import StreamValidation
from pipeline.tasks.lm.training import lm_callbacks


def test_callback_list_puts_the_checkpointer_after_stateful_callbacks():
    tc = SimpleNamespace(early_stopping_patience=2, lr_decay_factor=0.5, lr_decay_patience=1)
    validation = StreamValidation(None, np.zeros(4, "int32"), 1, 2, False)
    cbs = lm_callbacks(tc, tokens_per_epoch=10, backup_dir="b", validation=validation,
                       tracking_callback=keras.callbacks.Callback())
    r = resumable_of(cbs)
    assert r.stateful[0] is validation and len(r.stateful) == 3
    assert all(cbs.index(c) < cbs.index(r) for c in r.stateful)
