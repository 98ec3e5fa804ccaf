"""Export the translator as a self-contained SavedModel in TF Serving layout.

The serving graph holds the tokenizer tables, the encoder and the greedy decode loop,
built only from core TF ops, so stock `tf.saved_model.load` and TF Serving can run it.
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from components.export.checks import ExportCheckError
from components.export.servable import save_servable
from components.export.warmup import translator_warmup_requests
from components.models.cudnn import portable_lstms
from components.text.vocab import TextEncoder, Vocabulary
from pipeline.tasks.translate.decode_spec import DecodeSpec
from pipeline.tasks.translate.evaluation import translate_corpus
from pipeline.tasks.translate.model import translator_parts
from pipeline.tasks.translate.translate_fn import (
    encode_sources,
    translate_beams,
    translate_strings,
)

STRINGS = tf.TensorSpec([None], tf.string, name="inputs")
IDS = tf.TensorSpec([None, None], tf.int32, name="ids")


class TranslatorServing(tf.Module):
    def __init__(self, model, source_vocab: Vocabulary, target_vocab: Vocabulary, spec: DecodeSpec):
        super().__init__(name="translator_serving")
        self.model = model
        self.model_variables = list(model.variables)  # explicit, so the save tracks them all
        self.source_encoder = TextEncoder(source_vocab, name="source_encoder")
        self.target_encoder = TextEncoder(target_vocab, name="target_encoder")
        self._parts = translator_parts(model)
        self._spec = spec

    def _translate(self, inputs, spec: DecodeSpec):
        return translate_strings(inputs, self._parts, self.source_encoder, self.target_encoder, spec)

    @tf.function(input_signature=[STRINGS])
    def translate(self, inputs):
        """The configured decoding (evaluate.beam_size): what evaluate measured."""
        return {"outputs": self._translate(inputs, self._spec)}

    @tf.function(input_signature=[STRINGS])
    def translate_greedy(self, inputs):
        return {"outputs": self._translate(inputs, self._spec.with_beam(1))}

    @tf.function(input_signature=[STRINGS])
    def translate_beams(self, inputs):
        beams, scores = translate_beams(inputs, self._parts, self.source_encoder, self.target_encoder, self._spec)
        return {"outputs": beams[:, 0], "beams": beams, "scores": scores}

    @tf.function(input_signature=[STRINGS])
    def tokenize_target(self, inputs):
        return {"ids": self.target_encoder.encode(inputs).to_tensor(0)}

    @tf.function(input_signature=[IDS])
    def detokenize_target(self, ids):
        return {"outputs": self.target_encoder.decode(ids)}

    @tf.function(input_signature=[STRINGS])
    def tokenize_source(self, inputs):
        """The source ids as the model sees them (truncated, reversed if trained so, + <eos>)."""
        return {"ids": encode_sources(inputs, self.source_encoder, self._spec)}


def export_translator(model, source_vocab, target_vocab, spec: DecodeSpec, base: Path,
                      metadata: dict | None = None) -> Path:
    with portable_lstms(model):
        module = TranslatorServing(model, source_vocab, target_vocab, spec)
        translate = module.translate.get_concrete_function()
        signatures = {
            "serving_default": translate,
            "translate": translate,
            "translate_greedy": module.translate_greedy.get_concrete_function(),
            "translate_beams": module.translate_beams.get_concrete_function(),
            "tokenize_source": module.tokenize_source.get_concrete_function(),
            "tokenize_target": module.tokenize_target.get_concrete_function(),
            "detokenize_target": module.detokenize_target.get_concrete_function(),
        }
        return save_servable(module, signatures, base, warmup=translator_warmup_requests(), metadata=metadata)


def check_translator_reload(path: Path, translate_fn, examples: list[str]) -> list[str]:
    """Reload in this process and compare `serving_default` with `translate_fn`; returns the outputs."""
    expected = translate_corpus(translate_fn, examples, 64)
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = [s.decode("utf-8") for s in served(inputs=tf.constant(examples))["outputs"].numpy()]
    if got != expected:
        raise ExportCheckError(f"reloaded SavedModel disagrees with the in-process decode: {got} != {expected}")
    return got
