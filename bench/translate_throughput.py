"""Translator throughput: training tokens/s and SavedModel translation latency.

    .venv/bin/python bench/translate_throughput.py [--config configs/translate_en_ur.yaml] [--epochs 3]

Trains the config's model for a few epochs on its real data (after a warm-up epoch that
pays for tracing), exports it to a temp folder, reloads it and times `serving_default` at
batch sizes 1 and 32. Prints a table; asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import console  # noqa: E402  (before TensorFlow: no C++ start-up log lines)

console.setup(verbose="--verbose" in sys.argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/translate_en_ur.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()

    from dataclasses import replace

    import tensorflow as tf

    from components.data import corpus
    from components.text.vocab import fit_vocabulary
    from components.training import fit
    from components.training.losses import masked_cross_entropy
    from pipeline.config import load_config
    from pipeline.tasks.translate.data import batches_for_config, data_source
    from pipeline.tasks.translate.data import splits as translation_splits
    from pipeline.tasks.translate.export import export_translator
    from pipeline.tasks.translate.model import build_translator

    cfg = load_config(args.config)
    tmp = Path(tempfile.mkdtemp(prefix="bench-translate-"))
    splits = translation_splits(data_source(cfg.data), cfg.data, tmp)
    texts = {lang: corpus.texts(splits["train"], lang) for lang in (cfg.data.source_lang, cfg.data.target_lang)}
    src = fit_vocabulary(texts[cfg.data.source_lang], cfg.text.tokenizer, cfg.text.lowercase, cfg.text.max_vocab_size)
    tgt = fit_vocabulary(texts[cfg.data.target_lang], cfg.text.tokenizer, cfg.text.lowercase, cfg.text.max_vocab_size)
    ds = batches_for_config(cfg, splits["train"], src, tgt, batch_size=cfg.train.batch_size, shuffle=True)
    tokens = fit.count_tokens(ds)
    model = build_translator(cfg.model, len(src), len(tgt))
    model.compile(optimizer=fit.make_optimizer(cfg.train.optimizer_spec()), loss=masked_cross_entropy())
    model.fit(ds, epochs=1, verbose=0)  # warm-up: tracing
    start = time.perf_counter()
    model.fit(ds, epochs=args.epochs, verbose=0)
    train_tps = tokens * args.epochs / (time.perf_counter() - start)

    # Greedy serving at the default length penalty, whatever evaluate.beam_size says: what this bench measures.
    spec = replace(cfg.decode_spec(), beam_size=1, length_penalty=0.6)
    path = export_translator(model, src, tgt, spec, tmp / "export")
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    rows = [("train tokens/s", f"{train_tps:,.0f}", f"{model.count_params():,} params, batch {cfg.train.batch_size}")]
    sources = texts[cfg.data.source_lang]
    for batch in (1, 32):
        inputs = tf.constant(sources[:batch])
        served(inputs=inputs)  # warm-up
        times = []
        for i in range(args.calls):
            inputs = tf.constant(sources[i * batch % len(sources):][:batch] or sources[:batch])
            t0 = time.perf_counter()
            served(inputs=inputs)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        rows.append((f"translate batch {batch}", f"{times[len(times) // 2]:.1f} ms p50",
                     f"{batch * 1000 / times[len(times) // 2]:.1f} sentences/s"))
    print(f"\n{'measure':<22} {'value':>16}  note")
    for name, value, note in rows:
        print(f"{name:<22} {value:>16}  {note}")


if __name__ == "__main__":
    main()
