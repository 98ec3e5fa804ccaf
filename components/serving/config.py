"""The server's settings as typed, frozen values: the one place their defaults are written.

`flags.py` builds the command line from these defaults and `config_files.py` reads TF Serving's
text-proto files into them, so a default changed here changes the flag, its help and every
caller at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusExporter::kPrometheusPath


@dataclass(frozen=True)
class VersionPolicy:
    """Which on-disk versions to keep loaded (TF Serving's ``model_version_policy``)."""

    kind: str = "latest"  # "latest" | "all" | "specific"
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    def select(self, available: list[int]) -> set[int]:
        if self.kind == "all":
            return set(available)
        if self.kind == "specific":
            return set(available) & set(self.versions)
        return set(sorted(available, reverse=True)[: max(1, self.num_versions)])


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    version_policy: VersionPolicy = VersionPolicy()
    version_labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchingConfig:
    enabled: bool = False
    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    num_batch_threads: int = 2
    max_enqueued_batches: int = 100


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 10 * 1024 * 1024
    max_instances: int = 1024
    max_input_chars: int = 10_000
    # Generation work is bounded before the model runs: each row's max_tokens, and their sum.
    max_tokens: int = 512
    max_total_tokens: int = 8192
    # Elements of one input tensor, checked from the declared shape before anything is expanded.
    max_tensor_elements: int = 1 << 20


@dataclass(frozen=True)
class MonitoringConfig:
    """TF Serving's MonitoringConfig: where the Prometheus metrics are served, if at all."""

    enabled: bool = True  # TF Serving: off without --monitoring_config_file; ours is on by default
    path: str = DEFAULT_METRICS_PATH


@dataclass(frozen=True)
class ServerConfig:
    models: tuple[ModelConfig, ...]
    host: str = "127.0.0.1"
    port: int = 8500
    rest_api_port: int = 8501
    file_system_poll_wait_seconds: float = 1.0
    batching: BatchingConfig = BatchingConfig()
    limits: Limits = Limits()
    rest_api_num_threads: int = 16
    grpc_max_threads: int = 16
    rest_api_timeout_in_ms: int = 30_000
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    log_level: str = "INFO"
    max_concurrent_model_calls: int = 8
    max_queued_model_calls: int = 64
    grpc_max_concurrent_rpcs: int = 128
    rest_max_connections: int = 256
    http_read_timeout_seconds: float = 15.0
    http_idle_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 3.0
    enable_model_warmup: bool = True
    # --model models:/NAME@ALIAS|VERSION: resolved and downloaded by mlflow_source before serving.
    registry_models: tuple[str, ...] = ()
    tracking_uri: str = ""
    model_cache_dir: str = ""
    http_first_byte_timeout_seconds: float = 5.0
    monitoring: MonitoringConfig = MonitoringConfig()
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 0.0
    grpc_channel_arguments: tuple[tuple[str, int | str], ...] = ()
    allow_version_labels_for_unavailable_models: bool = False


class ConfigError(ValueError):
    """A flag or config file the server cannot start with."""
