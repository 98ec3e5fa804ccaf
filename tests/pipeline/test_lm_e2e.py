"""The language-model task: config schema (fast) and the tiny config through every stage (slow)."""
import json
import re

import mlflow
import pytest

from pipeline.config import ConfigError, load_config
from pipeline.tasks.lm.config import LMConfig
from tests.support.subprocess_run import run_cli, run_isolated_python

CONFIG = "configs/test_lm_tiny.yaml"
STAGES = ("prepare", "train", "evaluate", "export")


# ------------------------------------------------------------------ config (fast)

@pytest.mark.parametrize("path", ["configs/lm_shakespeare_word.yaml", "configs/lm_shakespeare_char.yaml", CONFIG])
def test_lm_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, LMConfig) and cfg.task == "lm"


def test_word_config_is_the_classic_setting():
    cfg = load_config("configs/lm_shakespeare_word.yaml")
    m, t = cfg.model, cfg.train
    assert (m.layers, m.units, m.embedding_dim, m.dropout) == (2, 200, 200, 0.2)
    assert (t.batch_size, t.seq_len, t.epochs, t.optimizer, t.learning_rate, t.clipnorm) == \
        (20, 35, 6, "sgd", 20.0, 0.25)
    assert (t.lr_decay_factor, t.lr_decay_patience, cfg.evaluate.batch_size) == (0.25, 0, 10)
    assert cfg.text.tokenizer == "whitespace" and cfg.text.min_count == 1


def test_lm_config_errors_name_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ntask: lm\nmodel:\n  unit: 3\ntext:\n  tokenizer: bpe\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "model.unit" in msg and "units" in msg and "tie_weights" in msg
    assert "text.tokenizer" in msg and "'whitespace'" in msg and "'char'" in msg


# ------------------------------------------------------------------ end to end (slow)

@pytest.fixture(scope="module")
def first_run(tiny_lm):
    return tiny_lm


@pytest.mark.slow
def test_prints_stages_perplexity_and_a_sample(first_run):
    _, _, _, out = first_run
    for i, stage in enumerate(STAGES, 1):
        assert re.search(rf"\[{i}/4\] {stage}\s+done in \d+\.\d+s", out), out
    assert re.search(r"test perplexity \d+\.\d+ \| val perplexity \d+\.\d+ \| train [\d,]+ tokens/s", out), out
    assert "sample:" in out and "ROMEO:" in out


@pytest.mark.slow
def test_mlflow_has_per_epoch_curves_final_metrics_and_artifacts(first_run):
    _, _, uri, out = first_run
    run_id = re.search(r"done in .*MLflow run ([0-9a-f]{32})", out).group(1)
    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = client.get_run(run_id)
    assert parent.data.params["task"] == "lm" and parent.data.params["model.tie_weights"] == "True"
    for key in ("test_perplexity", "val_perplexity", "best_val_perplexity", "train_tokens_per_sec"):
        assert key in parent.data.metrics, key
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    by_stage = {r.data.tags["pipeline.stage"]: r for r in children}
    assert sorted(by_stage) == sorted(STAGES)
    train = by_stage["train"].info.run_id
    for key in ("perplexity", "val_perplexity", "tokens_per_sec", "learning_rate"):
        assert len(client.get_metric_history(train, key)) == 2, key  # one point per epoch

    def artifacts(run, path):
        return {a.path for a in client.list_artifacts(run.info.run_id, path)}

    assert "vocab/vocab.json" in artifacts(by_stage["prepare"], "vocab")
    assert "plots/training_curves.png" in artifacts(by_stage["train"], "plots")
    assert {"evaluation/samples.json", "evaluation/samples.txt"} <= artifacts(by_stage["evaluate"], "evaluation")
    assert "saved_model/saved_model.pb" in artifacts(by_stage["export"], "saved_model")


@pytest.mark.slow
def test_exported_model_generates_and_scores_in_a_fresh_process(first_run, tmp_path):
    root, _, _, _ = first_run
    export = root / "exports" / "test_lm_tiny" / "1"
    info = json.loads((root / "work" / "test_lm_tiny" / "export" / "export.json").read_text())
    prompts = list(info["greedy_examples"])
    code = f"""
import json, tensorflow as tf
m = tf.saved_model.load({str(export)!r})
n = {len(prompts)}
out = m.signatures["generate"](prompt=tf.constant({prompts!r}), max_tokens=tf.fill([n], 12),
                               temperature=tf.zeros([n]), top_k=tf.zeros([n], tf.int32))["outputs"]
s = m.signatures["score"](inputs=tf.constant({prompts!r}))
print(json.dumps({{"outputs": [o.decode("utf-8") for o in out.numpy()],
                  "ll": s["log_likelihood"].numpy().tolist(), "ppl": s["perplexity"].numpy().tolist()}}))
"""
    proc = run_isolated_python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outputs"] == list(info["greedy_examples"].values())
    assert result["ll"] == pytest.approx(list(info["prompt_log_likelihood"].values()), rel=1e-4, abs=1e-3)
    assert all(p > 1 for p in result["ppl"])


@pytest.mark.slow
def test_rerun_skips_and_an_evaluate_change_reruns_only_evaluate_and_export(first_run):
    root, args, _, _ = first_run
    again = run_cli(args + ["--set", "evaluate.sample_tokens=5"])
    assert again.returncode == 0, again.stderr[-3000:]
    for i, stage in enumerate(("prepare", "train"), 1):
        assert re.search(rf"\[{i}/4\] {stage}\s+skipped: unchanged", again.stdout), again.stdout
    assert re.search(r"\[3/4\] evaluate\s+done in", again.stdout)
    assert re.search(r"\[4/4\] export\s+done in", again.stdout)  # export checks the prompts' greedy output
