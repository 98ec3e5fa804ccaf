"""Per-epoch cost of ResumableTraining's atomic checkpoint (write, fsync, rename, prune).

    .venv/bin/python bench/checkpoint_overhead.py [--config configs/translate_en_ur.yaml] [--vocab 8000] [--saves 5]

Builds the config's model (translator or LM) with a synthetic vocabulary size, compiles it,
runs one step so the optimizer's slots exist, then times `ResumableTraining.save` (what runs
after every epoch) and a restore. Prints one table; asserts nothing. Compare the seconds with
an epoch's `epoch_seconds` in the run's history.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import console

console.setup(verbose="--verbose" in sys.argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/translate_en_ur.yaml")
    parser.add_argument("--vocab", type=int, default=8000, help="vocabulary size(s) of the synthetic model")
    parser.add_argument("--saves", type=int, default=5)
    args = parser.parse_args()

    import keras
    import numpy as np

    from components.training import fit
    from components.training.resume import ResumableTraining
    from pipeline.config import load_config

    cfg = load_config(args.config)
    if cfg.task == "lm":
        from pipeline.tasks.lm.model import build_language_model

        model = build_language_model(cfg.model, args.vocab, stateful=True, batch_size=2)  # the training build
        x = np.ones((2, 8), "int32")
        y = x
    else:
        from pipeline.tasks.translate.model import build_translator

        model = build_translator(cfg.model, args.vocab, args.vocab)
        x = {"source": np.ones((2, 8), "int32"), "target_in": np.ones((2, 8), "int32")}
        y = np.ones((2, 8), "int32")
    model.compile(optimizer=fit.make_optimizer(cfg.train.optimizer_spec()),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0)  # builds the optimizer's slots: saved like a real epoch's
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp:
        resumable = ResumableTraining(Path(tmp), log=lambda m: None)
        resumable.set_model(model)
        resumable.history = {"loss": [1.0] * 50, "val_loss": [1.0] * 50}
        times = []
        for epoch in range(1, args.saves + 1):
            start = time.perf_counter()
            resumable.save(epoch)
            times.append(time.perf_counter() - start)
        size = sum(p.stat().st_size for p in Path(tmp).glob(f"epoch-{args.saves:04d}.*"))
        resumable.set_params({"epochs": args.saves + 1})
        start = time.perf_counter()
        resumable.on_train_begin()
        restore = time.perf_counter() - start
    print(f"{'config':<34} {'params':>10} {'checkpoint MB':>13} {'save s (median)':>15} {'restore s':>9}")
    median = sorted(times)[len(times) // 2]
    print(f"{args.config:<34} {model.count_params():>10,} {size / 2**20:>13.1f} {median:>15.3f} {restore:>9.3f}")


if __name__ == "__main__":
    main()
