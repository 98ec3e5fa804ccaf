"""Training throughput on one device vs data-parallel replicas, through the real pipeline.

    .venv/bin/python bench/distribute_throughput.py                       # translator, 2 logical CPUs
    .venv/bin/python bench/distribute_throughput.py --config configs/lm_shakespeare_word.yaml \\
        --set train.steps_per_epoch=60 --set data.max_train_lines=4000

Each variant is `python -m pipeline run CONFIG --stages prepare,train` in a fresh process
(logical devices are a start-up setting) with its own work folder and MLflow store; the
train stage's measured `train_tokens_per_sec` (the last epoch's, after tracing) is read
from its manifest. Variants alternate (A B A B ...) so machine noise hits both alike, and
the ratio is printed. On a CPU the replicas share the same cores, so this measures the
overhead of the strategy more than a speed-up; on GPUs `--set train.devices=[...]`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_variant(config: str, sets: list[str], distribute: str, replicas: int, tmp: Path) -> float:
    work = tmp / f"{distribute}-{len(list(tmp.iterdir()))}"
    args = [sys.executable, "-m", "pipeline", "run", config, "--stages", "prepare,train",
            "--set", f"work_dir={work}", "--set", f"mlflow.tracking_uri=sqlite:///{work}.db",
            "--set", f"train.distribute={distribute}", "--set", f"train.logical_cpus={replicas}"]
    for s in sets:
        args += ["--set", s]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{distribute} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    name = next(p for p in work.iterdir() if p.is_dir())
    history = json.loads((name / "train" / "history.json").read_text())
    return history["tokens_per_sec"][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/translate_en_ur.yaml")
    parser.add_argument("--set", dest="sets", action="append", default=None)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sets = args.sets if args.sets is not None else ["train.epochs=2", "train.early_stopping_patience=null"]
    results: dict[str, list[float]] = {"default": [], "mirrored": []}
    with tempfile.TemporaryDirectory(prefix="bench-distribute-") as tmp:
        for _ in range(args.repeats):
            for kind in results:
                tps = run_variant(args.config, sets, kind, args.replicas, Path(tmp))
                results[kind].append(tps)
                print(f"{kind:<9} {tps:>10,.0f} tokens/s", flush=True)
    one, many = (statistics.median(results[k]) for k in ("default", "mirrored"))
    print(f"\n{'variant':<28} {'median tokens/s':>16}")
    print(f"{'one device':<28} {one:>16,.0f}")
    print(f"{f'mirrored, {args.replicas} logical CPUs':<28} {many:>16,.0f}")
    print(f"ratio mirrored / one device: {many / one:.2f}")


if __name__ == "__main__":
    main()
