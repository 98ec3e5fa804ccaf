"""Loading a trained `.keras` model file.

The task's model module must be imported first: importing it registers its custom layers
(each task's stages import their own `model.py`)."""
from __future__ import annotations

from pathlib import Path

import keras

MODEL_FILE = "model.keras"


def load_trained(train_dir: Path) -> keras.Model:
    return keras.saving.load_model(Path(train_dir) / MODEL_FILE, compile=False)
