"""Export the translator as a self-contained SavedModel in TF Serving layout.

The serving graph holds the tokenizer tables, the encoder and the greedy decode loop,
built only from core TF ops, so stock `tf.saved_model.load` and TF Serving can run it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import tensorflow as tf

from components.export.warmup import translator_warmup_requests, write_warmup_requests
from components.models.cudnn import portable_lstms
from components.models.translate_fn import encode_sources, translate_beams, translate_strings
from components.models.translator import translator_parts
from components.savedmodel.layout import METADATA_FILE, next_version
from components.text.vocab import TextEncoder, Vocabulary

STRINGS = tf.TensorSpec([None], tf.string, name="inputs")
IDS = tf.TensorSpec([None, None], tf.int32, name="ids")


class TranslatorServing(tf.Module):
    def __init__(self, model, source_vocab: Vocabulary, target_vocab: Vocabulary,
                 max_source_len: int, max_decode_len: int, beam_size: int = 1, length_penalty: float = 0.6,
                 reverse_source: bool = False):
        super().__init__(name="translator_serving")
        self.model = model
        self.model_variables = list(model.variables)  # explicit, so the save tracks them all
        self.source_encoder = TextEncoder(source_vocab, name="source_encoder")
        self.target_encoder = TextEncoder(target_vocab, name="target_encoder")
        self._parts = translator_parts(model)
        self._max_source_len = max_source_len
        self._max_decode_len = max_decode_len
        self._beam_size = beam_size
        self._length_penalty = length_penalty
        self._reverse_source = reverse_source

    def _translate(self, inputs, beam_size):
        return translate_strings(inputs, self._parts, self.source_encoder, self.target_encoder,
                                 self._max_source_len, self._max_decode_len, beam_size, self._length_penalty,
                                 self._reverse_source)

    @tf.function(input_signature=[STRINGS])
    def translate(self, inputs):
        """The configured decoding (evaluate.beam_size): what evaluate measured."""
        return {"outputs": self._translate(inputs, self._beam_size)}

    @tf.function(input_signature=[STRINGS])
    def translate_greedy(self, inputs):
        return {"outputs": self._translate(inputs, 1)}

    @tf.function(input_signature=[STRINGS])
    def translate_beams(self, inputs):
        beams, scores = translate_beams(inputs, self._parts, self.source_encoder, self.target_encoder,
                                        self._max_source_len, self._max_decode_len, self._beam_size,
                                        self._length_penalty, self._reverse_source)
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
        return {"ids": encode_sources(inputs, self.source_encoder, self._max_source_len, self._reverse_source)}


def save_servable(module: tf.Module, signatures: dict, base: Path, warmup: list | None = None,
                  metadata: dict | None = None) -> Path:
    """Write to a hidden temp folder, then rename to the next version (never half-visible).

    ``warmup``: requests for assets.extra/tf_serving_warmup_requests; ``metadata``: what the
    pipeline knew at export (config name, languages, BLEU tokenizer), as assets.extra/pipeline.json
    for the `translate`/`evaluate` commands. Both are written before the rename so a server never
    sees the version without them; TF Serving ignores other files in assets.extra."""
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        if warmup:
            write_warmup_requests(tmp, warmup)
        if metadata:
            (tmp / METADATA_FILE).parent.mkdir(parents=True, exist_ok=True)
            (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
        version = next_version(base)
        final = base / str(version)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def export_translator(model, source_vocab, target_vocab, max_source_len, max_decode_len,
                      base: Path, beam_size: int = 1, length_penalty: float = 0.6,
                      reverse_source: bool = False, metadata: dict | None = None) -> Path:
    with portable_lstms(model):
        module = TranslatorServing(model, source_vocab, target_vocab, max_source_len, max_decode_len,
                                   beam_size, length_penalty, reverse_source)
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


def graph_op_types(saved_model_dir: Path) -> set[str]:
    """All op types in the SavedModel's graph and function library (for the CudnnRNN check)."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops = set()
    for mg in sm.meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
    return ops
