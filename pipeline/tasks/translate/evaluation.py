"""Translation metrics: sacreBLEU on detokenized output, token accuracy, perplexity."""
from __future__ import annotations

import math

import keras_hub
import sacrebleu
import tensorflow as tf

from components.text.vocab import PAD_ID
from components.training.losses import MaskedTokenAccuracy


def teacher_forced_metrics(model, ds: tf.data.Dataset) -> dict[str, float]:
    """Token-level loss / perplexity / accuracy accumulated over a whole split.

    keras-hub's Perplexity sums cross-entropy and token counts across batches, so this is
    exp(total CE / total real tokens), not a mean of per-batch perplexities.
    """
    perplexity = keras_hub.metrics.Perplexity(from_logits=True, mask_token_id=PAD_ID)
    accuracy = MaskedTokenAccuracy()

    # Batches differ in length (and the last in size): one trace with every dimension open,
    # instead of `reduce_retracing`'s several traces and TF's retracing warning on the console.
    x_spec, y_spec = tf.nest.map_structure(lambda s: tf.TensorSpec([None] * len(s.shape), s.dtype), ds.element_spec)

    @tf.function(input_signature=[x_spec, y_spec])
    def update(x, y):
        logits = model(x, training=False)
        perplexity.update_state(y, logits)
        accuracy.update_state(y, logits)

    for x, y in ds:
        update(x, y)
    ppl = float(perplexity.result().numpy())
    return {"loss": math.log(ppl) if ppl > 0 else float("nan"), "perplexity": ppl,
            "token_accuracy": float(accuracy.result().numpy()),
            "tokens": int(accuracy.total.numpy())}


def translate_corpus(translate_fn, sources: list[str], batch_size: int) -> list[str]:
    out: list[str] = []
    for i in range(0, len(sources), batch_size):
        batch = tf.constant(sources[i:i + batch_size])
        out.extend(s.decode("utf-8") for s in translate_fn(batch).numpy())
    return out


def corpus_bleu(hypotheses: list[str], references: list[str], tokenize: str = "13a"):
    """sacreBLEU on detokenized hypotheses against the raw references; returns (score, signature)."""
    bleu = sacrebleu.metrics.BLEU(tokenize=tokenize)
    result = bleu.corpus_score(hypotheses, [references])
    return result.score, str(bleu.get_signature())


def corpus_chrf(hypotheses: list[str], references: list[str]):
    """sacreBLEU chrF (character n-gram F-score): kinder than BLEU to a tiny corpus and to
    Urdu's rich morphology, where a near-miss word scores zero BLEU. Returns (score, signature)."""
    chrf = sacrebleu.metrics.CHRF()
    return chrf.corpus_score(hypotheses, [references]).score, str(chrf.get_signature())


def find_references(sources: list[str], splits: dict[str, list[tuple[str, str]]]) -> dict[str, dict]:
    """{source: {"reference": target, "split": name}} for the sources found in a split's
    (source, target) pairs, so printed examples can show what a human translator wrote."""
    found: dict[str, dict] = {}
    wanted = set(sources)
    for split, pairs in splits.items():
        for src, tgt in pairs:
            if src in wanted and src not in found:
                found[src] = {"reference": tgt, "split": split}
    return found
