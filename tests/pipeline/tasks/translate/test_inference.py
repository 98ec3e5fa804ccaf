"""Batching, order and alignment of translate_lines (any batch -> batch function will do)."""
import pytest

from components.inference.errors import InferenceError
from pipeline.tasks.translate.inference import translate_lines

LINES = [f"line {i}" for i in range(7)] + ["", "   "] + ["x\ny"]


def reverse_words(batch):
    calls.append(list(batch))
    return [" ".join(reversed(s.split())) for s in batch]


calls: list = []


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_one_output_per_line_in_order(batch_size):
    calls.clear()
    seen = []
    out = list(translate_lines(reverse_words, LINES, batch_size, on_batch=seen.append))
    assert len(out) == len(LINES)
    assert out[:7] == [f"{i} line" for i in range(7)]
    assert out[7:9] == ["", ""]  # blank lines stay blank and never reach the model
    assert all(s.strip() for batch in calls for s in batch)
    assert "\n" not in out[9]  # a multi-line result is flattened so lines stay aligned
    assert sum(seen) == len(LINES)
    assert max(len(b) for b in calls) <= batch_size


def test_flush_each_line_calls_per_line_and_streams():
    calls.clear()
    it = translate_lines(reverse_words, iter(["a b", "c d"]), 32, flush_each_line=True)
    assert next(it) == "b a"
    assert calls == [["a b"]]


def test_bad_batch_size():
    with pytest.raises(InferenceError, match="--batch-size 0"):
        list(translate_lines(reverse_words, ["a"], 0))
