"""sacreBLEU corpus metrics (BLEU, chrF, TER) with their signatures, single or multi-reference."""
from __future__ import annotations

from .errors import InferenceError

METRICS = ("bleu", "chrf", "ter")


def parse_metrics(text: str) -> list[str]:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise InferenceError(f"--metrics {text!r}: unknown metric {', '.join(bad) or '(none given)'}; "
                             f"allowed: {', '.join(METRICS)} (comma-separated)")
    return list(dict.fromkeys(names))


def score_corpus(hypotheses: list[str], references: list[list[str]], metrics: list[str],
                 tokenize: str = "13a") -> dict[str, dict]:
    """{metric: {score, signature, text}}; `references` is one list of lines per reference file.

    BLEU with `tokenize` is exactly what the evaluate stage computes (translation_eval.corpus_bleu)
    when given the same single reference."""
    import sacrebleu

    makers = {"bleu": lambda: sacrebleu.metrics.BLEU(tokenize=tokenize),
              "chrf": lambda: sacrebleu.metrics.CHRF(),
              "ter": lambda: sacrebleu.metrics.TER()}
    allowed = list(sacrebleu.metrics.BLEU.TOKENIZERS)
    if "bleu" in metrics and tokenize not in allowed:
        raise InferenceError(f"--tokenize {tokenize!r}: not a sacreBLEU tokenizer; allowed: {', '.join(allowed)}")
    out = {}
    for name in metrics:
        metric = makers[name]()
        result = metric.corpus_score(hypotheses, references)
        out[name] = {"score": float(result.score), "signature": str(metric.get_signature()), "text": str(result)}
    return out
