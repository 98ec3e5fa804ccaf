"""Typed, frozen decoding settings: what the translate function and the export decode with.

The config builds one from `text` and `evaluate` once (`cfg.decode_spec()`), so the decode path
never reads config sections and a test builds it from plain values. No TensorFlow here: config
loading imports this module.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DecodeSpec:
    max_source_len: int  # source tokens kept, <eos> included (the training framing)
    max_decode_len: int  # output tokens per translation
    beam_size: int = 1  # 1 = greedy
    length_penalty: float = 0.6  # GNMT alpha
    reverse_source: bool = False  # feed the source reversed, as trained

    def with_beam(self, beam_size: int) -> DecodeSpec:
        """The same settings at another width (the val-BLEU callback and `translate_greedy` use 1)."""
        return replace(self, beam_size=beam_size)
