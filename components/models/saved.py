"""Loading a trained `.keras` model file (both tasks' custom layers registered first)."""
from __future__ import annotations

from pathlib import Path

import keras

MODEL_FILE = "model.keras"


def load_trained(train_dir: Path) -> keras.Model:
    import components.models.language_model  # noqa: F401  (registers OutputBias)
    import components.models.translator  # noqa: F401

    return keras.saving.load_model(Path(train_dir) / MODEL_FILE, compile=False)
