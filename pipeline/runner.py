"""The stage runner: fingerprints, skipping, atomic outputs, one progress line per stage.

A stage is a function of (its config sections, its upstream outputs, the data) -> an
output folder with a manifest. Its fingerprint hashes exactly those inputs plus the
project's code; a re-run skips a stage whose fingerprint is unchanged and says so.
Outputs are built in a temporary folder and renamed into place, and the manifest is the
last file written, so a killed run never leaves a folder that a later run trusts.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from components.runtime.locks import WorkLock
from components.tracking.params import flatten
from components.tracking.run_state import Pruned
from pipeline.interrupt import Interrupted

MANIFEST = "manifest.json"
CODE_DIRS = ("components", "pipeline")
_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stage:
    name: str
    fn: Callable[["StageContext"], dict]
    deps: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()  # config sections the stage reads (others don't re-run it)
    keys: tuple[str, ...] = ()  # single keys it reads from other sections, e.g. "evaluate.beam_size"
    data_fingerprint: Callable | None = None  # cfg -> str, for stages that read raw data

    def reads(self, key: str) -> bool:
        """Whether a flattened config key is part of this stage's fingerprint."""
        return key.split(".")[0] in self.sections or key in self.keys or key in ("name", "task", "seed")


@dataclass
class StageContext:
    cfg: object
    name: str
    out_dir: Path  # temporary folder; becomes the stage's output folder on success
    inputs: dict[str, Path]  # upstream stage name -> its (final) output folder
    manifests: dict[str, dict]  # upstream stage name -> its manifest
    tracking: object  # a StageTracking handle bound to this stage's MLflow run
    fingerprint: str
    extra_outputs: list[str] = field(default_factory=list)  # paths outside out_dir (exports)
    strategy: object = None  # the tf.distribute strategy made at program start (None: the default)
    interrupt: object = None  # a pipeline.interrupt.InterruptGuard (None: signals act as Python's default)
    force: bool = False  # --force: start over (training discards its checkpoints)
    callbacks: list = field(default_factory=list)  # extra Keras callbacks for training (a sweep's pruner)

    def log(self, message: str) -> None:
        print(f"    {message}", flush=True)

    def check_interrupt(self, epoch: int) -> None:
        """At a safe point of training: stop here (raise) if SIGINT/SIGTERM arrived."""
        if self.interrupt is not None:
            self.interrupt.check(f"epoch {epoch}")

    def training(self):
        """Around `model.fit`: a signal only sets a flag, and training stops at the next safe point."""
        return self.interrupt.deferred() if self.interrupt is not None else contextlib.nullcontext()

    def resume_options(self) -> dict:
        """Keyword arguments for `ResumableTraining`: --force, replaying history to MLflow, stopping."""
        return {"fresh": self.force, "on_resume": self.tracking.log_history,
                "check_interrupt": self.check_interrupt, "log": self.log}


class StageError(RuntimeError):
    pass


