"""The translator's callback list: the checkpointer comes after the callbacks whose state it restores."""
from types import SimpleNamespace

import keras
import pytest
from pydantic import ValidationError

from components.training.callbacks import resumable_of
from pipeline.tasks.translate.config import TrainConfig
from pipeline.tasks.translate.training import translator_callbacks


def test_callback_list_puts_the_checkpointer_after_stateful_callbacks():
    tc = SimpleNamespace(lr_schedule="plateau", plateau_factor=0.5, plateau_patience=1, early_stopping_patience=2,
                         early_stopping_metric="val_loss", average_last_epochs=None)
    cbs = translator_callbacks(tc, tokens_per_epoch=10, batches_per_epoch=2, backup_dir="b",
                               tracking_callback=keras.callbacks.Callback())
    r = resumable_of(cbs)
    assert {type(c).__name__ for c in r.stateful} == {"ReduceLROnPlateau", "EarlyStopping"}
    assert all(cbs.index(c) < cbs.index(r) for c in r.stateful)


def test_averaging_is_checkpointed_state_and_excludes_early_stopping():
    tc = TrainConfig(epochs=5, average_last_epochs=3)
    r = resumable_of(translator_callbacks(tc, tokens_per_epoch=10, batches_per_epoch=2, backup_dir="b",
                                          tracking_callback=keras.callbacks.Callback()))
    assert [type(c).__name__ for c in r.stateful] == ["WeightAveraging"]
    with pytest.raises(ValidationError, match="train.average_last_epochs=6 is more than train.epochs=5"):
        TrainConfig(epochs=5, average_last_epochs=6)
    with pytest.raises(ValidationError, match="early_stopping_patience are both set"):
        TrainConfig(epochs=5, average_last_epochs=3, early_stopping_patience=2)
