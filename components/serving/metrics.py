"""Thread-safe counters rendered in Prometheus text format.

Served at TF Serving's path ``/monitoring/prometheus/metrics``. Besides our own
counters we keep TF Serving's ``:tensorflow:serving:request_count`` so
dashboards built for TF Serving keep working.
"""

from __future__ import annotations

import threading
from collections import defaultdict

_HELP = {
    "requests_total": "Predict requests answered, by model, API (rest|grpc) and status code.",
    "model_calls_total": "Calls into a model signature (one per merged batch when batching).",
    "batched_requests_total": "Predict requests that shared a model call with other requests.",
    "batched_calls_total": "Model calls that merged two or more requests.",
    "batch_rows_total": "Rows (instances) passed to model calls.",
    ":tensorflow:serving:request_count": "TF Serving-compatible count of predict requests.",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))

    def inc(self, metric: str, labels: dict[str, str], value: float = 1) -> None:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            self._counters[metric][key] += value

    def get(self, metric: str, **labels: str) -> float:
        """Sum of a counter over all series matching ``labels`` (handy for tests)."""
        with self._lock:
            series = dict(self._counters.get(metric, {}))
        want = {(k, str(v)) for k, v in labels.items()}
        return sum(v for key, v in series.items() if want <= set(key))

    def request(self, model: str, api: str, code: str) -> None:
        self.inc("requests_total", {"model": model, "api": api, "code": code})
        self.inc(":tensorflow:serving:request_count", {"model_name": model, "status": code})

    def model_call(self, model: str, version: int, signature: str, requests: int, rows: int) -> None:
        labels = {"model": model, "version": str(version), "signature": signature}
        self.inc("model_calls_total", labels)
        self.inc("batch_rows_total", labels, rows)
        if requests > 1:
            self.inc("batched_calls_total", labels)
            self.inc("batched_requests_total", labels, requests)

    def render(self) -> str:
        with self._lock:
            snapshot = {m: dict(s) for m, s in self._counters.items()}
        lines = []
        for metric in sorted(set(_HELP) | set(snapshot)):
            lines.append(f"# HELP {metric} {_HELP.get(metric, metric)}")
            lines.append(f"# TYPE {metric} counter")
            for key, value in sorted(snapshot.get(metric, {}).items()):
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                number = int(value) if float(value).is_integer() else value
                lines.append(f"{metric}{{{labels}}} {number}")
        return "\n".join(lines) + "\n"
