"""Test BLEU of single epoch weights and of their averages, decoded as the evaluate stage decodes.

    .venv/bin/python bench/translator_checkpoint_average.py configs/translate_multi30k_de_en_attention.yaml \
        work/<name>/prepare A.weights.h5 A.weights.h5+B.weights.h5+C.weights.h5 [--set KEY=VALUE ...]

Each argument after the prepare dir is one model: a `*.weights.h5` training backup or a
`model.keras`, or several joined by `+`, whose trainable weights are averaged. Prints greedy and
`evaluate.beam_size` test BLEU for each. Why: `train.average_last_epochs` is only worth turning on
if the average beats the last epoch, and this answers that from the backups of one run instead of
one more run per window (issue 22, docs/benchmarks.md). Copy the backups out of
`work/<name>/.train-backup-*/` while the run trains: a finished run deletes them.
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
    p.add_argument("models", nargs="+", help="WEIGHTS or WEIGHTS+WEIGHTS+... (averaged)")
    args = p.parse_args()

    import numpy as np

    from components.data import corpus
    from pipeline.tasks.translate.evaluation import corpus_bleu, translate_corpus
    from pipeline.tasks.translate.model import build_translator
    from pipeline.tasks.translate.translate_fn import make_translate_fn

    prepared = load_prepared(args)
    cfg, src_vocab, tgt_vocab = prepared.cfg, prepared.source_vocab, prepared.target_vocab
    sources = corpus.texts(prepared.splits["test"], cfg.data.source_lang)
    references = corpus.texts(prepared.splits["test"], cfg.data.target_lang)
    print(f"{ALLOCATOR}; {args.config}: {len(sources)} test pairs", flush=True)

    def trainable(path: str) -> list[np.ndarray]:
        return [v.numpy() for v in trained_translator(prepared, path).trainable_variables]

    for group in args.models:
        paths = group.split("+")
        weights = [trainable(path) for path in paths]
        model = build_translator(cfg.model, len(src_vocab), len(tgt_vocab))
        for variable, values in zip(model.trainable_variables, zip(*weights)):
            variable.assign(np.mean(values, axis=0))
        scores = []
        for beam in sorted({1, cfg.evaluate.beam_size}):
            translate = make_translate_fn(model, src_vocab, tgt_vocab, cfg.decode_spec().with_beam(beam))
            bleu, _ = corpus_bleu(translate_corpus(translate, sources, cfg.evaluate.batch_size), references,
                                  cfg.evaluate.bleu_tokenize)
            scores.append(f"beam {beam}: {bleu:.2f}")
        print(f"{' + '.join(Path(path).name for path in paths)}: test BLEU {', '.join(scores)}", flush=True)


if __name__ == "__main__":
    main()
