"""Score a text file and generate text with an exported language model.

`score` uses the export's `score` signature, which scores each text it is given from a zero
state, predicting every token of every line plus each line end (`<eos>` at word level, "\\n" at
character level), the first token after a line-end context. A file is cut into chunks of
`chunk_lines` consecutive lines, each chunk scored as one text (state carried across its lines),
and the per-token log-likelihoods summed over the whole file:

    loss = -sum log p / tokens,   perplexity = exp(loss),   bpc = loss / ln 2 (character level)

-- the same formulas as the evaluate stage (pipeline/tasks/lm/evaluation.py). The evaluate stage
instead cuts the token stream into `evaluate.batch_size` contiguous rows (state carried along
each row, the first token of each row unpredicted, the tail trimmed to a multiple of the rows), so
the two agree closely but not to the last digit; `chunk_lines=0` scores the file as one text, the
closest to one long carried state (memory grows with the file's tokens times the vocabulary).
"""
from __future__ import annotations

import math
from typing import Callable

from components.inference.errors import InferenceError
from components.inference.model_source import Export


def chunks(lines: list[str], chunk_lines: int) -> list[str]:
    """Consecutive lines joined into texts of `chunk_lines` lines (0: the whole file).

    Each text ends with "\n": `score` drops one trailing line end before splitting, so an empty
    last line still counts (its <eos> / "\n" is predicted, as in the evaluate stage's stream)."""
    if chunk_lines < 0:
        raise InferenceError(f"--chunk-lines {chunk_lines}: must be 0 (whole file) or a positive number")
    size = chunk_lines or max(len(lines), 1)
    return ["\n".join(lines[i:i + size]) + "\n" for i in range(0, len(lines), size)]


def score_lines(export: Export, lines: list[str], chunk_lines: int = 64, batch_size: int = 8,
                on_batch: Callable[[int], None] | None = None) -> dict:
    """Perplexity (and bpc at character level) of `lines` as running text."""
    import tensorflow as tf

    from pipeline.tasks.lm.evaluation import metrics_from_ce

    if batch_size < 1:
        raise InferenceError(f"--batch-size {batch_size}: must be at least 1")
    if not lines:
        raise InferenceError("the input has no lines to score")
    texts = chunks(lines, chunk_lines)
    score = export.signature("score")
    total_ll, tokens = 0.0, 0
    for i in range(0, len(texts), batch_size):
        out = score(inputs=tf.constant(texts[i:i + batch_size]))
        total_ll += float(out["log_likelihood"].numpy().astype("float64").sum())
        tokens += int(out["tokens"].numpy().sum())
        if on_batch:
            on_batch(sum(t.count("\n") for t in texts[i:i + batch_size]))
    char_level = export.char_level
    result = metrics_from_ce(-total_ll, tokens, char_level)
    result.update({"log_likelihood": total_ll, "lines": len(lines), "chunks": len(texts),
                   "chunk_lines": chunk_lines, "unit": "character" if char_level else "word",
                   "convention": ("per token incl. each line end ('\\n'), "
                                  if char_level else "whitespace tokens + <eos> per line, ")
                   + ("whole file as one text" if chunk_lines == 0 else f"state reset every {chunk_lines} lines")})
    if not math.isfinite(result["perplexity"]):
        result["perplexity"] = float("inf")
    return result


def generate(export: Export, prompts: list[str], max_tokens: int, temperature: float, top_k: int,
             seed: int | None) -> list[str]:
    """Each prompt continued by `max_tokens` tokens (prompt included, as the `generate` signature)."""
    import tensorflow as tf

    if max_tokens < 0:
        raise InferenceError(f"--max-tokens {max_tokens}: must be 0 or more")
    if temperature < 0:
        raise InferenceError(f"--temperature {temperature}: must be 0 (greedy) or more")
    if top_k < 0:
        raise InferenceError(f"--top-k {top_k}: must be 0 (whole vocabulary) or more")
    n = len(prompts)
    args = {"prompt": tf.constant(prompts, tf.string), "max_tokens": tf.fill([n], max_tokens),
            "temperature": tf.fill([n], float(temperature)), "top_k": tf.fill([n], top_k)}
    if seed is None:
        out = export.signature("generate")(**args)
    else:
        # every row the same seed: a prompt's text then depends on the seed only, not on its batch mates
        out = export.signature("generate_seeded")(**args, seed=tf.fill([n], seed))
    return [t.decode("utf-8") for t in out["outputs"].numpy()]
