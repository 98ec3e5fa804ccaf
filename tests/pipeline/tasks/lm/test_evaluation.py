"""Perplexity = exp(mean per-token CE) over the whole stream, state carried; bpc = mean CE / ln 2."""
import math

import keras
import numpy as np
import pytest

from pipeline.tasks.lm.config import LMModelConfig
from pipeline.tasks.lm.evaluation import keras_hub_generate, make_sampler, metrics_from_ce, stream_metrics
from pipeline.tasks.lm.model import build_language_model

V = 8


def _constant_model(probs):
    """A model whose every prediction is `probs`: output kernel 0, output bias log(probs)."""
    model = build_language_model(LMModelConfig(embedding_dim=4, units=4, layers=1, dropout=0.0), V)
    out = model.get_layer("output_projection")
    out.kernel.assign(np.zeros(out.kernel.shape, "float32"))
    out.bias.assign(np.log(np.asarray(probs, "float32")))
    return model


def test_perplexity_is_exp_mean_cross_entropy_checked_by_hand():
    # p(4) = 1/2, p(5) = 1/4, p(6) = 1/8; the other five ids share the last 1/8.
    probs = [1 / 40] * 4 + [1 / 2, 1 / 4, 1 / 8, 1 / 40]
    model = _constant_model(probs)
    stream = np.array([4, 5, 4, 5, 6, 4], "int32")
    # batch 1: targets 5 4 5 6 4 -> CE = ln4, ln2, ln4, ln8, ln2 = (2+1+2+3+1) ln2 over 5 tokens.
    result = stream_metrics(model, stream, batch_size=1, seq_len=2, char_level=True)
    assert result["tokens"] == 5
    assert result["loss"] == pytest.approx(9 / 5 * math.log(2), rel=1e-5)
    assert result["perplexity"] == pytest.approx(2 ** 1.8, rel=1e-5)
    assert result["bpc"] == pytest.approx(1.8, rel=1e-5)
    # batch 2 (classic batchify): rows [4 5 4], [5 6 4] -> targets 5 4 | 6 4: (2+1+3+1)/4 bits.
    result = stream_metrics(model, stream, batch_size=2, seq_len=35)
    assert result["tokens"] == 4 and result["perplexity"] == pytest.approx(2 ** (7 / 4), rel=1e-5)
    assert "bpc" not in result


def test_metrics_from_ce():
    m = metrics_from_ce(total_ce=10 * math.log(3), tokens=10, char_level=True)
    assert m["perplexity"] == pytest.approx(3) and m["bpc"] == pytest.approx(math.log2(3))


def test_window_length_does_not_change_perplexity_because_state_carries():
    keras.utils.set_random_seed(0)
    model = build_language_model(LMModelConfig(embedding_dim=6, units=10, layers=2, dropout=0.0), V)
    stream = np.random.default_rng(0).integers(3, V, 301).astype("int32")
    results = [stream_metrics(model, stream, batch_size=3, seq_len=s)["perplexity"] for s in (1, 7, 35, 500)]
    np.testing.assert_allclose(results, results[0], rtol=1e-5)


def test_keras_hub_greedy_sampler_generates_argmax_continuations():
    from pipeline.tasks.lm.data import fit_lm_vocabulary

    vocab = fit_lm_vocabulary(["a b c d"], "whitespace")
    model = _constant_model([1 / 16] * 4 + [1 / 16, 1 / 16, 1 / 2, 1 / 16])  # argmax is id 6 = "c"
    assert vocab.tokens[6] == "c"
    assert keras_hub_generate(model, vocab, ["a", ""], 3, make_sampler(0.0, 0)) == ["a c c c", "c c c"]
    top1 = keras_hub_generate(model, vocab, ["a"], 3, make_sampler(1.5, 1, seed=3))
    assert top1 == ["a c c c"]  # top-k with k = 1 is greedy at any temperature
    assert type(make_sampler(0.7, 0)).__name__ == "RandomSampler"


def test_top_k_above_the_vocabulary_samples_from_the_whole_softmax():
    """evaluate.top_k larger than a small vocabulary (e.g. 40 on a 30-token char LM) must not crash."""
    from pipeline.tasks.lm.data import fit_lm_vocabulary

    vocab = fit_lm_vocabulary(["a b c d"], "whitespace")
    model = _constant_model([1 / 8] * 8)
    sampler = make_sampler(0.8, 40, seed=1, vocab_size=len(vocab))
    assert type(sampler).__name__ == "RandomSampler"
    (text,) = keras_hub_generate(model, vocab, ["a"], 4, sampler)
    assert text.startswith("a")  # uniform over all 8 ids, special ones included
    assert type(make_sampler(0.8, len(vocab) - 1, vocab_size=len(vocab))).__name__ == "TopKSampler"
