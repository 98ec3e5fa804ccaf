"""Small exports with random weights, made by the real task exporters (for the serving tests).

The fixture that uses it lives in tests/conftest.py: tests under tests/components do not import
`pipeline` (the tasks), they receive these exports as fixtures.
"""
from __future__ import annotations

from pathlib import Path

LM_LINES = ["First Citizen:", "Before we proceed any further, hear me speak.", "",
            "All:", "Speak, speak.", "", "First Citizen:", "You are all resolved rather to die than to famish?",
            "ROMEO:", "But, soft! what light through yonder window breaks?"]


def export_random_lm(base: Path, units: int = 16, layers: int = 2, seed: int = 7) -> Path:
    """A word-level LM with random weights, exported by the real exporter (warm-up file included)."""
    import keras

    from pipeline.tasks.lm.config import LMModelConfig
    from pipeline.tasks.lm.data import fit_lm_vocabulary
    from pipeline.tasks.lm.export import export_language_model
    from pipeline.tasks.lm.model import build_language_model

    vocab = fit_lm_vocabulary(LM_LINES, "whitespace")
    keras.utils.set_random_seed(seed)
    cfg = LMModelConfig(embedding_dim=max(8, units // 2), units=units, layers=layers, dropout=0.0,
                        tie_weights=False)
    model = build_language_model(cfg, len(vocab))
    return export_language_model(model, vocab, Path(base))
