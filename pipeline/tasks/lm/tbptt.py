"""Truncated BPTT plumbing for `model.fit` on a stateful language model.

* `ResetStates`: zero the carried LSTM states at the start of every epoch (the stream
  starts over) -- the classic `hidden = model.init_hidden(batch_size)` per epoch.
* `StreamValidation`: after each epoch, copy the weights into the stateless inference
  build and measure validation perplexity over the whole split with the state carried
  (Keras' own validation would run the stateful training build, with the training batch
  size and the training stream's state). Adds `val_loss`, `val_perplexity` (and `val_bpc`)
  to the epoch logs, so ReduceLROnPlateau / EarlyStopping / MLflow / History see them; it
  must come before those callbacks in the list. It also keeps the best weights by
  validation perplexity (in `ResumableTraining`'s checkpoints via `resume_state`, or in
  `best_dir`, so a resumed run keeps them) and restores them when training ends -- the classic
  "save the model when val loss improves, reload at the end".
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from pipeline.tasks.lm.evaluation import stream_metrics
from pipeline.tasks.lm.model import copy_weights, reset_lstm_states


class ResetStates(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        reset_lstm_states(self.model)


class StreamValidation(keras.callbacks.Callback):
    def __init__(self, eval_model: keras.Model, stream: np.ndarray, batch_size: int, seq_len: int,
                 char_level: bool, best_dir: Path | None = None, log=print):
        super().__init__()
        self.eval_model = eval_model
        self.stream = stream
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.char_level = char_level
        self.best_dir = Path(best_dir) if best_dir else None
        self.log = log
        self.best = math.inf
        self.best_epoch = None
        self.best_weights = None

    # -- best weights persisted beside the BackupAndRestore folder, so resuming keeps them
    def _best_files(self):
        return self.best_dir / "best.npz", self.best_dir / "best.json"

    def on_train_begin(self, logs=None):
        if self.best_dir and self._best_files()[1].is_file():
            meta = json.loads(self._best_files()[1].read_text())
            with np.load(self._best_files()[0]) as data:
                self.best_weights = [data[f"w{i}"] for i in range(len(data.files))]
            self.best, self.best_epoch = meta["val_perplexity"], meta["epoch"]

    # -- the whole state, for `ResumableTraining`'s checkpoints (atomic, unlike `best_dir`)
    def resume_state(self) -> tuple[dict, list]:
        best = self.best if math.isfinite(self.best) else None
        return {"best": best, "best_epoch": self.best_epoch}, list(self.best_weights or [])

    def restore_state(self, state: dict, arrays: list) -> None:
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.best_epoch = state["best_epoch"]
        self.best_weights = list(arrays) or None

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        copy_weights(self.model, self.eval_model)
        metrics = stream_metrics(self.eval_model, self.stream, self.batch_size, self.seq_len, self.char_level)
        logs = logs if logs is not None else {}
        logs["val_loss"] = metrics["loss"]
        logs["val_perplexity"] = metrics["perplexity"]
        if self.char_level:
            logs["val_bpc"] = metrics["bpc"]
        logs["val_seconds"] = time.perf_counter() - start
        line = f"epoch {epoch + 1}: train ppl {logs.get('perplexity', float('nan')):.2f}, " \
               f"val ppl {metrics['perplexity']:.2f}"
        if self.char_level:
            line += f", val bpc {metrics['bpc']:.3f}"
        lr = getattr(self.model.optimizer, "learning_rate", None)
        if lr is not None:
            line += f", lr {float(keras.ops.convert_to_numpy(lr)):.4g}"
        if "tokens_per_sec" in logs:
            line += f", {logs['tokens_per_sec']:,.0f} tokens/s"
        if metrics["perplexity"] < self.best:
            self.best, self.best_epoch = metrics["perplexity"], epoch + 1
            self.best_weights = self.model.get_weights()
            self._save_best()
            line += " (best)"
        self.log(line)

    def _save_best(self):
        if not self.best_dir:
            return
        self.best_dir.mkdir(parents=True, exist_ok=True)
        npz, meta = self._best_files()
        np.savez(npz, **{f"w{i}": w for i, w in enumerate(self.best_weights)})
        meta.write_text(json.dumps({"val_perplexity": self.best, "epoch": self.best_epoch}))

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def cleanup(self):
        if self.best_dir:
            shutil.rmtree(self.best_dir, ignore_errors=True)
