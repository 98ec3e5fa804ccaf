"""End to end through `python -m pipeline run`: the tiny models on the user's own data.

Fixtures are written by the tests: parallel files, a TSV, PTB-style text files and a
TFDS data dir holding a prepared dataset the CLI process has no code for (found by
`tfds.builder(name, data_dir=...)` from its files, as a prepared catalog dataset is).
"""
import json
import re
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.components.data import tiny_catalog
from tests.support.subprocess_run import ROOT, run_cli

pytestmark = pytest.mark.slow

FAST_TRANSLATE = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=3",
                  "--set", "evaluate.max_test_examples=8",
                  "--set", "evaluate.train_sample_size=8", "--set", "evaluate.examples=[the cat]"]


def config(tmp_path: Path, base: str, name: str, data: dict) -> Path:
    """The tiny test config with its data section replaced, written where the test runs."""
    raw = yaml.safe_load((ROOT / "configs" / base).read_text())
    raw.update(name=name, data=data, work_dir=str(tmp_path / "work"),
               export={"export_dir": str(tmp_path / "exports")},
               mlflow={"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db"})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def write_lines(path: Path, lines) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def run(cfg: Path, *extra) -> str:
    proc = run_cli(["run", str(cfg), *extra])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def stage_states(out: str) -> dict[str, str]:
    return dict(re.findall(r"\[\d/\d\] (\w+)\s+(done|skipped)", out))


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_parallel")
    rows = tiny_catalog.pairs(240, 5)
    data = {"corpus": "files", "source_lang": "en", "target_lang": "de",
            "train": {"source": write_lines(root / "train.en", [en for en, _ in rows]),
                      "target": write_lines(root / "train.de", [de for _, de in rows])}}
    return root, data


def test_translator_from_plain_files_trains_skips_and_reacts_to_a_changed_byte(parallel):
    root, data = parallel
    cfg = config(root, "test_translate_tiny.yaml", "own_files", data)
    first = run(cfg, *FAST_TRANSLATE)
    assert stage_states(first) == {s: "done" for s in ("prepare", "train", "evaluate", "export")}, first
    assert "files:train.en+train.de: train" in first
    assert (root / "exports" / "own_files" / "1" / "saved_model.pb").is_file()

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
    exp = client.get_experiment_by_name("own_files")
    prepare = client.search_runs([exp.experiment_id], "tags.`pipeline.stage` = 'prepare'")[0]
    assert prepare.data.params["dataset"] == "files:train.en+train.de"
    inputs = {d.dataset.name: json.loads(d.dataset.source) for d in prepare.inputs.dataset_inputs}
    assert sorted(inputs) == [f"files:train.en+train.de:{s}" for s in ("test", "train", "validation")]
    assert all(src["uri"].endswith("train.en") for src in inputs.values())  # test/validation hashed off train

    again = run(cfg, *FAST_TRANSLATE)
    assert set(stage_states(again).values()) == {"skipped"}, again

    path = root / "train.de"
    path.write_bytes(path.read_bytes().replace(b"katze", b"Katze", 1))
    changed = run(cfg, "--stages", "prepare", *FAST_TRANSLATE)  # downstream re-runs follow (test_runner)
    assert stage_states(changed) == {"prepare": "done"}, changed