def code_fingerprint() -> str:
    """Hash of the project's Python sources: new code may produce different outputs."""
    h = hashlib.sha256()
    for top in CODE_DIRS:
        for path in sorted((_ROOT / top).rglob("*.py")):
            h.update(str(path.relative_to(_ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def stage_fingerprint(stage: Stage, cfg, upstream: dict[str, str], code: str) -> str:
    """Hash of what determines a stage's output: its config sections, upstream outputs, data, code."""
    sections = {key: value for key, value in flatten(cfg).items() if stage.reads(key)}
    payload = {"stage": stage.name, "config": sections, "upstream": upstream, "code": code}
    if stage.data_fingerprint is not None:
        payload["data"] = stage.data_fingerprint(cfg)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _is_current(manifest: dict | None, fingerprint: str) -> bool:
    if not manifest or manifest.get("fingerprint") != fingerprint or "output_id" not in manifest:
        return False
    return all(Path(p).exists() for p in manifest.get("extra_outputs", []))


def atomic_replace_dir(tmp: Path, final: Path) -> None:
    """Swap a finished folder into place; the old one is removed only after the rename."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_selection(stages: list[Stage], selected: list[str] | None) -> None:
    names = [s.name for s in stages]
    unknown = [s for s in selected or () if s not in names]
    if unknown:
        raise StageError(f"unknown stage(s) {unknown}; allowed: {', '.join(names)}")


def _needed(stages: list[Stage], selected: list[str] | None) -> set[str]:
    """The selected stages and everything upstream of them."""
    by_name = {s.name: s for s in stages}
    if not selected:
        return set(by_name)
    needed, todo = set(), list(selected)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(by_name[name].deps)
    return needed


def stale_stages(cfg, stages: list[Stage], selected: list[str] | None = None, force: bool = False) -> list[str]:
    """The needed stages that would run (not be skipped), computed from the manifests on disk.

    Empty: every needed stage is current, so a run would only copy old results (the CLI then
    opens no MLflow run). Stops at the first stage that would run: what follows it depends on
    that stage's new output id and is stale too."""
    needed = _needed(stages, selected)
    root = Path(cfg.work_dir) / cfg.name
    code = code_fingerprint()
    ids: dict[str, str] = {}
    for stage in stages:
        if stage.name not in needed:
            continue
        if any(d not in ids for d in stage.deps):
            return [stage.name]
        fp = stage_fingerprint(stage, cfg, {d: ids[d] for d in stage.deps}, code)
        existing = read_manifest(root / stage.name)
        wanted = selected is None or stage.name in selected
        if not _is_current(existing, fp) or (force and wanted):
            return [stage.name]
        ids[stage.name] = existing["output_id"]
    return []


def current_pipeline_run(cfg, stages: list[Stage]) -> str | None:
    """The MLflow pipeline run that last produced a stage output (its parent run has every metric)."""
    manifests = [m for m in (read_manifest(Path(cfg.work_dir) / cfg.name / s.name) for s in stages) if m]
    manifests.sort(key=lambda m: m.get("finished", ""))
    for manifest in reversed(manifests):
        if manifest.get("pipeline_run_id"):
            return manifest["pipeline_run_id"]
    return None


def run_stages(cfg, stages: list[Stage], tracker, selected: list[str] | None = None,
               force: bool = False, strategy=None, interrupt=None, callbacks: list | None = None,
               code: str | None = None, shared: dict[str, Path] | None = None) -> dict[str, dict]:
    """Run (or skip) each stage in order. Returns each stage's manifest.

    `interrupt`: a `pipeline.interrupt.InterruptGuard`; stages stop at safe points on SIGINT/SIGTERM
    and the swap of a finished output into place is never cut in half. `callbacks`: extra Keras
    callbacks the training stages append (they do not change fingerprints). `code`: the code
    fingerprint to use (a sweep computes it once: the code its process imported). `shared`: stage
    name -> the work folder holding that stage's output instead of this run's (a parallel sweep's
    workers share `prepare`); it is checked and built holding a lock there, so of two processes
    that need it, one builds it and the other waits, then skips it."""
    with contextlib.ExitStack() as held:
        return _run_stages(cfg, stages, tracker, selected, force, strategy, interrupt, callbacks, code,
                           shared or {}, held)


def _run_stages(cfg, stages, tracker, selected, force, strategy, interrupt, callbacks, code, shared,
                held: contextlib.ExitStack) -> dict[str, dict]:
    check_selection(stages, selected)
    needed = _needed(stages, selected)
    root = Path(cfg.work_dir) / cfg.name
    root.mkdir(parents=True, exist_ok=True)
    code = code or code_fingerprint()
    manifests: dict[str, dict] = {}
    folders = {s.name: Path(shared.get(s.name, root)) / s.name for s in stages}
    total = len(stages)
    for index, stage in enumerate(stages, 1):
        final = folders[stage.name]
        label = f"[{index}/{total}] {stage.name:<9}"
        if stage.name not in needed:
            print(f"{label} not selected", flush=True)
            continue
        held.close()  # the previous shared stage's lock
        if stage.name in shared:
            held.enter_context(WorkLock(final.parent, f".{stage.name}.lock").acquire(wait=True))
        # Upstream outputs are identified by their output id, not their fingerprint: a stage
        # that re-ran (say, training whose output was lost) makes new outputs downstream must use.
        fp = stage_fingerprint(stage, cfg, {d: manifests[d]["output_id"] for d in stage.deps}, code)
        existing = read_manifest(final)
        wanted = selected is None or stage.name in selected
        if _is_current(existing, fp) and not (force and wanted):
            print(f"{label} skipped: unchanged since {existing.get('finished', '?')} "
                  f"(fingerprint {fp[:10]})", flush=True)
            tracker.stage_skipped(stage.name, existing)
            manifests[stage.name] = existing
            continue
        if not wanted:
            raise StageError(
                f"stage {stage.name!r} is needed by the selected stages but its output in {final} is "
                f"{'missing' if existing is None else 'out of date'}; add it to --stages or omit --stages")
        print(f"{label} running ...", flush=True)
        if interrupt is not None:
            interrupt.check(f"stage {stage.name}")
        tmp = final.parent / f".{stage.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        start = time.time()
        try:
            with tracker.stage_run(stage.name, fp) as tracking:
                ctx = StageContext(cfg, stage.name, tmp, {d: folders[d] for d in stage.deps},
                                   {d: manifests[d] for d in stage.deps}, tracking, fp, strategy=strategy,
                                   interrupt=interrupt, force=force and wanted, callbacks=list(callbacks or ()))
                try:
                    result = stage.fn(ctx) or {}
                except Exception as err:
                    if interrupt is not None and interrupt.signum is not None:
                        # The signal's exception surfaced through code that wrapped it (e.g. a
                        # SystemError out of a C extension while TensorFlow starts): an interrupt,
                        # not a failure, for the console line, the MLflow status and the exit code.
                        raise Interrupted(interrupt.signum, interrupt.where) from err
                    raise
                seconds = time.time() - start
                manifest = {
                    "stage": stage.name, "fingerprint": fp, "output_id": uuid.uuid4().hex,
                    "seconds": round(seconds, 2),
                    "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "mlflow_run_id": tracking.run_id, "pipeline_run_id": tracker.parent_run_id,
                    "metrics": result.get("metrics", {}),
                    "outputs": sorted(p.name for p in tmp.iterdir()),
                    "extra_outputs": ctx.extra_outputs, "info": result.get("info", {}),
                }
                # The manifest is written last: its presence marks a complete output.
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
                tracker.stage_finished(stage.name, manifest, tmp / MANIFEST, seconds)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(err, Pruned):  # stopped on purpose: not a failure
                print(f"{label} {err} after {time.time() - start:.1f}s", flush=True)
            elif not isinstance(err, KeyboardInterrupt):  # an interrupt says so in one line, later
                print(f"{label} FAILED after {time.time() - start:.1f}s", file=sys.stderr, flush=True)
            raise
        with interrupt.deferred() if interrupt is not None else contextlib.nullcontext():
            atomic_replace_dir(tmp, final)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in list(manifest["metrics"].items())[:4]
                            if isinstance(v, (int, float)))
        print(f"{label} done in {seconds:.1f}s" + (f" ({summary})" if summary else ""), flush=True)
        manifests[stage.name] = manifest
    return manifests
