"""End to end: the tiny translator config through every stage, logged to a real `mlflow server`."""
import json
import re

import mlflow
import pytest
import tensorflow as tf

from components.export.servable import graph_op_types
from components.text.vocab import EOS_ID, TextEncoder, Vocabulary
from pipeline.tasks.translate.stages import SOURCE_VOCAB
from tests.support.subprocess_run import run_cli, run_isolated_python

pytestmark = pytest.mark.slow
CONFIG = "configs/test_translate_tiny.yaml"
STAGES = ("prepare", "train", "evaluate", "export")


@pytest.fixture(scope="module")
def server(mlflow_server_url):
    return mlflow_server_url


@pytest.fixture(scope="module")
def first_run(tiny_translator):
    return tiny_translator


def test_prints_each_stage_run_id_bleu_and_translations(first_run):
    _, _, out = first_run
    for i, stage in enumerate(STAGES, 1):
        assert re.search(rf"\[{i}/4\] {stage}\s+done in \d+\.\d+s", out), out
    assert re.search(r"MLflow run [0-9a-f]{32}", out)
    assert re.search(r"test BLEU \d+\.\d+", out)
    assert "How are you?  ->" in out


def test_export_logs_the_mlflow_model_without_library_noise(first_run):
    """Logging the MLflow Model used to print an INFO line, a type-hint warning and a progress bar."""
    root, _, out = first_run
    console = out + (root / "stderr.txt").read_text()
    assert "MLflow Model: models:/" in out
    for noise in ("Validating input example", "Add type hints", "Downloading artifacts", "UserWarning"):
        assert noise not in console, (noise, console[console.find(noise) - 1500:console.find(noise) + 500])


def test_mlflow_server_has_parent_and_stage_runs(first_run, server):
    _, _, out = first_run
    run_id = re.search(r"done in .*MLflow run ([0-9a-f]{32})", out).group(1)
    client = mlflow.MlflowClient(tracking_uri=server)
    parent = client.get_run(run_id)
    assert parent.data.params["train.epochs"] == "2"
    assert parent.data.params["model.bridge"] == "top_to_first"
    for key in ("test_bleu", "val_loss", "val_perplexity", "test_perplexity", "test_token_accuracy"):
        assert key in parent.data.metrics, key
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    by_stage = {r.data.tags["pipeline.stage"]: r for r in children}
    assert sorted(by_stage) == sorted(STAGES)
    train = by_stage["train"].info.run_id
    assert len(client.get_metric_history(train, "loss")) == 2  # one point per epoch
    assert len(client.get_metric_history(train, "val_loss")) == 2

    def artifacts(run, path=None):
        return {a.path for a in client.list_artifacts(run.info.run_id, path)}

    assert "vocab/source_vocab.json" in artifacts(by_stage["prepare"], "vocab")
    assert "plots/training_curves.png" in artifacts(by_stage["train"], "plots")
    assert "evaluation/samples.jsonl" in artifacts(by_stage["evaluate"], "evaluation")
    assert "saved_model/saved_model.pb" in artifacts(by_stage["export"], "saved_model")
    for run in by_stage.values():
        assert "manifest/manifest.json" in artifacts(run, "manifest")


def test_savedmodel_loads_and_matches_in_process_decode_in_a_fresh_process(first_run, tmp_path):
    root, _, _ = first_run
    export = root / "exports" / "test_translate_tiny" / "1"
    expected = json.loads((root / "work" / "test_translate_tiny" / "evaluate" / "examples.json").read_text())
    expected = {source: e["hypothesis"] for source, e in expected.items()}  # + reference, split
    code = f"""
import json, sys, tensorflow as tf
m = tf.saved_model.load({str(export)!r})
out = m.signatures["serving_default"](inputs=tf.constant({list(expected)!r}))["outputs"].numpy()
print(json.dumps({{"outputs": [o.decode("utf-8") for o in out],
                  "project_imported": any(k.split(".")[0] in ("pipeline", "components") for k in sys.modules)}}))
"""
    proc = run_isolated_python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["project_imported"] is False
    assert result["outputs"] == list(expected.values())


