"""An export (a TF Serving SavedModel version folder) as an MLflow `pyfunc` model.

Logged as MLflow "models from code": MLflow copies this file into the model's artifacts next to
the unchanged SavedModel (artifact `saved_model`), so `mlflow.pyfunc.load_model` and
`mlflow models serve` need only MLflow, TensorFlow and pandas, not this project. Hence the rule
for this file: standard library, numpy, pandas, TensorFlow and MLflow imports only, nothing from
`components` or `pipeline`. The same folder still serves through TF Serving and our server.

The task comes from the export's own metadata (assets.extra/pipeline.json, written by the
export stage), not from its signature names:

* translator (`task: translate`): a list of source strings (or a one-column DataFrame) -> the
  `translate` signature's outputs, one string per input, in order;
* language model (`task: lm`): texts -> a DataFrame with `log_likelihood`, `tokens` and
  `perplexity` per text (the `score` signature: each text from a zero state, every token plus
  each line end predicted). With `params={"mode": "generate"}` the inputs are prompts and the
  output is one continued text per prompt (`generate`, or `generate_seeded` when `seed` >= 0),
  with `max_tokens`, `temperature` and `top_k` as the CLI's `generate` takes them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

ARTIFACT = "saved_model"
METADATA_FILE = Path("assets.extra") / "pipeline.json"  # as components/savedmodel/layout.py
INPUT_COLUMNS = ("inputs", "text", "prompt")  # DataFrame columns read, in this order, else the first
LM_PARAMS = {"mode": "score", "max_tokens": 50, "temperature": 1.0, "top_k": 0, "seed": -1}


def read_task(saved_model_dir: str | Path) -> str:
    """`translate` or `lm`, from the export's metadata; an export without it is refused."""
    path = Path(saved_model_dir) / METADATA_FILE
    try:
        task = json.loads(path.read_text(encoding="utf-8")).get("task")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the export's metadata ({err}); re-export the model") from None
    if task not in ("translate", "lm"):
        raise ValueError(f"{path}: task {task!r} is not 'translate' or 'lm'")
    return task


def to_strings(model_input) -> list[str]:
    """The strings of a pyfunc input: a list/tuple/array of strings, a Series, a DataFrame column
    (`inputs`, `text` or `prompt`, else the first), or one string."""
    if isinstance(model_input, pd.DataFrame):
        column = next((c for c in INPUT_COLUMNS if c in model_input.columns), model_input.columns[0])
        values = model_input[column].tolist()
    elif isinstance(model_input, (pd.Series, np.ndarray)):
        values = list(np.asarray(model_input).reshape(-1))
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        values = list(model_input)
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


class SavedModelPyfunc(mlflow.pyfunc.PythonModel):
    """Loads the SavedModel with plain `tf.saved_model.load` and calls its signatures."""

    def load_context(self, context) -> None:
        import tensorflow as tf

        path = context.artifacts[ARTIFACT]
        self.task = read_task(path)
        self.module = tf.saved_model.load(path)

    def predict(self, context, model_input, params: dict | None = None):
        texts = to_strings(model_input)
        if self.task == "translate":
            return self._translate(texts)
        settings = {**LM_PARAMS, **(params or {})}
        if settings["mode"] == "generate":
            return self._generate(texts, settings)
        if settings["mode"] != "score":
            raise ValueError(f"params.mode {settings['mode']!r}: expected 'score' or 'generate'")
        return self._score(texts)

    def _call(self, name: str, **inputs):
        return self.module.signatures[name](**inputs)

    def _translate(self, texts: list[str]) -> list[str]:
        import tensorflow as tf

        if not texts:
            return []
        out = self._call("translate", inputs=tf.constant(texts, tf.string))["outputs"].numpy()
        return [t.decode("utf-8") for t in out]

    def _score(self, texts: list[str]) -> pd.DataFrame:
        import tensorflow as tf

        if not texts:
            return pd.DataFrame({"log_likelihood": [], "tokens": [], "perplexity": []})
        out = self._call("score", inputs=tf.constant(texts, tf.string))
        ll = out["log_likelihood"].numpy().astype("float64")
        tokens = out["tokens"].numpy().astype("int64")
        ppl = [math.exp(min(-a / t, 700.0)) if t else float("nan") for a, t in zip(ll, tokens)]
        return pd.DataFrame({"log_likelihood": ll, "tokens": tokens, "perplexity": ppl})

    def _generate(self, prompts: list[str], settings: dict) -> list[str]:
        import tensorflow as tf

        n = len(prompts)
        if not n:
            return []
        args = {"prompt": tf.constant(prompts, tf.string),
                "max_tokens": tf.fill([n], int(settings["max_tokens"])),
                "temperature": tf.fill([n], float(settings["temperature"])),
                "top_k": tf.fill([n], int(settings["top_k"]))}
        seed = int(settings["seed"])
        out = (self._call("generate", **args) if seed < 0
               else self._call("generate_seeded", **args, seed=tf.fill([n], seed)))
        return [t.decode("utf-8") for t in out["outputs"].numpy()]


mlflow.models.set_model(SavedModelPyfunc())
