"""score_lines / generate / the char-level probe, on real LM exports of a small random model."""
import math

import keras
import pytest
import tensorflow as tf

from components.inference.errors import InferenceError
from components.inference.model_source import load_export
from pipeline.tasks.lm.config import LMModelConfig
from pipeline.tasks.lm.data import fit_lm_vocabulary
from pipeline.tasks.lm.export import export_language_model
from pipeline.tasks.lm.inference import chunks, generate, score_lines
from pipeline.tasks.lm.model import build_language_model

LINES = ["First Citizen:", "Before we proceed any further, hear me speak.", "",
         "All:", "Speak, speak.", "", "First Citizen:", "You are all resolved rather to die than to famish?"]


@pytest.fixture(scope="module", params=["whitespace", "char"])
def export(request, tmp_path_factory):
    vocab = fit_lm_vocabulary(LINES, request.param)
    keras.utils.set_random_seed(3)
    model = build_language_model(LMModelConfig(embedding_dim=8, units=12, layers=2, dropout=0.0), len(vocab))
    path = export_language_model(model, vocab, tmp_path_factory.mktemp("exports") / "lm")
    return request.param, load_export(str(path.parent))  # the base folder resolves to version 1


def test_chunks():
    assert chunks(["a", "b", "c"], 2) == ["a\nb\n", "c\n"]
    assert chunks(["a", "", "c", ""], 0) == ["a\n\nc\n\n"]
    with pytest.raises(InferenceError, match="--chunk-lines -1"):
        chunks(["a"], -1)


def test_probe_detects_character_level(export):
    kind, exp = export
    assert exp.task == "lm"
    assert exp.char_level is (kind == "char")


def test_file_scores_add_up_from_the_score_signature(export):
    kind, exp = export
    score = exp.signature("score")
    whole = score(inputs=tf.constant(["\n".join(LINES)]))
    one = score_lines(exp, LINES, chunk_lines=0)
    assert one["tokens"] == int(whole["tokens"][0])
    assert one["log_likelihood"] == pytest.approx(float(whole["log_likelihood"][0]), rel=1e-5)
    expected_tokens = (sum(len(ly) + 1 for ly in LINES) if kind == "char"
                       else sum(len(ly.split()) + 1 for ly in LINES))
    assert one["tokens"] == expected_tokens  # the evaluate stage's stream convention
    # Chunks of 3 lines, batched 2 per call: the sum over the chunks scored one by one.
    parts = [score(inputs=tf.constant([c])) for c in chunks(LINES, 3)]
    chunked = score_lines(exp, LINES, chunk_lines=3, batch_size=2)
    assert chunked["tokens"] == one["tokens"] and chunked["chunks"] == 3
    assert chunked["log_likelihood"] == pytest.approx(sum(float(p["log_likelihood"][0]) for p in parts), rel=1e-5)
    assert chunked["perplexity"] == pytest.approx(math.exp(-chunked["log_likelihood"] / chunked["tokens"]))
    assert ("bpc" in chunked) is (kind == "char")
    if kind == "char":
        assert chunked["bpc"] == pytest.approx(chunked["loss"] / math.log(2))


def test_generate_seeded_is_reproducible_and_independent_of_batch_mates(export):
    _, exp = export
    a = generate(exp, ["First Citizen:", "All:"], 6, 1.0, 0, seed=5)
    b = generate(exp, ["All:"], 6, 1.0, 0, seed=5)
    assert a[1] == b[0] and a[0].startswith("First Citizen:")
    greedy = generate(exp, ["All:"], 6, 0.0, 0, seed=None)
    assert greedy == generate(exp, ["All:"], 6, 0.0, 3, seed=None)  # top-k never changes the argmax
    with pytest.raises(InferenceError, match="--temperature -1"):
        generate(exp, ["x"], 3, -1, 0, None)


def test_wrong_task_is_named(export):
    _, exp = export
    with pytest.raises(InferenceError, match="is a language model export; `translate` needs a translator"):
        exp.require("translate", "translate")
