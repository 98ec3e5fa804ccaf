"""Compare pipeline runs of an MLflow experiment: which run is best, and what differs.

Three layers, so each can be tested on its own:

- fetching (`find_experiment`, `search_pipeline_runs`, `validation_histories`): the only code
  that talks to MLflow, through `MlflowClient` (any tracking URI: sqlite, a remote server, ...);
- `build_comparison`: runs -> a `Comparison` (sorted, cut to the top N, the differing params);
- `render`: a `Comparison` -> text (table, csv, markdown, json).

Only parent (pipeline) runs are listed; stage runs are nested under them (`mlflow.parentRunId`).
Besides the flattened config params, a few recorded facts are compared like params: the code
version (`code.git_commit`, `code.git_dirty`, `code.fingerprint`) and the data
(`dataset`, `dataset.split_sizes`, `dataset.fingerprint`, which the tracker logs as params).
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Iterable

from mlflow.entities import Run, ViewType

PARENT_ONLY = "tags.`mlflow.parentRunId` IS NULL"
# Metrics chosen when --metric is not given: the first one any listed run has.
DEFAULT_METRICS = ("test_bleu", "test_perplexity", "val_perplexity", "val_loss")
LOWER_IS_BETTER = ("loss", "perplexity", "bpc", "error", "time_")
LOWER_IS_BETTER_SUFFIXES = ("_seconds", "_s")
HIGHER_IS_BETTER = ("bleu", "accuracy", "tokens_per_sec", "f1", "precision", "recall")
# Tags compared like params: tag -> column name (value transform in _tag_params).
CODE_TAGS = {"mlflow.source.git.commit": "code.git_commit", "pipeline.git_dirty": "code.git_dirty",
             "pipeline.code_fingerprint": "code.fingerprint"}
FORMATS = ("table", "csv", "markdown", "json")
VALIDATION_CURVES = ("val_loss", "val_perplexity", "val_bpc", "val_token_accuracy")


class CompareError(ValueError):
    """A comparison cannot be made; the message is meant for the user."""


@dataclass
class RunRecord:
    """What a comparison needs from one MLflow run."""

    run_id: str
    name: str
    status: str
    start_ms: int | None
    end_ms: int | None
    metrics: dict[str, float]
    params: dict[str, str]  # config params plus the tag-derived code.* entries

    @property
    def duration_s(self) -> float | None:
        if self.start_ms is None:
            return None
        end = self.end_ms if self.end_ms else (time.time() * 1000 if self.status == "RUNNING" else None)
        return None if end is None else max(0.0, (end - self.start_ms) / 1000)


@dataclass
class Comparison:
    experiment: str
    metrics: list[str]  # the first one sorts
    order: str  # "asc" | "desc"
    runs: list[RunRecord]  # sorted, cut to the top N
    differing: list[str]  # param keys whose values differ between the listed runs
    total: int  # runs that matched before --top
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ pure functions

def metric_direction(metric: str) -> str:
    """'desc' when higher is better (bleu, accuracy, tokens/s), 'asc' when lower is (loss, ...)."""
    name = metric.lower()
    if any(word in name for word in HIGHER_IS_BETTER):
        return "desc"
    if any(word in name for word in LOWER_IS_BETTER) or name.endswith(LOWER_IS_BETTER_SUFFIXES):
        return "asc"
    return "desc"


def _tag_params(tags: dict[str, str]) -> dict[str, str]:
    out = {}
    for tag, column in CODE_TAGS.items():
        if tag in tags:
            value = tags[tag]
            out[column] = value[:10] if tag == "mlflow.source.git.commit" else value
    return out


def run_record(run: Run) -> RunRecord:
    info, data = run.info, run.data
    return RunRecord(run_id=info.run_id, name=info.run_name or data.tags.get("mlflow.runName", ""),
                     status=info.status, start_ms=info.start_time, end_ms=info.end_time,
                     metrics=dict(data.metrics), params={**data.params, **_tag_params(data.tags)})


def is_parent_run(run: Run) -> bool:
    return "mlflow.parentRunId" not in run.data.tags


def sort_records(records: Iterable[RunRecord], metric: str, order: str) -> list[RunRecord]:
    """Best first by `metric`; runs without it (or with NaN) go last, newest first among ties."""
    records = sorted(records, key=lambda r: -(r.start_ms or 0))  # stable tie-break: newest first
    sign = -1.0 if order == "desc" else 1.0

    def key(r: RunRecord):
        value = r.metrics.get(metric)
        missing = value is None or math.isnan(value)
        return (missing, 0.0 if missing else sign * value)

    return sorted(records, key=key)


def differing_params(records: list[RunRecord], ignore: Iterable[str] = ()) -> list[str]:
    """Param keys whose value is not the same in every listed run (absent counts as a value)."""
    ignore = list(ignore)
    keys = sorted({k for r in records for k in r.params})
    out = []
    for key in keys:
        if any(fnmatchcase(key, pattern) for pattern in ignore):
            continue
        if len({r.params.get(key) for r in records}) > 1:
            out.append(key)
    return out


def available_metrics(records: Iterable[RunRecord]) -> list[str]:
    return sorted({k for r in records for k in r.metrics})


def build_comparison(experiment: str, records: list[RunRecord], metrics: list[str] | None = None,
                     order: str | None = None, top: int | None = None,
                     ignore_params: Iterable[str] = (), default_metrics: Iterable[str] = DEFAULT_METRICS,
                     ) -> Comparison:
    """Sort the runs by the first metric, keep the top N, and find the params that differ.

    Without `metrics`, the first of `default_metrics` the runs logged (the CLI passes every
    task's headline metrics)."""
    if not records:
        raise CompareError(f"no pipeline runs match in experiment {experiment!r}")
    present = available_metrics(records)
    notes = []
    if not metrics:
        default_metrics = tuple(default_metrics)
        default = next((m for m in default_metrics if m in present), None)
        if default is None:
            raise CompareError(f"none of the default metrics {', '.join(default_metrics)} was logged by "
                               f"these runs; choose one with --metric. Logged metrics: {', '.join(present)}")
        metrics = [default]
    missing = [m for m in metrics if m not in present]
    if missing:
        raise CompareError(f"no run in experiment {experiment!r} has metric(s) {', '.join(missing)}; "
                           f"logged metrics: {', '.join(present) or '(none)'}")
    if order not in (None, "asc", "desc"):
        raise CompareError(f"order must be 'asc' or 'desc', got {order!r}")
    order = order or metric_direction(metrics[0])
    ranked = sort_records(records, metrics[0], order)
    without = sum(1 for r in ranked if metrics[0] not in r.metrics)
    if without:
        notes.append(f"{without} run(s) without {metrics[0]} listed last")
    if top is not None:
        if top < 1:
            raise CompareError(f"--top must be >= 1, got {top}")
        ranked = ranked[:top]
    return Comparison(experiment=experiment, metrics=list(metrics), order=order, runs=ranked,
                      differing=differing_params(ranked, ignore_params), total=len(records), notes=notes)


def _fmt_time(ms: int | None) -> str:
    return "" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _fmt_number(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


BASE_COLUMNS = ("run", "run_id", "start", "duration", "status")


def headers(comparison: Comparison) -> list[str]:
    return [*BASE_COLUMNS, *comparison.metrics, *comparison.differing]


def rows(comparison: Comparison, *, raw: bool = False) -> list[list]:
    """One row per run, in `headers` order; `raw` keeps numbers unformatted (csv)."""
    out = []
    for r in comparison.runs:
        start = (time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.start_ms / 1000))
                 if raw and r.start_ms is not None else _fmt_time(r.start_ms))
        duration = (round(r.duration_s, 1) if r.duration_s is not None else "") if raw \
            else _fmt_duration(r.duration_s)
        metrics = [r.metrics.get(m, "") if raw else _fmt_number(r.metrics.get(m)) for m in comparison.metrics]
        params = [r.params.get(p, "") for p in comparison.differing]
        out.append([r.name, r.run_id, start, duration, r.status, *metrics, *params])
    return out


