"""End to end: `translate`, `evaluate`, `score`, `generate` on real pipeline exports, as a user runs them.

The translator is the tiny config with beam 3 and the whole test split; it is trained just long
enough to say something (12 epochs), and its BLEU is computed on characters (`tok:char`) so the
stage's score is not a trivial 0 -- the equality with the evaluate stage is then a real check.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.subprocess_run import ROOT, run_cli

pytestmark = pytest.mark.slow
NAME = "test_translate_tiny"
OVERRIDES = ["train.epochs=12", "evaluate.beam_size=3", "evaluate.max_test_examples=1000",
             "evaluate.bleu_tokenize=char"]


def run_cli_stdin(args, text, env=None):
    """run_cli with `text` on stdin."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=full_env, input=text,
                          capture_output=True, text=True, encoding="utf-8", timeout=300)


def _error_line(proc) -> str:
    """The one line a failing command prints (TF's own start-up noise aside)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def translator(tmp_path_factory, mlflow_server_url):
    root = tmp_path_factory.mktemp("use_translator")
    args = ["run", "configs/test_translate_tiny.yaml", "--set", f"work_dir={root}/work",
            "--set", f"export.export_dir={root}/exports"]
    for o in OVERRIDES:
        args += ["--set", o]
    proc = run_cli(args, env={"MLFLOW_TRACKING_URI": mlflow_server_url})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    evaluate = root / "work" / NAME / "evaluate"
    samples = [json.loads(line) for line in (evaluate / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    for key, name in (("source", "src.txt"), ("reference", "ref.txt")):
        (root / name).write_text("".join(s[key] + "\n" for s in samples), encoding="utf-8")
    manifest = json.loads((evaluate / "manifest.json").read_text())
    export = json.loads((root / "work" / NAME / "export" / "export.json").read_text())
    return {"root": root, "samples": samples, "manifest": manifest, "export": export,
            "parent": re.search(r"done in .*MLflow run ([0-9a-f]{32})", proc.stdout).group(1)}


def test_translate_1000_lines_in_order_equals_the_evaluate_stage(translator):
    root, samples = translator["root"], translator["samples"]
    assert len(samples) == 130  # the whole urd-eng test split
    assert sum(bool(s["hypothesis"]) for s in samples) > 100  # the model does say something
    # 1,000 lines: the test sources over and over, with a few blank lines that must stay blank.
    lines = [samples[i % len(samples)]["source"] if i % 97 else "" for i in range(1000)]
    expected = [samples[i % len(samples)]["hypothesis"] if i % 97 else "" for i in range(1000)]
    (root / "in1000.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    out = root / "out" / "hyp1000.txt"
    out.parent.mkdir()
    proc = run_cli(["translate", str(root / "exports" / NAME), "--input", str(root / "in1000.txt"),
                    "--output", str(out), "--batch-size", "48"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == ""
    assert out.read_text(encoding="utf-8").split("\n") == expected + [""]
    assert os.listdir(out.parent) == ["hyp1000.txt"]  # no temp file left


def test_evaluate_gives_the_evaluate_stage_bleu(translator):
    root, manifest = translator["root"], translator["manifest"]
    stage_bleu = manifest["metrics"]["test_bleu"]
    assert stage_bleu > 0
    # No --tokenize: the export records the evaluate.bleu_tokenize it was evaluated with (char here).
    metadata = json.loads((root / "exports" / NAME / "1" / "assets.extra" / "pipeline.json").read_text())
    assert (metadata["task"], metadata["bleu_tokenize"]) == ("translate", "char")
    proc = run_cli(["evaluate", str(root / "exports" / NAME / "1"), "--src", str(root / "src.txt"),
                    "--ref", str(root / "ref.txt"), "--json", "--output", str(root / "eval_hyp.txt")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["bleu"]["score"] == stage_bleu
    assert result["bleu"]["signature"] == manifest["info"]["bleu_signature"]
    assert (result["signature"], result["beam"], result["lines"]) == ("translate", 3, 130)
    hyps = (root / "eval_hyp.txt").read_text(encoding="utf-8").splitlines()
    assert hyps == [s["hypothesis"] for s in translator["samples"]]


def test_evaluate_multi_reference_all_metrics_and_greedy(translator):
    root = translator["root"]
    (root / "ref2.txt").write_text("".join(s["hypothesis"] + "\n" for s in translator["samples"]), encoding="utf-8")
    proc = run_cli(["evaluate", str(root / "exports" / NAME), "--src", str(root / "src.txt"),
                    "--ref", str(root / "ref.txt"), "--ref", str(root / "ref2.txt"), "--metrics", "bleu,chrf,ter",
                    "--beam", "1"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "translate_greedy (beam 1)" in out and "2 reference(s)" in out
    for metric in ("BLEU = ", "chrF2 = ", "TER = "):
        assert re.search(rf"^{metric}[\d.]+ .*\(nrefs:2\|", out, re.M), out


def test_stdin_to_stdout_and_beam_choices(translator):
    root, examples = translator["root"], translator["export"]["examples"]
    model = str(root / "exports" / NAME)
    text = "How are you?\n\nThank you.\n"
    proc = run_cli_stdin(["translate", model], text)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n") == [examples["How are you?"], "", examples["Thank you."], ""]
    proc = run_cli_stdin(["translate", model, "--beam", "2"], "")
    assert proc.returncode == 1
    assert "--beam 2: this export decodes with beam width 1 or 3 only" in _error_line(proc)


def test_registry_uri(translator, mlflow_server_url, tmp_path):
    env = {"MLFLOW_TRACKING_URI": mlflow_server_url}
    proc = run_cli(["register", translator["parent"], "--name", "use_cmds_tiny", "--alias", "use"], env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli_stdin(["translate", "models:/use_cmds_tiny@use", "--tracking-uri", mlflow_server_url,
                          "--cache-dir", str(tmp_path)], "Thank you.\n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == translator["export"]["examples"]["Thank you."] + "\n"
    proc = run_cli_stdin(["translate", "models:/use_cmds_tiny@nope", "--tracking-uri", mlflow_server_url,
                          "--cache-dir", str(tmp_path)], "")
    assert proc.returncode == 1 and "models:/use_cmds_tiny@nope" in _error_line(proc)


def test_bad_data_gets_one_line_and_exit_1(translator):
    root = translator["root"]
    model = str(root / "exports" / NAME)
    bad = root / "bad.txt"
    bad.write_bytes("Thank you.\nHello.\ncaf\xe9\n".encode("latin-1"))
    out = root / "kept.txt"
    out.write_text("previous\n")
    proc = run_cli(["translate", model, "--input", str(bad), "--output", str(out)])
    assert proc.returncode == 1
    assert f"{bad}: line 3 is not valid UTF-8" in _error_line(proc)
    assert out.read_text() == "previous\n"  # never half-written
    short = root / "short_ref.txt"
    short.write_text("one line\n", encoding="utf-8")
    proc = run_cli(["evaluate", model, "--src", str(root / "src.txt"), "--ref", str(short)])
    assert proc.returncode == 1
    assert f"--ref {short}: 1 lines, but --src {root / 'src.txt'} has 130" in _error_line(proc)
    proc = run_cli(["translate", str(root / "exports"), "--input", str(root / "src.txt")])
    assert proc.returncode == 1 and "no saved_model.pb and no numeric version folder" in _error_line(proc)
    proc = run_cli(["evaluate", model, "--src", str(root / "src.txt"), "--ref", str(short), "--metrics", "bleu,x"])
    assert proc.returncode == 2 and "unknown metric x; allowed: bleu, chrf, ter" in proc.stderr


# ------------------------------------------------------------------ language model

def test_score_uses_the_evaluate_stage_convention(tiny_lm, tmp_path):
    from pipeline.config import load_config
    from pipeline.tasks.lm import data

    root = tiny_lm[0]
    work = root / "work" / "test_lm_tiny"
    cfg = load_config("configs/test_lm_tiny.yaml", [])
    lines = data.lines(data.data_source(cfg.data), cfg.data, work / "prepare")["test"]
    path = tmp_path / "test.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    proc = run_cli(["score", str(root / "exports" / "test_lm_tiny"), "--input", str(path), "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    prepared = json.loads((work / "prepare" / "manifest.json").read_text())["metrics"]
    evaluated = json.loads((work / "evaluate" / "manifest.json").read_text())["metrics"]
    assert result["tokens"] == prepared["test_tokens"]  # every token of the stage's test stream
    assert result["unit"] == "word" and "bpc" not in result
    # The stage reads the stream in evaluate.batch_size rows (first token of each unpredicted);
    # the command scores chunks of lines: close, not identical (README: "score and the evaluate stage").
    assert result["perplexity"] == pytest.approx(evaluated["test_perplexity"], rel=0.05)


def test_generate_and_wrong_task(tiny_lm):
    model = str(tiny_lm[0] / "exports" / "test_lm_tiny" / "1")
    proc = run_cli(["generate", model, "--prompt", "ROMEO:", "--prompt", "ROMEO:", "--seed", "7",
                    "--max-tokens", "5", "--top-k", "10", "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = [o["text"] for o in json.loads(proc.stdout)["outputs"]]
    assert outputs[0] == outputs[1] and outputs[0].startswith("ROMEO:") and len(outputs[0]) > len("ROMEO:")
    proc = run_cli(["translate", model, "--input", str(Path(__file__))])
    assert proc.returncode == 1
    assert "is a language model export; `translate` needs a translator" in _error_line(proc)
