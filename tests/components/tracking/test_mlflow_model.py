"""The pieces of an export-as-MLflow-Model that need no trained model: input coercion, the task from
the export's metadata, the signatures, and finding the SavedModel inside a downloaded version."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from components.serving.mlflow_source import saved_model_in
from components.tracking.mlflow_model import read_task, to_strings
from components.tracking.model_logging import pip_requirements, signature_for


def test_inputs_become_strings_from_lists_frames_series_and_bytes():
    assert to_strings(["a", b"b"]) == ["a", "b"]
    assert to_strings("one") == ["one"]
    assert to_strings(pd.Series(["x", "y"])) == ["x", "y"]
    assert to_strings(np.array(["p", "q"])) == ["p", "q"]
    assert to_strings(pd.DataFrame({"other": [1, 2], "inputs": ["s", "t"]})) == ["s", "t"]
    assert to_strings(pd.DataFrame({0: ["u"]})) == ["u"]


def test_task_comes_from_the_export_metadata(tmp_path):
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / "assets.extra" / "pipeline.json").write_text(json.dumps({"task": "lm"}))
    assert read_task(tmp_path) == "lm"
    (tmp_path / "assets.extra" / "pipeline.json").write_text(json.dumps({"task": "classify"}))
    with pytest.raises(ValueError, match="classify"):
        read_task(tmp_path)
    with pytest.raises(ValueError, match="metadata"):
        read_task(tmp_path / "missing")


def test_signatures_are_strings_in():
    translator, lm = signature_for("translate"), signature_for("lm")
    assert translator.inputs.to_dict() == lm.inputs.to_dict() == [{"type": "string", "required": True}]
    assert translator.outputs.to_dict() == [{"type": "string", "required": True}]
    assert [c["name"] for c in lm.outputs.to_dict()] == ["log_likelihood", "tokens", "perplexity"]
    assert {p.name for p in lm.params} == {"mode", "max_tokens", "temperature", "top_k", "seed"}
    assert any(r.startswith("tensorflow==") for r in pip_requirements())


def test_saved_model_found_in_both_registry_layouts(tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "saved_model.pb").write_bytes(b"")
    assert saved_model_in(bare) == bare
    model = tmp_path / "mlflow_model"
    (model / "artifacts" / "1").mkdir(parents=True)
    (model / "artifacts" / "1" / "saved_model.pb").write_bytes(b"")
    (model / "MLmodel").write_text("flavors:\n  python_function:\n    artifacts:\n      saved_model:\n"
                                   "        path: artifacts/1\n        uri: /somewhere/1\n")
    assert saved_model_in(model) == model / "artifacts" / "1"
    (model / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    assert saved_model_in(model) is None
    assert saved_model_in(tmp_path / "empty") is None
