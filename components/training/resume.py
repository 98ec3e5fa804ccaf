"""Resumable training: end-of-epoch checkpoints that hold the *whole* training state.

Why not Keras' `BackupAndRestore`: it writes `latest.weights.h5` in place (a crash during
the write leaves a truncated file that fails every later run), restores only the weights
and the epoch number, and Keras' `History` then covers only the epochs run after the
restart. Here each checkpoint is

    epoch-0003.weights.h5   model + optimizer variables (iterations, moments, learning rate)
    epoch-0003.extra.npz    arrays of stateful callbacks (early stopping's best weights, ...)
    epoch-0003.json         epoch, merged history, callback counters -- written last

each file written under a temporary name and renamed into place, the JSON last, so a crash
at any instant leaves the previous checkpoint whole. The newest checkpoint that loads is
restored; one that does not is reported in one line and renamed aside (`*.bad`), and the
previous one (or a fresh start) is used. The last `keep` checkpoints are kept.

`history` is the merged per-epoch history across restarts: what the stage should save,
plot and report instead of `model.fit(...).history`.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from components.runtime.cleanup import remove_dead_temps

_STATE = re.compile(r"^epoch-(\d+)\.json$")


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk: a checkpoint survives a power cut, not only a kill."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _number(value):
    """JSON-safe floats (inf/nan become strings json can carry back)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else repr(value)


def _unnumber(value):
    return None if value is None else float(value)


def callback_state(callback) -> tuple[dict, list[np.ndarray]]:
    """(JSON-able counters, arrays) of a stateful callback, for the checkpoint."""
    if hasattr(callback, "resume_state"):
        return callback.resume_state()
    if isinstance(callback, keras.callbacks.EarlyStopping):
        state = {"wait": callback.wait, "best": _number(callback.best), "best_epoch": callback.best_epoch,
                 "stopped_epoch": callback.stopped_epoch}
        return state, list(callback.best_weights or [])
    if isinstance(callback, keras.callbacks.ReduceLROnPlateau):
        return {"wait": callback.wait, "best": _number(callback.best),
                "cooldown_counter": callback.cooldown_counter}, []
    raise TypeError(f"no resume state for {type(callback).__name__}")


def restore_callback_state(callback, state: dict, arrays: list[np.ndarray]) -> None:
    if hasattr(callback, "restore_state"):
        callback.restore_state(state, arrays)
    elif isinstance(callback, keras.callbacks.EarlyStopping):
        callback.wait, callback.best_epoch = state["wait"], state["best_epoch"]
        callback.stopped_epoch, callback.best = state["stopped_epoch"], _unnumber(state["best"])
        callback.best_weights = list(arrays) or None
    elif isinstance(callback, keras.callbacks.ReduceLROnPlateau):
        callback.wait, callback.cooldown_counter = state["wait"], state["cooldown_counter"]
        callback.best = _unnumber(state["best"])


class CheckpointError(RuntimeError):
    pass


