"""Translate lines with an exported translator: batched, order kept, one output line per input line.

The beam width is fixed when the model is exported (the decoding loop is traced into the graph),
so `--beam` picks between the export's signatures: 1 -> `translate_greedy`, the exported width
-> `translate` (what the evaluate stage measured); no other width exists in the SavedModel.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

from components.inference.errors import InferenceError
from components.inference.model_source import Export


def pick_translate(export: Export, beam: int | None) -> tuple[Callable[[list[str]], list[str]], str]:
    """(batch of strings -> translations, signature name) for the requested beam width."""
    import tensorflow as tf

    if beam is None:
        name = "translate"
    elif beam == 1:
        name = "translate_greedy"
    elif beam == export.beam_width:
        name = "translate"
    else:
        widths = sorted({1, export.beam_width})
        raise InferenceError(f"--beam {beam}: this export decodes with beam width "
                             f"{' or '.join(map(str, widths))} only (the width is fixed at export time: "
                             "re-export with evaluate.beam_size set to change it)")
    fn = export.signature(name)

    def translate(batch: list[str]) -> list[str]:
        out = fn(inputs=tf.constant(batch, dtype=tf.string))["outputs"].numpy()
        return [t.decode("utf-8") for t in out]

    return translate, name


def _one_line(text: str) -> str:
    """A translation is written as one line, whatever it contains, so outputs stay aligned."""
    return " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text


def translate_batch(translate: Callable[[list[str]], list[str]], batch: list[str]) -> list[str]:
    """Blank lines come back blank (not sent to the model); everything else is translated in order."""
    todo = [i for i, line in enumerate(batch) if line.strip()]
    out = [""] * len(batch)
    if todo:
        for i, hyp in zip(todo, translate([batch[i] for i in todo])):
            out[i] = _one_line(hyp)
    return out


def translate_lines(translate: Callable[[list[str]], list[str]], lines: Iterable[str], batch_size: int,
                    flush_each_line: bool = False, on_batch: Callable[[int], None] | None = None) -> Iterator[str]:
    """Yield one translation per input line, in input order, `batch_size` lines per model call.

    flush_each_line translates every line as soon as it arrives (an interactive terminal)."""
    if batch_size < 1:
        raise InferenceError(f"--batch-size {batch_size}: must be at least 1")
    size = 1 if flush_each_line else batch_size
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield from translate_batch(translate, batch)
            if on_batch:
                on_batch(len(batch))
            batch = []
    if batch:
        yield from translate_batch(translate, batch)
        if on_batch:
            on_batch(len(batch))
