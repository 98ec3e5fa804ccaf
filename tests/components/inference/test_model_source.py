"""MODEL resolution: version folders, base folders (newest version), registry URIs, bad paths."""
import pytest
import tensorflow as tf

from components.inference.errors import InferenceError
from components.inference.model_source import load_export, resolve_local, resolve_model


def _fake_version(base, name):
    d = base / name
    d.mkdir(parents=True)
    (d / "saved_model.pb").write_bytes(b"")
    return d


def test_base_folder_resolves_to_the_newest_numeric_version(tmp_path):
    for v in ("1", "2", "10"):
        _fake_version(tmp_path, v)
    _fake_version(tmp_path, ".tmp-export-123")
    (tmp_path / "11").mkdir()  # half-written: no saved_model.pb
    assert resolve_local(str(tmp_path)) == tmp_path / "10"
    assert resolve_local(str(tmp_path / "2")) == tmp_path / "2"


def test_bad_paths_say_what_to_pass(tmp_path):
    with pytest.raises(InferenceError, match=r"no such folder; pass an export folder \(exports/NAME\)"):
        resolve_local(str(tmp_path / "missing"))
    with pytest.raises(InferenceError, match="no saved_model.pb and no numeric version folder"):
        resolve_local(str(tmp_path))


def test_bad_registry_uri_and_missing_store(tmp_path):
    with pytest.raises(InferenceError, match="expected models:/NAME@ALIAS or models:/NAME/VERSION"):
        resolve_model("models:/only-a-name")
    with pytest.raises(InferenceError, match="no MLflow store at"):
        resolve_model("models:/m@champion", tracking_uri=f"sqlite:///{tmp_path}/none.db", cache_dir=str(tmp_path))


def test_corrupt_savedmodel_is_one_clear_error(tmp_path):
    _fake_version(tmp_path, "1").joinpath("saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(InferenceError, match=r"cannot load the SavedModel .*re-export it"):
        load_export(str(tmp_path))


def test_not_a_pipeline_export(tmp_path):
    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def f(self, x):
            return {"y": x}

    m = Other()
    tf.saved_model.save(m, str(tmp_path / "1"), signatures={"serving_default": m.f})
    exp = load_export(str(tmp_path))
    assert exp.task == "unknown"
    with pytest.raises(InferenceError, match=r"not a pipeline export \(signatures: serving_default\)"):
        exp.require("lm", "score")
