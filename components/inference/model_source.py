"""MODEL arguments -> a loaded export: an export base folder, a version folder, or a registry URI.

* `exports/NAME`            -> its newest numeric version (what TF Serving would serve);
* `exports/NAME/3`          -> that version (any folder holding a saved_model.pb);
* `models:/NAME@ALIAS`, `models:/NAME/VERSION` -> downloaded from the MLflow Model Registry
  into the same cache `serve` uses (components/serving/mlflow_source.py).

What the export can do is read from the export itself, so exports made before these commands
existed work too: the task from its signatures, the translator's beam width from the shape of
`translate_beams`' output, and whether an LM is character level from how `score` counts tokens.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from components.savedmodel.layout import METADATA_FILE, is_saved_model_dir, newest_version

from .errors import InferenceError

TRANSLATE_SIGNATURES = ("translate", "translate_greedy", "translate_beams")
LM_SIGNATURES = ("generate", "generate_seeded", "score")
MODEL_FORMS = "an export folder (exports/NAME), a version folder (exports/NAME/3) or models:/NAME@ALIAS"


def resolve_local(spec: str) -> Path:
    """A folder with saved_model.pb, or the newest numeric version folder under it."""
    path = Path(spec)
    if not path.exists():
        raise InferenceError(f"MODEL {spec}: no such folder; pass {MODEL_FORMS}")
    if not path.is_dir():
        raise InferenceError(f"MODEL {spec}: not a folder; pass {MODEL_FORMS}")
    if is_saved_model_dir(path):
        return path
    newest = newest_version(path)
    if newest is None:
        raise InferenceError(f"MODEL {spec}: no saved_model.pb and no numeric version folder holding one; "
                             f"pass {MODEL_FORMS}")
    return newest


def resolve_registry(spec: str, tracking_uri: str | None, cache_dir: str | None) -> Path:
    """Download (or reuse from the cache) the registry version `spec` names."""
    from components.serving import mlflow_source
    from components.tracking.registry import RegistryError, parse_models_uri
    from components.tracking.uri import resolve_tracking_uri

    try:
        parse_models_uri(spec)
    except RegistryError as err:
        raise InferenceError(f"MODEL: {err}") from None
    uri = resolve_tracking_uri(tracking_uri)
    try:
        served = mlflow_source.fetch_model(spec, cache_dir or mlflow_source.DEFAULT_CACHE_DIR, uri)
    except mlflow_source.SourceError as err:
        raise InferenceError(f"MODEL {spec}: {err}") from None
    (version,) = served.version_policy.versions
    return Path(served.base_path) / str(version)


def resolve_model(spec: str, tracking_uri: str | None = None, cache_dir: str | None = None) -> Path:
    if spec.startswith("models:"):
        return resolve_registry(spec, tracking_uri, cache_dir)
    return resolve_local(spec)


@dataclass
class Export:
    """A loaded SavedModel and what it offers."""
    path: Path
    module: object = field(repr=False)

    @property
    def signatures(self) -> list[str]:
        return sorted(self.module.signatures.keys())

    @property
    def task(self) -> str:
        """The task the export stage recorded in pipeline.json; from the signatures for exports without it."""
        recorded = self.metadata.get("task")
        if isinstance(recorded, str) and recorded:
            return recorded
        names = set(self.signatures)
        if {"translate", "translate_greedy"} <= names:
            return "translate"
        if {"generate", "score"} <= names:
            return "lm"
        return "unknown"

    def signature(self, name: str):
        return self.module.signatures[name]

    @cached_property
    def metadata(self) -> dict:
        """assets.extra/pipeline.json, written by the export stage ({} for older exports)."""
        import json

        path = self.path / METADATA_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, ValueError):
            return {}

    @cached_property
    def beam_width(self) -> int:
        """The width `translate_beams` (and `translate`, the configured decoding) was exported with."""
        import tensorflow as tf

        if "translate_beams" not in self.signatures:
            return 1
        beams = self.signature("translate_beams")(inputs=tf.constant(["a"]))["beams"]
        return int(beams.shape[1])

    @cached_property
    def char_level(self) -> bool:
        """A character LM counts every character (spaces too) plus the line end; a word LM counts
        no token in a line of spaces, just its <eos>."""
        import tensorflow as tf

        probe = " " * 8
        tokens = int(self.signature("score")(inputs=tf.constant([probe]))["tokens"].numpy()[0])
        return tokens == len(probe) + 1

    def require(self, task: str, command: str) -> "Export":
        if self.task == task:
            return self
        what = {"translate": "a translator", "lm": "a language model"}
        other = {"translate": "translate / evaluate", "lm": "score / generate"}
        if self.task in what:
            raise InferenceError(f"MODEL {self.path} is {what[self.task]} export; `{command}` needs "
                                 f"{what[task]} (use {other[self.task]} with this model)")
        raise InferenceError(f"MODEL {self.path}: not a pipeline export (signatures: "
                             f"{', '.join(self.signatures) or 'none'}); `{command}` needs {what[task]} export")


def load_export(spec: str, tracking_uri: str | None = None, cache_dir: str | None = None) -> Export:
    """Resolve MODEL and load it with plain tf.saved_model.load."""
    path = resolve_model(spec, tracking_uri, cache_dir)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        module = tf.saved_model.load(str(path))
    except Exception as err:  # noqa: BLE001 -- TF raises many types for a corrupt SavedModel
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InferenceError(f"MODEL {path}: cannot load the SavedModel ({first}); re-export it") from None
    return Export(path=path, module=module)
