"""How much a translator uses its source: validation loss with the true sources against shifted ones.

    .venv/bin/python bench/translator_source_use.py configs/translate_multi30k_de_en_attention.yaml \
        work/translate_multi30k_de_en_attention/prepare WEIGHTS [WEIGHTS ...]

WEIGHTS: a training backup (`work/<name>/.train-backup-*/epoch-0006.weights.h5`) or the train
stage's `model.keras`. For each, prints the teacher-forced validation loss (nats per target token,
no label smoothing) with every pair's own source and with the source of the next pair in the batch,
their difference (what the source is worth to the model), and, with attention, the attention's
entropy as a share of uniform attention over the real source tokens.

Why: issue 22's slow runs gave generic translations that ignore the source (`A man in a black shirt
is sitting on a street.` for a brown dog) while the training loss still fell; token accuracy alone
cannot tell a decoder language model from a translator, this difference can.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.cli_setup import setup_like_the_cli  # noqa: E402
from bench.translate_prepared import add_prepared_args, load_prepared, trained_translator  # noqa: E402

ALLOCATOR = setup_like_the_cli()  # before TensorFlow starts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_prepared_args(p)
    p.add_argument("weights", nargs="+", help="*.weights.h5 backups or a model.keras")
    args = p.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from components.training.losses import per_token_cross_entropy, token_mask
    from pipeline.tasks.translate import data

    prepared = load_prepared(args)
    cfg, src_vocab, tgt_vocab = prepared.cfg, prepared.source_vocab, prepared.target_vocab
    val = data.batches_for_config(cfg, prepared.splits["validation"], src_vocab, tgt_vocab,
                                  batch_size=cfg.evaluate.batch_size, shuffle=False)
    print(f"{ALLOCATOR}; {args.config}", flush=True)
    for weights in args.weights:
        model = trained_translator(prepared, weights)
        has_attention = any(layer.name == "attention" for layer in model.layers)
        attention = keras.Model(model.inputs, model.get_layer("attention").output) if has_attention else None
        sums = {"own": 0.0, "shifted": 0.0}
        tokens, entropy = 0.0, []
        for x, y in val:
            mask = token_mask(y)
            for kind in sums:
                # Shift by one within the batch (same length bucket): a real but unrelated source.
                feed = x if kind == "own" else {**x, "source": tf.roll(x["source"], 1, axis=0)}
                nll = per_token_cross_entropy(y, model(feed, training=False))
                sums[kind] += float(tf.reduce_sum(nll * mask))
            tokens += float(tf.reduce_sum(mask))
            if attention is not None:
                _, scores = attention(x, training=False)
                real = tf.cast(x["source"] != 0, tf.float32)[:, None, :]
                h = -tf.reduce_sum(scores * real * tf.math.log(scores + 1e-9), -1)
                uniform = tf.math.log(tf.maximum(tf.reduce_sum(real, -1), 2.0))
                entropy.append(float(tf.reduce_sum(h / uniform * mask) / tf.reduce_sum(mask)))
        own, shifted = sums["own"] / tokens, sums["shifted"] / tokens
        line = (f"{weights}: val loss {own:.4f} own sources, {shifted:.4f} shifted; "
                f"the source is worth {shifted - own:.3f} nats per token (perplexity {np.exp(own):.1f} vs "
                f"{np.exp(shifted):.1f})")
        if entropy:
            line += f"; attention entropy {np.mean(entropy):.2f} of uniform"
        print(line, flush=True)


if __name__ == "__main__":
    main()
