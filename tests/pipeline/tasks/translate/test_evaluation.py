"""chrF and the example-reference lookup used by the translator's evaluate stage."""
from components.inference import metrics
from pipeline.tasks.translate.evaluation import corpus_bleu, corpus_chrf, find_references


def test_chrf_rewards_near_misses_that_bleu_scores_zero():
    refs = ["آپ کیسے ہیں؟"]
    near = ["آپ کیسی ہیں"]  # one letter and the question mark off
    assert corpus_bleu(near, refs)[0] < 20
    chrf, signature = corpus_chrf(near, refs)
    assert 40 < chrf < 100 and "nc:6" in signature
    assert corpus_chrf(refs, refs)[0] == 100.0


def test_find_references_first_split_wins_and_unknown_sources_are_left_out():
    splits = {"test": [("Hi.", "سلام")], "validation": [("How are you?", "آپ کیسے ہیں؟"), ("Hi.", "x")]}
    found = find_references(["How are you?", "Hi.", "Unseen."], splits)
    assert found == {"How are you?": {"reference": "آپ کیسے ہیں؟", "split": "validation"},
                     "Hi.": {"reference": "سلام", "split": "test"}}


HYP = ["the cat sat on the mat", "a dog barks loudly at night", "he reads a book"]
REF1 = ["the cat sat on a mat", "a dog barks at night", "she reads the book"]


def test_bleu_equals_the_evaluate_stage_and_has_a_signature():
    for tok in ("13a", "intl"):
        stage_score, stage_sig = corpus_bleu(HYP, REF1, tok)
        got = metrics.score_corpus(HYP, [REF1], ["bleu"], tok)["bleu"]
        assert got["score"] == stage_score and got["signature"] == stage_sig
        assert f"tok:{tok}" in got["signature"] and "nrefs:1" in got["signature"]
