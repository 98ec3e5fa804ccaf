"""The same config trains the same model: what an MLflow comparison between two runs relies on."""
import json

import pytest

from tests.support.subprocess_run import run_cli


@pytest.mark.slow
def test_two_fresh_runs_of_one_config_learn_the_same_vocabulary_and_losses(tmp_path):
    """WordPiece on the tiny corpus has many equally frequent merges: before the vocabulary was
    learned deterministically, two fresh runs numbered pieces differently and trained apart."""
    runs = []
    for name in ("first", "second"):
        root = tmp_path / name
        proc = run_cli(["run", "configs/test_translate_tiny.yaml", "--stages", "prepare,train",
                        "--set", f"work_dir={root}/work", "--set", f"mlflow.tracking_uri=sqlite:///{root}/mlflow.db",
                        "--set", "text.tokenizer=wordpiece", "--set", "text.max_vocab_size=300"])
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        out = root / "work" / "test_translate_tiny"
        history = json.loads((out / "train" / "history.json").read_text())
        runs.append({"vocab": [(out / "prepare" / f).read_text() for f in ("source_vocab.json", "target_vocab.json")],
                     "loss": history["loss"], "val_loss": history["val_loss"]})
    assert runs[0]["vocab"] == runs[1]["vocab"]
    assert runs[0]["loss"] == runs[1]["loss"] and runs[0]["val_loss"] == runs[1]["val_loss"]
