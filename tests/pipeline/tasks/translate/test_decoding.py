"""Greedy and beam search, on small random models (their outputs are arbitrary but exact)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from components.text.vocab import EOS_ID, PAD_ID
from pipeline.tasks.translate.config import TranslatorModelConfig
from pipeline.tasks.translate.decoding import beam_search_decode, greedy_decode, length_penalty
from pipeline.tasks.translate.model import build_translator, translator_parts

SOURCE = tf.constant([[5, 6, 7, EOS_ID, 0, 0], [8, 9, EOS_ID, 0, 0, 0], [10, EOS_ID, 0, 0, 0, 0]])


def _parts(attention="none", seed=0, residual=False, scaled=False):
    keras.utils.set_random_seed(seed)
    model = build_translator(TranslatorModelConfig(embedding_dim=8, units=16, dropout=0.0, attention=attention,
                                                   residual=residual, attention_scaled=scaled), 30, 12)
    return model, translator_parts(model)


@pytest.mark.parametrize("attention", ["none", "dot", "general"])
def test_beam_size_one_equals_greedy(attention):
    _, parts = _parts(attention)
    greedy = tf.function(lambda s: greedy_decode(parts, s, 9))(SOURCE).numpy()
    ids, scores = tf.function(lambda s: beam_search_decode(parts, s, 9, 1))(SOURCE)
    np.testing.assert_array_equal(ids.numpy()[:, 0], greedy)
    assert scores.shape == (3, 1)


def _sequence_logprob(model, source, target):
    """Teacher-forced sum of log p(target) under the full model, <eos> included."""
    seq = list(target)  # already cut at <eos>; an untrained model may emit <pad> mid-sentence, keep it
    target_in = np.array([[2] + seq[:-1]], dtype="int32")
    logits = model({"source": source[None], "target_in": target_in}, training=False)
    logp = tf.nn.log_softmax(logits[0]).numpy()
    return sum(logp[i, t] for i, t in enumerate(seq)), len(seq)


@pytest.mark.parametrize("attention,residual,scaled", [("general", False, False), ("general", True, False),
                                                       ("none", True, False), ("general", True, True),
                                                       ("dot", False, True)])
def test_beam_scores_sorted_and_equal_to_the_models_logprob(attention, residual, scaled):
    # The replay runs the full training graph, so this also checks that step-by-step decoding
    # wires attention (scaled or not) and residual connections exactly as the trained model does.
    model, parts = _parts(attention, seed=3, residual=residual, scaled=scaled)
    ids, scores = tf.function(lambda s: beam_search_decode(parts, s, 8, 4, 0.6))(SOURCE)
    ids, scores = ids.numpy(), scores.numpy()
    assert ids.shape[:2] == (3, 4)
    assert np.all(np.diff(scores, axis=1) <= 1e-6), scores  # best first
    for b in range(3):
        for k in range(4):
            row = ids[b, k]
            if EOS_ID not in row:
                continue  # hit the length limit: the score still counts, the replay needs <eos>
            row = row[: list(row).index(EOS_ID) + 1]
            logp, n = _sequence_logprob(model, SOURCE.numpy()[b], row)
            np.testing.assert_allclose(scores[b, k], logp / float(length_penalty(n, 0.6)), rtol=1e-4, atol=1e-4)


def test_beam_finds_at_least_the_greedy_score():
    model, parts = _parts("dot", seed=5)
    greedy = tf.function(lambda s: greedy_decode(parts, s, 8))(SOURCE).numpy()
    ids, scores = tf.function(lambda s: beam_search_decode(parts, s, 8, 5, 0.0))(SOURCE)
    for b in range(3):
        if EOS_ID in greedy[b] and EOS_ID in ids.numpy()[b, 0]:
            g = greedy[b][: list(greedy[b]).index(EOS_ID) + 1]
            g_logp, _ = _sequence_logprob(model, SOURCE.numpy()[b], g)
            assert scores.numpy()[b, 0] >= g_logp - 1e-4


def test_attention_weights_on_padding_are_zero():
    model, _ = _parts("general")
    layer = model.get_layer("attention")
    probe = keras.Model(model.inputs, layer.output[1])  # the attention scores
    target_in = tf.constant([[2, 4, 5]] * 3)
    weights = probe({"source": SOURCE, "target_in": target_in}).numpy()  # [B, T, S]
    pad = (SOURCE.numpy() == PAD_ID)[:, None, :].repeat(3, axis=1)
    assert np.all(weights[pad] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert np.all(weights[~pad] > 0)
