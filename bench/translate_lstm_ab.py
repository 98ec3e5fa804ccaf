"""Keras LSTM vs FastLSTM inside the real translator: same config, seed and real batches, loss side by side.

    .venv/bin/python -m pipeline run configs/translate_multi30k_de_en_attention.yaml --stages prepare
    .venv/bin/python bench/translate_lstm_ab.py configs/translate_multi30k_de_en_attention.yaml \
        work/translate_multi30k_de_en_attention/prepare --steps 150

Prints the mean training loss of every 25 steps and the elapsed time for each kernel. FastLSTM is
tested equal to Keras' LSTM op by op (tests/components/models/test_fast_lstm.py); this checks the
claim where it matters, a whole training run on real data (issue 22 asked whether slow early
learning came from the kernel: it did not, docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.cli_setup import setup_like_the_cli  # noqa: E402
from bench.translate_prepared import add_prepared_args, load_prepared  # noqa: E402

ALLOCATOR = setup_like_the_cli()  # before TensorFlow starts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_prepared_args(p)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--every", type=int, default=25, help="print the mean loss of this many steps")
    args = p.parse_args()

    import keras
    import numpy as np

    from bench.kernel_swap import keras_lstm_in
    from components.training import fit
    from components.training.losses import MaskedTokenAccuracy, masked_cross_entropy
    from pipeline.tasks.translate import data
    from pipeline.tasks.translate import model as translator

    prepared = load_prepared(args)
    cfg, src_vocab, tgt_vocab, splits = prepared.cfg, prepared.source_vocab, prepared.target_vocab, prepared.splits
    print(f"{ALLOCATOR}; {args.config}: {args.steps} steps per variant", flush=True)
    for variant in ("keras", "fast"):
        keras.utils.set_random_seed(cfg.seed)
        ds = data.batches_for_config(cfg, splits["train"], src_vocab, tgt_vocab,
                                     batch_size=cfg.train.batch_size, shuffle=True)
        with keras_lstm_in(translator, enabled=variant == "keras"):
            model = translator.build_translator(cfg.model, len(src_vocab), len(tgt_vocab))
        model.compile(optimizer=fit.make_optimizer(cfg.train.optimizer_spec(), 10_000),
                      loss=masked_cross_entropy(cfg.train.label_smoothing), metrics=[MaskedTokenAccuracy()])
        losses, start = [], time.perf_counter()
        for i, (x, y) in enumerate(ds.repeat().take(args.steps)):
            out = model.train_on_batch(x, y, return_dict=True)
            losses.append(out["loss"])
            if (i + 1) % args.every == 0:
                print(f"{variant:<5} step {i + 1:>4}: mean loss {np.mean(losses[-args.every:]):.4f}  "
                      f"token accuracy {out['token_accuracy']:.4f}  ({time.perf_counter() - start:.0f} s)",
                      flush=True)


if __name__ == "__main__":
    main()
