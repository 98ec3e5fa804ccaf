"""sacreBLEU metrics: same BLEU as the evaluate stage, multi-reference, flag errors."""
import pytest

from components.inference.errors import InferenceError
from components.inference.metrics import parse_metrics, score_corpus

HYP = ["the cat sat on the mat", "a dog barks loudly at night", "he reads a book"]
REF1 = ["the cat sat on a mat", "a dog barks at night", "she reads the book"]
REF2 = ["the cat is sitting on the mat", "the dog barks loudly at night", "he reads a book"]





def test_multi_reference_and_all_metrics():
    one = score_corpus(HYP, [REF1], ["bleu", "chrf", "ter"])
    two = score_corpus(HYP, [REF1, REF2], ["bleu", "chrf", "ter"])
    assert "nrefs:2" in two["bleu"]["signature"]
    assert two["bleu"]["score"] > one["bleu"]["score"]  # REF2 matches the third line exactly
    assert two["ter"]["score"] < one["ter"]["score"]
    assert set(two) == {"bleu", "chrf", "ter"} and two["chrf"]["signature"].startswith("nrefs:2")


def test_parse_metrics():
    assert parse_metrics("BLEU, chrf,bleu") == ["bleu", "chrf"]
    with pytest.raises(InferenceError, match="unknown metric meteor; allowed: bleu, chrf, ter"):
        parse_metrics("bleu,meteor")


def test_unknown_tokenizer_is_a_clear_error():
    with pytest.raises(InferenceError, match="--tokenize .nope.: not a sacreBLEU tokenizer; allowed: .*13a"):
        score_corpus(HYP, [REF1], ["bleu"], "nope")
