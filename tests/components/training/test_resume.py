"""ResumableTraining: atomic checkpoints, whole-state resume, merged history, bad checkpoints set aside."""
import json

import keras
import pytest

from components.training.resume import ResumableTraining
from tests.support.tiny_fit import regression_data, regression_model


class Stop(Exception):
    pass


def _fit(backup, epochs, stop_after=None, lines=None, **kw):
    """One `fit`; `stop_after=N` raises (like a signal at a safe point) once epoch N is checkpointed."""
    model = regression_model()
    early = keras.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=50)

    def check(epoch):
        if stop_after is not None and epoch > stop_after:
            raise Stop(epoch)

    resumable = ResumableTraining(backup, stateful=(plateau, early), check_interrupt=check,
                                  log=(lines if lines is not None else []).append, **kw)
    x, y = regression_data()
    try:
        model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=[plateau, early, resumable])
    except Stop:
        pass
    return model, resumable, early


def test_resume_merges_history_and_restores_state(tmp_path):
    model, first, _ = _fit(tmp_path / "b", epochs=5, stop_after=2)
    assert first.checkpoints() == [2, 1]  # `keep=2`
    assert len(first.history["loss"]) == 2
    replayed = []
    model, second, early = _fit(tmp_path / "b", epochs=5, on_resume=replayed.append)
    assert second.resumed_from == 2
    assert len(second.history["loss"]) == 5
    assert second.history["loss"][:2] == first.history["loss"]
    assert replayed and len(replayed[0]["loss"]) == 2
    # Optimizer state continues: 4 batches per epoch, 5 epochs in all.
    assert int(model.optimizer.iterations.numpy()) == 20
    assert early.best is not None and early.best_weights is not None
    state = json.loads((tmp_path / "b" / "epoch-0005.json").read_text())
    assert state["epoch"] == 5 and state["optimizer_iterations"] == 20


def test_truncated_checkpoint_is_set_aside_and_previous_used(tmp_path):
    _fit(tmp_path / "b", epochs=5, stop_after=3)
    newest = tmp_path / "b" / "epoch-0003.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    lines = []
    _, resumable, _ = _fit(tmp_path / "b", epochs=4, lines=lines)
    assert resumable.resumed_from == 2
    bad = [line for line in lines if "could not be loaded" in line]
    assert len(bad) == 1 and "epoch-0003" in bad[0]
    assert (tmp_path / "b" / "epoch-0003.weights.h5.bad").exists()
    assert len(resumable.history["loss"]) == 4


def test_all_checkpoints_bad_trains_from_scratch(tmp_path):
    _fit(tmp_path / "b", epochs=3, stop_after=2)
    for path in (tmp_path / "b").glob("*.weights.h5"):
        path.write_bytes(b"not hdf5")
    lines = []
    _, resumable, _ = _fit(tmp_path / "b", epochs=2, lines=lines)
    assert resumable.resumed_from == 0 and len(resumable.history["loss"]) == 2
    assert any("from scratch" in line for line in lines)


def test_uncommitted_checkpoint_is_ignored(tmp_path):
    """Weights without their JSON (killed between the two renames) are not a checkpoint."""
    _fit(tmp_path / "b", epochs=3, stop_after=1)
    (tmp_path / "b" / "epoch-0002.weights.h5").write_bytes(b"partial")
    (tmp_path / "b" / ".tmp-123-epoch-0002.json").write_text("{")
    _, resumable, _ = _fit(tmp_path / "b", epochs=2)
    assert resumable.resumed_from == 1


def test_fresh_clears_backups(tmp_path):
    _fit(tmp_path / "b", epochs=3, stop_after=2)
    _, resumable, _ = _fit(tmp_path / "b", epochs=2, fresh=True)
    assert resumable.resumed_from == 0 and len(resumable.history["loss"]) == 2


def test_early_stopped_checkpoint_does_not_train_on(tmp_path):
    model = regression_model()
    early = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9, restore_best_weights=True)
    resumable = ResumableTraining(tmp_path / "b", stateful=(early,), log=lambda m: None)
    x, y = regression_data()
    model.fit(x, y, epochs=10, verbose=0, callbacks=[early, resumable])
    stopped_at = len(resumable.history["loss"])
    assert stopped_at < 10
    model = regression_model()
    early = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9, restore_best_weights=True)
    again = ResumableTraining(tmp_path / "b", stateful=(early,), log=lambda m: None)
    model.fit(x, y, epochs=10, verbose=0, callbacks=[early, again])
    assert len(again.history["loss"]) == stopped_at





def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path):
    """ENOSPC while writing epoch 2's weights: an OSError naming the file, no partial file, epoch 1 intact."""
    import errno

    model = regression_model()
    resumable = ResumableTraining(tmp_path / "b", log=lambda m: None)
    x, y = regression_data()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[resumable])
    real_save = model.save_weights

    def full_disk(path, *a, **kw):
        real_save(path, *a, **kw)  # something got written ...
        raise OSError(errno.ENOSPC, "No space left on device", path)

    model.save_weights = full_disk
    with pytest.raises(OSError) as err:
        resumable.save(2)
    assert err.value.errno == errno.ENOSPC
    assert resumable.checkpoints() == [1]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["epoch-0001.json", "epoch-0001.weights.h5"]

    def h5py_style_error(path, *a, **kw):  # h5py raises OSError with a message and no file name
        raise OSError("Unable to synchronously create file (file write failed)")

    model.save_weights = h5py_style_error
    with pytest.raises(OSError) as err:
        resumable.save(2)
    assert err.value.filename.endswith("epoch-0002.weights.h5") and "write failed" in err.value.strerror