def _json_number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value  # JSON has no NaN/Infinity


def to_dict(comparison: Comparison) -> dict:
    return {
        "experiment": comparison.experiment,
        "sort": {"metric": comparison.metrics[0], "order": comparison.order},
        "metrics": comparison.metrics,
        "differing_params": comparison.differing,
        "matched_runs": comparison.total,
        "runs": [{
            "run_id": r.run_id, "name": r.name, "status": r.status,
            "start": _fmt_time(r.start_ms) or None, "start_ms": r.start_ms,
            "duration_s": None if r.duration_s is None else round(r.duration_s, 2),
            "metrics": {m: _json_number(r.metrics.get(m)) for m in comparison.metrics},
            "params": {p: r.params.get(p) for p in comparison.differing},
        } for r in comparison.runs],
    }


def render(comparison: Comparison, fmt: str = "table") -> str:
    """The comparison as text: an aligned table, CSV, a Markdown table or JSON."""
    if fmt == "json":
        return json.dumps(to_dict(comparison), indent=2, ensure_ascii=False)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(headers(comparison))
        writer.writerows(rows(comparison, raw=True))
        return buf.getvalue().rstrip("\n")
    from tabulate import tabulate

    # Metrics right-aligned, everything else left; cells are already formatted text.
    align = ["left"] * len(BASE_COLUMNS) + ["right"] * len(comparison.metrics) + ["left"] * len(comparison.differing)
    if fmt == "markdown":
        return tabulate(rows(comparison), headers=headers(comparison), tablefmt="pipe",
                        disable_numparse=True, colalign=align)
    if fmt == "table":
        arrow = "higher" if comparison.order == "desc" else "lower"
        title = (f"experiment {comparison.experiment!r}: {len(comparison.runs)} of {comparison.total} run(s), "
                 f"sorted by {comparison.metrics[0]} ({arrow} is better)")
        lines = [title, tabulate(rows(comparison), headers=headers(comparison), tablefmt="simple",
                                 disable_numparse=True, colalign=align)]
        if not comparison.differing:
            lines.append("(no params differ between the listed runs)" if len(comparison.runs) > 1
                         else "(one run: nothing to diff)")
        lines.extend(f"note: {n}" for n in comparison.notes)
        return "\n".join(lines)
    raise CompareError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")


