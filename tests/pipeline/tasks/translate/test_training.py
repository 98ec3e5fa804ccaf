"""The translator's callback list: the checkpointer comes after the callbacks whose state it restores."""
from types import SimpleNamespace

import keras

from components.training.callbacks import resumable_of
from pipeline.tasks.translate.training import translator_callbacks


def test_callback_list_puts_the_checkpointer_after_stateful_callbacks():
    tc = SimpleNamespace(lr_schedule="plateau", plateau_factor=0.5, plateau_patience=1, early_stopping_patience=2,
                         early_stopping_metric="val_loss")
    cbs = translator_callbacks(tc, tokens_per_epoch=10, batches_per_epoch=2, backup_dir="b",
                               tracking_callback=keras.callbacks.Callback())
    r = resumable_of(cbs)
    assert {type(c).__name__ for c in r.stateful} == {"ReduceLROnPlateau", "EarlyStopping"}
    assert all(cbs.index(c) < cbs.index(r) for c in r.stateful)