def test_translator_from_a_tsv_with_given_validation(tmp_path):
    rows, held_out = tiny_catalog.pairs(200, 6), tiny_catalog.pairs(20, 7)
    (tmp_path / "pairs.tsv").write_text("".join(f"{de}\t{en}\tCC-BY\n" for en, de in rows), encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("".join(f"{de}\t{en}\n" for en, de in held_out), encoding="utf-8")
    spec = {"source_column": 1, "target_column": 0}
    cfg = config(tmp_path, "test_translate_tiny.yaml", "own_tsv", {
        "corpus": "files", "source_lang": "en", "target_lang": "de",
        "train": {"tsv": str(tmp_path / "pairs.tsv"), **spec},
        "validation": {"tsv": str(tmp_path / "dev.tsv"), **spec}})
    out = run(cfg, "--stages", "prepare,train", *FAST_TRANSLATE)
    assert stage_states(out) == {"prepare": "done", "train": "done"}, out
    sizes = json.loads((tmp_path / "work" / "own_tsv" / "prepare" / "data_info.json").read_text())["split_sizes"]
    assert sizes["validation"] == 20 and sizes["train"] + sizes["test"] == 200, sizes  # dev.tsv as is


def classic_count(path: str) -> int:
    """Tokens as the classic PTB data.py counts them: line.split() + ['<eos>'] per line."""
    with open(path, encoding="utf8") as f:
        return sum(len(line.split()) + 1 for line in f)


def test_lm_from_ptb_style_train_valid_test_files(tmp_path):
    words = tiny_catalog.EN + tiny_catalog.DE + ["<unk>", "N"]
    text = [" ".join(words[(i * 7 + k * 5) % len(words)] for k in range(3 + i % 6)) for i in range(400)]
    data = {"corpus": "files",
            "train": write_lines(tmp_path / "ptb.train.txt", [" " + t + " " for t in text[:320]] + [""]),
            "validation": write_lines(tmp_path / "ptb.valid.txt", text[320:360]),
            "test": write_lines(tmp_path / "ptb.test.txt", text[360:])}
    cfg = config(tmp_path, "test_lm_tiny.yaml", "own_ptb", data)
    out = run(cfg, "--stages", "prepare,train,evaluate", "--set", "train.epochs=1", "--set", "train.steps_per_epoch=4",
              "--set", "evaluate.sample_tokens=4", "--set", "evaluate.prompts=[the cat]")
    assert stage_states(out) == {s: "done" for s in ("prepare", "train", "evaluate")}, out
    assert re.search(r"test perplexity \d+\.\d+", out), out
    assert "files:ptb.train.txt: lines train 321, validation 40, test 40" in out, out  # the blank line counts
    counts = [f"{classic_count(data[s]):,}" for s in ("train", "validation", "test")]
    assert f"train {counts[0]}, validation {counts[1]}, test {counts[2]};" in out, out


def test_translator_from_a_prepared_tfds_dataset_in_a_local_data_dir(tmp_path):
    tfds_dir = tmp_path / "tfds"
    tiny_catalog.prepare(tfds_dir)  # in this process; the CLI process only has the files
    cfg = config(tmp_path, "test_translate_tiny.yaml", "own_tfds", {
        "corpus": "tfds", "name": tiny_catalog.TRANSLATE, "tfds_data_dir": str(tfds_dir),
        "source_lang": "en", "target_lang": "de", "splits": {"test": "validation[:10]"}})
    out = run(cfg, "--stages", "prepare,train", *FAST_TRANSLATE)
    assert f"tfds:{tiny_catalog.TRANSLATE}: train 160, validation 20, test 10" in out, out


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.write_text(d.read_text() + "extra\n"),
     r"train\.de:241: no matching line in .*train\.en \(240 lines vs 241\)"),
    (lambda d: d.write_text("\n" + d.read_text()), r"train\.de:1: empty line"),
])  # invalid UTF-8: the LM case below; every case at unit level in tests/components/data
def test_bad_parallel_data_is_one_error_line_exit_1_and_nothing_kept(tmp_path, parallel, breakage, message):
    _, data = parallel
    target = tmp_path / "train.de"
    target.write_bytes(Path(data["train"]["target"]).read_bytes())
    breakage(target)
    data = {**data, "train": {**data["train"], "target": str(target)}}
    proc = run_cli(["run", str(config(tmp_path, "test_translate_tiny.yaml", "bad", data)), "--stages", "prepare"])
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(message, errors[0]), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "work" / "bad" / "prepare").exists()
    assert not list((tmp_path / "work").rglob("dataset_info.json"))


def test_bad_lm_file_and_unknown_tfds_name_exit_1(tmp_path):
    bad = tmp_path / "train.txt"
    bad.write_bytes(b"fine line\n\xff\xfe broken\n")
    for name, data, message in (
            ("bad_lm", {"corpus": "files", "train": str(bad)}, rf"^error: {bad}:2: invalid UTF-8"),
            ("bad_tfds", {"corpus": "tfds", "name": "no_such_dataset_xyz", "tfds_data_dir": str(tmp_path / "tfds")},
             r"^error: data\.name: .*no_such_dataset_xyz")):
        proc = run_cli(["run", str(config(tmp_path, "test_lm_tiny.yaml", name, data)), "--stages", "prepare"])
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert re.search(message, proc.stderr, re.M), proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