class ResumableTraining(keras.callbacks.Callback):
    """Atomic end-of-epoch checkpoints with merged history and callback state.

    Place it after every callback that adds to the epoch logs or has state to keep (their
    `on_train_begin` resets that state; this one's runs later and restores it), and before
    the tracking callback is fine. `stateful`: the callbacks whose state is saved (Keras'
    EarlyStopping and ReduceLROnPlateau, or anything with `resume_state`/`restore_state`).
    `on_resume(history)`: called once with the restored history (e.g. to log it to the new
    MLflow run). `check_interrupt(epoch)`: called before every batch; raises to stop there.
    """

    def __init__(self, backup_dir: Path, *, stateful: tuple = (), keep: int = 2, fresh: bool = False,
                 on_resume: Callable[[dict], None] | None = None,
                 check_interrupt: Callable[[int], None] | None = None, log: Callable[[str], None] = print):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.stateful = list(stateful)
        self.keep = max(keep, 1)
        self.fresh = fresh
        self.on_resume = on_resume
        self.check_interrupt = check_interrupt
        self.log = log
        self.history: dict[str, list[float]] = {}
        self.resumed_from = 0  # epochs restored from a checkpoint (0: fresh start)
        self._epoch = 0

    # ------------------------------------------------------------------ files
    def _paths(self, epoch: int) -> tuple[Path, Path, Path]:
        stem = self.backup_dir / f"epoch-{epoch:04d}"
        return (stem.with_name(stem.name + ".weights.h5"), stem.with_name(stem.name + ".extra.npz"),
                stem.with_name(stem.name + ".json"))

    def checkpoints(self) -> list[int]:
        """Epoch numbers of the complete (JSON-committed) checkpoints, newest first."""
        if not self.backup_dir.is_dir():
            return []
        found = [int(m.group(1)) for p in self.backup_dir.iterdir() if (m := _STATE.match(p.name))]
        return sorted(found, reverse=True)

    def clear(self) -> None:
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    # ------------------------------------------------------------------ save
    def _write(self, final: Path, write: Callable[[Path], None]) -> None:
        """Write through a temporary name in the same folder, then rename: never half a file."""
        tmp = final.with_name(f".tmp-{os.getpid()}-{final.name}")
        try:
            write(tmp)
            _fsync(tmp)
            os.replace(tmp, final)
            _fsync(final.parent)
        except OSError as err:  # h5py's errors name no file: name the checkpoint (one `error:` line)
            if err.filename:
                raise
            raise OSError(err.errno, str(err).splitlines()[0] if str(err) else "write failed", str(final)) from err
        finally:
            if tmp.exists():
                tmp.unlink()

    def save(self, epoch: int) -> None:
        """Checkpoint after `epoch` epochs (1-based count of completed epochs)."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        weights, extra, state_path = self._paths(epoch)
        callbacks, arrays = [], {}
        for i, cb in enumerate(self.stateful):
            state, cb_arrays = callback_state(cb)
            callbacks.append({"type": type(cb).__name__, "state": state, "arrays": len(cb_arrays)})
            arrays.update({f"cb{i}_{j}": np.asarray(a) for j, a in enumerate(cb_arrays)})
        self._write(weights, lambda p: self.model.save_weights(str(p)))
        if arrays:
            def write_npz(p: Path) -> None:
                with open(p, "wb") as f:
                    np.savez(f, **arrays)
            self._write(extra, write_npz)
        state = {"epoch": epoch, "stopped": bool(self.model.stop_training), "history": self.history,
                 "callbacks": callbacks, "learning_rate": self._learning_rate(),
                 "optimizer_iterations": self._iterations()}
        self._write(state_path, lambda p: p.write_text(json.dumps(state)))
        for old in self.checkpoints()[self.keep:]:
            for path in self._paths(old):
                path.unlink(missing_ok=True)

    def _learning_rate(self) -> float | None:
        lr = getattr(self.model.optimizer, "learning_rate", None)
        try:
            return float(keras.ops.convert_to_numpy(lr))
        except (TypeError, ValueError):
            return None

    def _iterations(self) -> int:
        opt = self.model.optimizer
        return int(keras.ops.convert_to_numpy(opt.iterations)) if opt is not None else 0

    # ------------------------------------------------------------------ restore
    def _snapshot(self):
        opt = self.model.optimizer
        if opt is not None and not opt.built:
            opt.build(self.model.trainable_variables)
        opt_vars = [v.numpy() for v in opt.variables] if opt is not None else []
        return self.model.get_weights(), opt_vars

    def _reset(self, snapshot) -> None:
        weights, opt_vars = snapshot
        self.model.set_weights(weights)
        if self.model.optimizer is not None:
            for var, value in zip(self.model.optimizer.variables, opt_vars):
                var.assign(value)

    def _load(self, epoch: int) -> dict:
        weights, extra, state_path = self._paths(epoch)
        state = json.loads(state_path.read_text())
        if state.get("epoch") != epoch or len(state.get("callbacks", ())) != len(self.stateful):
            raise CheckpointError("its state does not match this training's callbacks")
        self.model.load_weights(str(weights))
        arrays = {}
        if any(c["arrays"] for c in state["callbacks"]):
            with np.load(extra) as data:
                arrays = {k: data[k] for k in data.files}
        for i, (cb, saved) in enumerate(zip(self.stateful, state["callbacks"])):
            restore_callback_state(cb, saved["state"], [arrays[f"cb{i}_{j}"] for j in range(saved["arrays"])])
        if state.get("learning_rate") is not None:
            lr = getattr(self.model.optimizer, "learning_rate", None)
            if isinstance(lr, keras.Variable):
                lr.assign(state["learning_rate"])
        return state

    def _set_aside(self, epoch: int, err: BaseException) -> None:
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        for path in self._paths(epoch):
            if path.exists():
                os.replace(path, path.with_name(path.name + ".bad"))
        self.log(f"checkpoint {self._paths(epoch)[2]} could not be loaded ({type(err).__name__}: {reason}); "
                 "set aside as *.bad, using the previous one")

    def on_train_begin(self, logs=None):
        self.history, self.resumed_from = {}, 0
        if self.fresh:
            self.clear()
        remove_dead_temps(self.backup_dir)  # half-written files of a killed run
        candidates = self.checkpoints()
        if not candidates:
            return
        snapshot = self._snapshot()
        for epoch in candidates:
            try:
                state = self._load(epoch)
            except Exception as err:  # noqa: BLE001 -- any unreadable checkpoint is set aside
                self._reset(snapshot)
                self._set_aside(epoch, err)
                continue
            self.history = {k: list(v) for k, v in state["history"].items()}
            self.resumed_from = epoch
            self.model._initial_epoch = self.params.get("epochs", epoch) if state.get("stopped") else epoch
            self.log(f"resumed from checkpoint after epoch {epoch} ({self.backup_dir})")
            if self.on_resume is not None and self.history:
                self.on_resume({k: list(v) for k, v in self.history.items()})
            return
        self.log("no usable checkpoint left; training from scratch")

    # ------------------------------------------------------------------ per epoch
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        # A begin hook keeps Keras' async batch-end dispatch (only end hooks force a sync).
        if self.check_interrupt is not None:
            self.check_interrupt(self._epoch + 1)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            try:
                self.history.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue
        self.save(epoch + 1)
        if self.check_interrupt is not None:
            self.check_interrupt(epoch + 1)
