"""Validation BLEU after each epoch, so early stopping can pick the checkpoint that translates best."""
from __future__ import annotations

import keras

from pipeline.tasks.translate.evaluation import corpus_bleu, translate_corpus


class ValidationBleu(keras.callbacks.Callback):
    """Adds `val_bleu` (sacreBLEU, greedy decoding) to each epoch's logs.

    `make_translate_fn(model)` must return a strings -> strings tf.function; it is rebuilt
    on the live model, so it always decodes with the current weights.
    """

    def __init__(self, make_translate_fn, sources: list[str], references: list[str],
                 batch_size: int = 128, tokenize: str = "13a"):
        super().__init__()
        self.make_translate_fn = make_translate_fn
        self.sources, self.references = sources, references
        self.batch_size, self.tokenize = batch_size, tokenize
        self._fn = None

    def on_epoch_end(self, epoch, logs=None):
        if self._fn is None:
            self._fn = self.make_translate_fn(self.model)
        hypotheses = translate_corpus(self._fn, self.sources, self.batch_size)
        score, _ = corpus_bleu(hypotheses, self.references, self.tokenize)
        if logs is not None:
            logs["val_bleu"] = score
