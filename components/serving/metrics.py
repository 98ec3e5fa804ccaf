"""Prometheus metrics on ``prometheus_client``: TF Serving's names, our counters, process metrics.

Served at TF Serving's path ``/monitoring/prometheus/metrics`` (or the path of a
``--monitoring_config_file``). Dashboards written for TF Serving keep working:

* ``:tensorflow:serving:request_count{model_name,status}`` - TF Serving's counter, exported
  under its exact name (prometheus_client would append ``_total`` to a Counter, so this one
  comes from a small collector and is typed ``untyped``);
* ``:tensorflow:serving:request_latency{model_name,API,entrypoint}`` and
  ``:tensorflow:serving:runtime_latency{model_name,API,runtime}`` - histograms in microseconds
  with TF Serving's buckets (10 * 1.8^i, 33 of them);

plus our own ``requests_total{model,api,code}``, ``request_latency_seconds{model,api,code}``
(per status), model-call/batching counters, and prometheus_client's process metrics
(``process_resident_memory_bytes``, CPU seconds, open fds) and Python GC metrics.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric

# TF Serving: monitoring::Buckets::Exponential(10, 1.8, 33), in microseconds (~20 minutes).
TF_SERVING_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

# No *_created series: they double the output and no TF Serving dashboard reads them.
prometheus_client.disable_created_metrics()


class _TFServingRequestCount:
    """``:tensorflow:serving:request_count`` under TF Serving's exact name (no ``_total``)."""

    NAME = ":tensorflow:serving:request_count"

    def __init__(self, requests: Counter):
        self._requests = requests

    def collect(self):
        totals: dict[tuple[str, str], float] = {}
        for family in self._requests.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    key = (s.labels["model"], s.labels["code"])
                    totals[key] = totals.get(key, 0.0) + s.value
        metric = Metric(self.NAME, "The total number of requests (TF Serving's counter).", "unknown")
        for (model, status), value in sorted(totals.items()):
            metric.add_sample(self.NAME, {"model_name": model, "status": status}, value)
        yield metric


class Metrics:
    """All metrics of one server, in their own registry (tests run several servers per process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        prometheus_client.ProcessCollector(registry=r)
        prometheus_client.PlatformCollector(registry=r)
        prometheus_client.GCCollector(registry=r)
        self._requests = Counter("requests", "Predict requests answered, by model, API (rest|grpc) and status code.",
                                 ["model", "api", "code"], registry=r)
        self._latency = Histogram("request_latency_seconds", "Predict latency by model, API and status code.",
                                  ["model", "api", "code"], registry=r)
        self._tf_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], buckets=TF_SERVING_BUCKETS_US, registry=r)
        self._tf_runtime = Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"], buckets=TF_SERVING_BUCKETS_US, registry=r)
        labels = ["model", "version", "signature"]
        self._model_calls = Counter("model_calls", "Calls into a model signature (one per merged batch when batching).",
                                    labels, registry=r)
        self._batched_calls = Counter("batched_calls", "Model calls that merged two or more requests.", labels,
                                      registry=r)
        self._batched_requests = Counter("batched_requests",
                                         "Predict requests that shared a model call with other requests.", labels,
                                         registry=r)
        self._batch_rows = Counter("batch_rows", "Rows (instances) passed to model calls.", labels, registry=r)
        r.register(_TFServingRequestCount(self._requests))

    def request(self, model: str, api: str, code: str, seconds: float | None = None) -> None:
        """One answered predict request; ``api`` is the entry point, ``rest`` or ``grpc``."""
        self._requests.labels(model, api, code).inc()
        if seconds is not None:
            self._latency.labels(model, api, code).observe(seconds)
            self._tf_latency.labels(model, "predict", api.upper()).observe(seconds * 1e6)

    def model_call(self, model: str, version: int, signature: str, requests: int, rows: int,
                   seconds: float | None = None) -> None:
        labels = (model, str(version), signature)
        self._model_calls.labels(*labels).inc()
        self._batch_rows.labels(*labels).inc(rows)
        if requests > 1:
            self._batched_calls.labels(*labels).inc()
            self._batched_requests.labels(*labels).inc(requests)
        if seconds is not None:
            self._tf_runtime.labels(model, "predict", "TF2").observe(seconds * 1e6)

    def get(self, metric: str, **labels: str) -> float:
        """Sum of a sample over all series matching ``labels`` (handy for tests)."""
        total = 0.0
        for family in self.registry.collect():
            for s in family.samples:
                if s.name == metric and all(s.labels.get(k) == str(v) for k, v in labels.items()):
                    total += s.value
        return total

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)