def curve_labels(comparison: Comparison, max_params: int = 3) -> dict[str, str]:
    """run_id -> legend text: the short run id plus the config params that differ (values shortened);
    params set in every listed run (a changed setting) come before ones some runs lack (new keys)."""
    keys = [k for k in comparison.differing if not k.startswith(("code.", "dataset"))]
    keys.sort(key=lambda k: not all(k in r.params for r in comparison.runs))  # stable
    labels = {}
    for record in comparison.runs:
        parts = []
        for key in keys[:max_params]:
            value = str(record.params.get(key, "-"))
            parts.append(f"{key.split('.')[-1]}={value if len(value) <= 18 else value[:15] + '...'}")
        if len(keys) > max_params:
            parts.append("...")
        labels[record.run_id] = record.run_id[:8] + (f" ({', '.join(parts)})" if parts else f" {record.name}")
    return labels


# ------------------------------------------------------------------ fetching (MLflow)

def find_experiment(client, name: str | None):
    """The named experiment, or the only one with runs; a clear error lists the existing ones."""
    experiments = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    if name is not None:
        for exp in experiments:
            if exp.name == name:
                return exp
        raise CompareError(f"experiment {name!r} not found; existing experiments: "
                           + (", ".join(repr(e.name) for e in experiments) or "(none)"))
    with_runs = [e for e in experiments if client.search_runs([e.experiment_id], max_results=1)]
    if len(with_runs) == 1:
        return with_runs[0]
    raise CompareError("choose an experiment with --experiment; existing experiments: "
                       + (", ".join(repr(e.name) for e in with_runs) or "(none with runs)"))


def search_pipeline_runs(client, experiment_id: str, filter_string: str | None = None,
                         page_size: int = 1000, sweep: str | None = None) -> list[Run]:
    """All parent (pipeline) runs matching the filter, every page of them.

    `sweep`: instead, the trials of one sweep (pipeline runs nested under the sweep's run),
    given the sweep run's id or the sweep id (its `sweep.id` tag)."""
    scope = PARENT_ONLY
    if sweep:
        scope = sweep_scope(sweep)
    query = scope + (f" and {filter_string}" if filter_string and filter_string.strip() else "")
    runs, token = [], None
    while True:
        try:
            page = client.search_runs([experiment_id], filter_string=query, run_view_type=ViewType.ACTIVE_ONLY,
                                      max_results=page_size, page_token=token)
        except Exception as err:  # MlflowException (local) or RestException (server): a bad filter
            message = getattr(err, "message", None) or str(err)
            raise CompareError(f"MLflow rejected the search filter {filter_string or ''!r} (sent as {query!r}): "
                               f"{message}") from None
        runs.extend(page)
        token = page.token
        if not token:
            break
    if sweep:
        return [r for r in runs if "pipeline.stages" in r.data.tags]
    return [r for r in runs if is_parent_run(r)]


def sweep_scope(sweep: str) -> str:
    """The filter of a sweep's trial runs: by parent run id (32 hex digits), else by sweep id."""
    if "'" in sweep:
        raise CompareError(f"--sweep {sweep!r}: not a run id nor a sweep id")
    if len(sweep) == 32 and all(c in "0123456789abcdef" for c in sweep):
        return f"tags.`mlflow.parentRunId` = '{sweep}'"
    return f"tags.`sweep.id` = '{sweep}'"


def _train_run_id(client, experiment_id: str, parent_id: str) -> str | None:
    """The train stage run of a pipeline run; a skipped (cached) train points at the run that trained."""
    children = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`pipeline.stage` = 'train'",
        max_results=5)
    if not children:
        return None
    tags = children[0].data.tags
    if tags.get("skipped") == "true" and tags.get("cached_from_run"):
        return tags["cached_from_run"]
    return children[0].info.run_id


def validation_histories(client, experiment_id: str, records: list[RunRecord],
                         keys: Iterable[str] = VALIDATION_CURVES) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """run_id -> {metric: [(epoch, value), ...]} from each pipeline run's train stage run."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for record in records:
        train_id = _train_run_id(client, experiment_id, record.run_id)
        curves = {}
        if train_id:
            for key in keys:
                history = client.get_metric_history(train_id, key)
                latest: dict[int, tuple[int, float]] = {}  # step -> (timestamp, value); a resumed
                for m in history:                            # training may log a step twice
                    if m.step not in latest or m.timestamp >= latest[m.step][0]:
                        latest[m.step] = (m.timestamp, m.value)
                if latest:  # Keras epochs are logged as 0-based steps
                    curves[key] = [(step + 1, latest[step][1]) for step in sorted(latest)]
        out[record.run_id] = curves
    return out