def test_urdu_round_trips_byte_for_byte_through_the_savedmodel(first_run, tmp_path):
    root, _, _ = first_run
    export = root / "exports" / "test_translate_tiny" / "1"
    import os
    data = os.path.join(os.environ["PIPELINE_DATA_DIR"], "tatoeba", "urd-eng", "urd.txt")
    code = f"""
import json, tensorflow as tf
m = tf.saved_model.load({str(export)!r})
urdu = [l.split("\\t")[1] for l in open({data!r}, encoding="utf-8").read().splitlines()[:400]]
ids = m.signatures["tokenize_target"](inputs=tf.constant(urdu))["ids"]
back = m.signatures["detokenize_target"](ids=ids)["outputs"].numpy()
known = [i for i, row in enumerate(ids.numpy()) if 1 not in row]  # 1 = <unk>
print(json.dumps({{"known": len(known), "bad": [urdu[i] for i in known if back[i] != urdu[i].encode("utf-8")]}}))
"""
    proc = run_isolated_python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["known"] >= 50 and result["bad"] == []


def test_export_graph_has_no_cudnn_ops(first_run):
    root, _, _ = first_run
    ops = graph_op_types(root / "exports" / "test_translate_tiny" / "1")
    assert "StringSplitV2" in ops or "RegexReplace" in ops  # the tokenizer really is in the graph
    assert not [op for op in ops if op.startswith("CudnnRNN")]


def test_rerun_skips_everything_and_a_train_change_reruns_downstream_only(first_run, server):
    root, args, _ = first_run
    again = run_cli(args, env={"MLFLOW_TRACKING_URI": server})
    assert again.returncode == 0, again.stderr[-3000:]
    for i, stage in enumerate(STAGES, 1):
        assert re.search(rf"\[{i}/4\] {stage}\s+skipped: unchanged", again.stdout), again.stdout
    changed = run_cli(args + ["--set", "train.epochs=1"], env={"MLFLOW_TRACKING_URI": server})
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert re.search(r"\[1/4\] prepare\s+skipped", changed.stdout)
    for i, stage in enumerate(STAGES[1:], 2):
        assert re.search(rf"\[{i}/4\] {stage}\s+done in", changed.stdout), changed.stdout
    assert (root / "exports" / "test_translate_tiny" / "2" / "saved_model.pb").exists()


def test_attention_and_beam_search_variant_end_to_end(tmp_path, server):
    """Luong attention (scaled scores) + beam 3 + warmup/cosine + early stopping on val BLEU +
    residual connections + reversed source + bf16 gradient matmuls, through export."""
    args = ["run", CONFIG, "--set", f"work_dir={tmp_path}/work", "--set", f"export.export_dir={tmp_path}/exports",
            "--set", "model.attention=general", "--set", "model.attention_scaled=true",
            "--set", "evaluate.beam_size=3",
            "--set", "train.lr_schedule=warmup_cosine", "--set", "train.warmup_steps=5",
            "--set", "train.early_stopping_metric=val_bleu", "--set", "train.early_stopping_patience=3",
            "--set", "train.val_bleu_examples=20", "--set", "train.label_smoothing=0.1",
            "--set", "model.residual=true", "--set", "text.reverse_source=true",
            "--set", "model.backward_dtype=bfloat16"]
    proc = run_cli(args, env={"MLFLOW_TRACKING_URI": server})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    train = json.loads((tmp_path / "work" / "test_translate_tiny" / "train" / "manifest.json").read_text())
    assert "best_val_bleu" in train["metrics"]
    expected = json.loads((tmp_path / "work" / "test_translate_tiny" / "evaluate" / "examples.json").read_text())
    expected = {source: e["hypothesis"] for source, e in expected.items()}  # + reference, split
    export = tmp_path / "exports" / "test_translate_tiny" / "1"
    code = f"""
import json, tensorflow as tf
m = tf.saved_model.load({str(export)!r})
x = tf.constant({list(expected)!r})
beams = m.signatures["translate_beams"](inputs=x)
print(json.dumps({{"default": [o.decode() for o in m.signatures["serving_default"](inputs=x)["outputs"].numpy()],
                  "best": [o.decode() for o in beams["outputs"].numpy()],
                  "k": int(beams["beams"].shape[1]), "scores": beams["scores"].numpy().tolist(),
                  "source_ids": m.signatures["tokenize_source"](inputs=x[:1])["ids"].numpy()[0].tolist()}}))
"""
    result = run_isolated_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["default"] == out["best"] == list(expected.values())  # in-process beam == SavedModel beam
    assert out["k"] == 3
    assert all(row == sorted(row, reverse=True) for row in out["scores"])
    # The SavedModel frames the source as training did: reversed, then <eos>.
    vocab = Vocabulary.load(tmp_path / "work" / "test_translate_tiny" / "prepare" / SOURCE_VOCAB)
    forward = TextEncoder(vocab).encode(tf.constant(list(expected)[:1]))[0].numpy().tolist()
    assert len(forward) > 1
    assert out["source_ids"] == forward[::-1] + [EOS_ID]
