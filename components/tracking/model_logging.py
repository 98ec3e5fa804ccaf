"""Log an export as an MLflow Model (a `LoggedModel`), so MLflow's own tools use it.

The export stage calls `log_export_model` after writing a version folder: MLflow then holds a
pyfunc model whose artifact is that folder, unchanged (components/tracking/mlflow_model.py is
copied in as the model's code), with a signature (strings in; translator: strings out, LM:
log-likelihood/tokens/perplexity out, or generated strings with params mode=generate), an input
example, exact pip requirements and the pipeline's metadata. `mlflow.search_logged_models`
finds it by the export run, and `register` registers it (components/tracking/registry.py).
"""
from __future__ import annotations

import json
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from components.savedmodel.layout import METADATA_FILE

MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
ARTIFACT = "saved_model"  # the key mlflow_model.py reads (its ARTIFACT)
# What loading the pyfunc imports (mlflow_model.py); pinned to the versions that exported it.
PYFUNC_PACKAGES = ("mlflow", "tensorflow", "numpy", "pandas")
TYPE_HINT_NOTICE = "Add type hints to the `predict` method"


def pip_requirements() -> list[str]:
    reqs = []
    for name in PYFUNC_PACKAGES:
        try:
            reqs.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            reqs.append(name)
    return reqs


def signature_for(task: str):
    """Strings in; the translator returns strings, the LM a score table (or strings to generate)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec(DataType.string)])
    if task == "translate":
        return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(DataType.string)]))
    outputs = Schema([ColSpec(DataType.double, "log_likelihood"), ColSpec(DataType.long, "tokens"),
                      ColSpec(DataType.double, "perplexity")])
    params = ParamSchema([ParamSpec("mode", DataType.string, "score"), ParamSpec("max_tokens", DataType.long, 50),
                          ParamSpec("temperature", DataType.double, 1.0), ParamSpec("top_k", DataType.long, 0),
                          ParamSpec("seed", DataType.long, -1)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def read_metadata(version_dir: Path) -> dict:
    return json.loads((Path(version_dir) / METADATA_FILE).read_text(encoding="utf-8"))


def log_export_model(tracking, version_dir: str | Path, input_example: list[str]) -> str | None:
    """Log `version_dir` as an MLflow Model on the stage's run; returns its models:/ URI.

    `tracking` is the stage's StageTracking; a stage without tracking (NoTracking, run_id None,
    e.g. a non-chief worker) logs nothing. The stage's run must be the active run (as during a
    stage), because `mlflow.pyfunc.log_model` logs to the active run."""
    if getattr(tracking, "run_id", None) is None:
        return None
    import mlflow

    active = mlflow.active_run()
    if active is None or active.info.run_id != tracking.run_id:
        raise RuntimeError(f"log_export_model needs stage run {tracking.run_id} to be the active MLflow run")
    version_dir = Path(version_dir).resolve()
    metadata = {**read_metadata(version_dir), "export_version": int(version_dir.name),
                "saved_model_artifact": ARTIFACT, "layout": "TF Serving SavedModel version folder"}
    task = metadata["task"]
    name = str(metadata.get("model_name") or "model")
    # MLflow asks for type hints on `predict` (they would replace the explicit signature below,
    # which is the contract) with a UserWarning that its own decorator forces to show once, past
    # any filter set outside: record the call's warnings and pass on all but that one.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        info = mlflow.pyfunc.log_model(
            name=name, python_model=str(MODEL_CODE), artifacts={ARTIFACT: str(version_dir)},
            signature=signature_for(task), input_example=list(input_example) or [""],
            pip_requirements=pip_requirements(), metadata=metadata,
            tags={"pipeline.task": task, "pipeline.export_version": str(version_dir.name)})
    for w in caught:
        if TYPE_HINT_NOTICE not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return info.model_uri
