"""Command-line flags and TF Serving config files -> typed, validated objects.

Flag names, spellings and defaults follow ``tensorflow_model_server`` so that a
command line (or a ``--model_config_file``) written for this server works
unchanged on TF Serving and back.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

log = logging.getLogger(__name__)

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


def _bool_flag(value: str) -> bool:
    # gflags accepts --flag, --flag=true/false/1/0; keep that so TF Serving command lines parse.
    lowered = value.strip().lower()
    if lowered in ("1", "true", "t", "yes", "y"):
        return True
    if lowered in ("0", "false", "f", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {value!r}")


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline serve",
        description="Serve SavedModels over TF Serving's REST and gRPC APIs.",
    )
    a = p.add_argument
    a("--port", type=int, default=8500, help="gRPC port (0 disables gRPC).")
    a("--rest_api_port", type=int, default=8501, help="REST port (0 disables REST).")
    a("--host", default="127.0.0.1", help="Address both servers bind to.")
    a("--model_name", default="default", help="Model name when serving a single model.")
    a("--model_base_path", default="", help="Base path BASE/<version>/saved_model.pb of the single model.")
    a("--model_config_file", default="", help="ModelServerConfig text proto listing several models.")
    a("--model", dest="registry_models", action="append", default=[], metavar="MODELS_URI",
      help="Serve a version from the MLflow Model Registry: models:/NAME@ALIAS or models:/NAME/VERSION "
           "(repeatable; served under the model name NAME; works alongside the flags above).")
    a("--tracking_uri", default="",
      help="MLflow tracking/registry URI for --model (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
    a("--model_cache_dir", default="",
      help="Where --model versions are downloaded, as <dir>/<NAME>/<version>/ (default: work/registry_models).")
    a("--file_system_poll_wait_seconds", type=float, default=1.0,
      help="Seconds between scans of the base paths for new versions (0: scan once).")
    a("--enable_batching", type=_bool_flag, nargs="?", const=True, default=False,
      help="Merge concurrent predict requests into one model call.")
    a("--batching_parameters_file", default="",
      help="BatchingParameters text proto (TF Serving format); overrides the flat batching flags.")
    a("--max_batch_size", type=int, default=32, help="Largest merged batch, in rows.")
    a("--batch_timeout_micros", type=int, default=1000, help="Longest wait for a batch to fill.")
    a("--num_batch_threads", type=int, default=2, help="Threads running merged batches.")
    a("--max_enqueued_batches", type=int, default=100, help="Queued batches per model/signature before 503.")
    a("--max_body_bytes", type=int, default=10 * 1024 * 1024, help="Largest REST body / gRPC message (bytes).")
    a("--max_instances", type=int, default=1024, help="Most rows (instances) per request.")
    a("--max_input_chars", type=int, default=10_000, help="Longest string element of an input.")
    a("--max_tokens", type=int, default=512,
      help="Largest max_tokens per row for generate signatures (inputs named max_tokens); more is a 400.")
    a("--max_total_tokens", type=int, default=8192,
      help="Largest sum of max_tokens over the rows of one request.")
    a("--max_tensor_elements", type=int, default=1 << 20,
      help="Most elements in one input tensor (checked from its shape before it is built).")
    a("--max_concurrent_model_calls", type=int, default=8,
      help="Model calls running at once (REST and gRPC share them).")
    a("--max_queued_model_calls", type=int, default=64,
      help="Model calls waiting for a free slot; beyond that a request gets 503 / RESOURCE_EXHAUSTED.")
    a("--grpc_max_concurrent_rpcs", type=int, default=128,
      help="gRPC calls in progress before new ones get RESOURCE_EXHAUSTED.")
    a("--rest_max_connections", type=int, default=256,
      help="Open REST connections; a new one beyond it closes the one that has waited longest without a "
           "request in progress (a request that has arrived is never displaced); if all are busy: 503.")
    a("--http_read_timeout_seconds", type=float, default=15.0,
      help="Time to receive a request's headers (from their first byte), and then its body, before the "
           "connection is closed.")
    a("--http_idle_timeout_seconds", type=float, default=30.0,
      help="An idle keep-alive connection is closed after this long.")
    a("--shutdown_grace_seconds", type=float, default=3.0,
      help="On SIGTERM, in-flight requests get this long to finish before their model calls are cancelled.")
    a("--enable_model_warmup", type=_bool_flag, nargs="?", const=True, default=True,
      help="Replay assets.extra/tf_serving_warmup_requests before a version takes traffic.")
    a("--rest_api_num_threads", type=int, default=16, help="Worker threads for REST requests.")
    a("--grpc_max_threads", type=int, default=16, help="Worker threads for gRPC requests.")
    a("--rest_api_timeout_in_ms", type=int, default=30_000, help="REST predict timeout (0: none).")
    a("--tensorflow_intra_op_parallelism", type=int, default=0, help="TF intra-op threads (0: TF default).")
    a("--tensorflow_inter_op_parallelism", type=int, default=0, help="TF inter-op threads (0: TF default).")
    a("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    a("--http_first_byte_timeout_seconds", type=float, default=5.0,
      help="A new REST connection that sends nothing for this long is closed (at most "
           "--http_read_timeout_seconds).")
    # tensorflow_model_server flags this server implements.
    a("--monitoring_config_file", default="",
      help="MonitoringConfig text proto (prometheus_config { enable: true, path: ... }): where the "
           f"Prometheus metrics are served (default: on, at {DEFAULT_METRICS_PATH}).")
    a("--model_config_file_poll_wait_seconds", type=float, default=0.0,
      help="Re-read --model_config_file this often and apply changes: models added, removed, new "
           "version policies and labels (0: read once).")
    a("--grpc_channel_arguments", default="",
      help="Comma-separated gRPC server arguments, e.g. grpc.max_connection_age_ms=2000.")
    a("--tensorflow_session_parallelism", type=int, default=0,
      help="TF intra- and inter-op threads, where the two flags below are 0.")
    a("--allow_version_labels_for_unavailable_models", type=_bool_flag, nargs="?", const=True, default=False,
      help="Accept a version label pointing at a version that is not (yet) loaded.")
    a("--version", action="store_true", help="Print the server and TensorFlow versions and exit.")
    for name in TF_SERVING_FLAGS:
        a(f"--{name}", default=None, nargs="?", const="true", help=argparse.SUPPRESS)
    return p


# The other tensorflow_model_server flags (TF Serving 2.x main.cc). Each value in the set is what
# this server does anyway, so it is accepted; any other value fails start-up naming the flag.
_BOOLS = frozenset({"true", "false"})
TF_SERVING_FLAGS: dict[str, tuple[frozenset[str], str]] = {
    "grpc_socket_path": (frozenset({""}), "a UNIX-socket gRPC listener is not implemented; use --port"),
    "rest_api_enable_cors_support": (frozenset({"false"}), "CORS headers are not implemented"),
    "enable_per_model_batching_parameters": (
        frozenset({"false"}), "per-model batching_params.pbtxt is not read; use --batching_parameters_file"),
    "num_load_threads": (frozenset({"0"}), "load threads are not configurable (each model loads on its own "
                                           "thread, its versions one at a time)"),
    "num_unload_threads": (frozenset({"0"}), "unload threads are not configurable"),
    "max_num_load_retries": (frozenset({"0"}), "timed load retries are not implemented (a version that "
                                               "failed to load is retried when its files change)"),
    "load_retry_interval_micros": (frozenset(), "timed load retries are not implemented"),
    "flush_filesystem_caches": (_BOOLS, ""),  # a cache hint for TF Serving's file systems: no effect here
    "tensorflow_session_config_file": (
        frozenset({""}), "session ConfigProto files are not read; use --tensorflow_intra_op_parallelism "
                         "and --tensorflow_inter_op_parallelism"),
    "use_alts_credentials": (frozenset({"false"}), "ALTS credentials are not implemented"),
    "ssl_config_file": (frozenset({""}), "TLS is not implemented; terminate TLS in a proxy"),
    "platform_config_file": (frozenset({""}), "only the TensorFlow SavedModel platform is served"),
    "per_process_gpu_memory_fraction": (frozenset({"0"}), "GPU memory fractions are not implemented"),
    "saved_model_tags": (frozenset({"serve"}), "only the 'serve' MetaGraph is loaded"),
    "num_request_iterations_for_warmup": (frozenset({"0", "1"}), "each warm-up record is replayed once"),
    "remove_unused_fields_from_bundle_metagraph": (_BOOLS, ""),  # a memory hint: no effect here
    "prefer_tflite_model": (frozenset({"false"}), "TF Lite models are not served"),
    "num_tflite_pools": (frozenset(), "TF Lite models are not served"),
    "num_tflite_interpreters_per_pool": (frozenset(), "TF Lite models are not served"),
    "enable_signature_method_name_check": (frozenset({"false"}), "SignatureDef method names are not checked"),
    "xla_cpu_compilation_enabled": (_BOOLS, ""),  # XLA JIT is always available here
    "xla_gpu_compilation_enabled": (_BOOLS, ""),
    "enable_profiler": (frozenset({"false"}), "the profiler service is not implemented"),
    "thread_pool_factory_config_file": (frozenset({""}), "ThreadPoolConfig files are not read"),
    "mixed_precision": (frozenset({""}), "precision is fixed at export"),
    "skip_initialize_tpu": (_BOOLS, ""),  # no TPU support: nothing to initialise
    "enable_grpc_healthcheck_service": (frozenset({"false"}), "the gRPC health service is not implemented; "
                                                              "poll GET /v1/models/NAME or GetModelStatus"),
    "enable_serialization_as_tensor_content": (
        frozenset({"false"}), "responses fill the typed fields (float_val, ...), as TF Serving's default"),
}


def check_tf_serving_flags(args: argparse.Namespace) -> None:
    for name, (accepted, reason) in TF_SERVING_FLAGS.items():
        value = getattr(args, name)
        if value is None:
            continue
        canon = value.strip().lower()
        if accepted == _BOOLS or accepted <= _BOOLS:
            canon = {"1": "true", "t": "true", "0": "false", "f": "false"}.get(canon, canon)
        if canon not in accepted:
            raise ConfigError(f"--{name}={value} is not supported by this server: {reason}")


def parse_grpc_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """TF Serving's format: 'key=value,key=value'; integer values are passed as integers."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--grpc_channel_arguments: expected key=value, got {item!r}")
        try:
            out.append((key.strip(), int(value)))
        except ValueError:
            out.append((key.strip(), value))
    return tuple(out)


def _normalise_base_path(path: str) -> str:
    if path.startswith("file://"):
        path = path[len("file://"):]
    if "://" in path:
        raise ConfigError(f"only local base paths are supported, got {path!r}")
    return os.path.abspath(os.path.expanduser(path))


def load_model_config_file(path: str) -> tuple[ModelConfig, ...]:
    """Parse TF Serving's ModelServerConfig text proto (``model_config_list``)."""
    from tensorflow_serving.config import model_server_config_pb2

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read --model_config_file {path}: {exc}") from exc
    cfg = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, cfg)
    except text_format.ParseError as exc:
        raise ConfigError(f"invalid --model_config_file {path}: {exc}") from exc
    if cfg.WhichOneof("config") == "custom_model_config":
        raise ConfigError("custom_model_config is not supported; use model_config_list")
    models = []
    for mc in cfg.model_config_list.config:
        if not mc.name or not mc.base_path:
            raise ConfigError(f"every model config needs name and base_path: {mc}")
        if mc.model_platform and mc.model_platform != "tensorflow":
            raise ConfigError(f"model {mc.name}: only model_platform 'tensorflow' is supported")
        models.append(ModelConfig(
            name=mc.name,
            base_path=_normalise_base_path(mc.base_path),  # relative: to the working dir, as TF Serving
            version_policy=_version_policy(mc),
            version_labels=dict(mc.version_labels),
        ))
    if not models:
        raise ConfigError(f"--model_config_file {path} lists no models")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate model names in {path}: {names}")
    return tuple(models)


_VERSION_DIR = re.compile(r"^\d{1,18}$")  # fits int64, like TF Serving's ParseVersionNumber


def version_dirs(base_path: str) -> dict[int, str] | None:
    """Integer-named folders under a base path ({version: path}); None if it cannot be listed."""
    try:
        entries = list(os.scandir(base_path))
    except OSError:
        return None
    # Non-integer names (e.g. an exporter's temp folder before its rename) are ignored.
    return {int(e.name): e.path for e in entries if _VERSION_DIR.match(e.name) and e.is_dir()}


def check_version_labels(models, allow_unavailable: bool = False) -> None:
    """TF Serving refuses a config whose label points at a version that is not loaded (unless
    --allow_version_labels_for_unavailable_models); so do we, against the versions on disk that
    the model's version policy selects."""
    if allow_unavailable:
        return
    for m in models:
        if not m.version_labels:
            continue
        selected = m.version_policy.select(list(version_dirs(m.base_path) or {}))
        for label, version in sorted(m.version_labels.items()):
            if version not in selected:
                raise ConfigError(
                    f"model {m.name}: version label {label!r} points at version {version}, which is not "
                    f"loaded (versions the policy selects under {m.base_path}: {sorted(selected) or 'none'}); "
                    "fix the label or pass --allow_version_labels_for_unavailable_models")


def _version_policy(mc) -> VersionPolicy:
    if not mc.HasField("model_version_policy"):
        return VersionPolicy()
    pol = mc.model_version_policy
    which = pol.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy(kind="all")
    if which == "specific":
        if not pol.specific.versions:
            raise ConfigError(f"model {mc.name}: specific version policy lists no versions")
        return VersionPolicy(kind="specific", versions=frozenset(pol.specific.versions))
    return VersionPolicy(kind="latest", num_versions=pol.latest.num_versions or 1)


def _batching_parameters_class():
    """Build ``tensorflow.serving.BatchingParameters`` in a private descriptor pool.

    tensorflow-serving-api does not ship ``session_bundle_config_pb2``; the message
    is small and stable, so we declare it here to parse TF Serving's file format.
    """
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
    fdp = descriptor_pb2.FileDescriptorProto(
        name="serving_compat/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    msg = fdp.message_type.add(name="BatchingParameters")
    F = descriptor_pb2.FieldDescriptorProto
    for number, name, type_name in (
        (1, "max_batch_size", ".google.protobuf.Int64Value"),
        (2, "batch_timeout_micros", ".google.protobuf.Int64Value"),
        (3, "max_enqueued_batches", ".google.protobuf.Int64Value"),
        (4, "num_batch_threads", ".google.protobuf.Int64Value"),
        (5, "thread_pool_name", ".google.protobuf.StringValue"),
    ):
        msg.field.add(name=name, number=number, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                      type_name=type_name)
    msg.field.add(name="allowed_batch_sizes", number=6, type=F.TYPE_INT64, label=F.LABEL_REPEATED)
    msg.field.add(name="pad_variable_length_inputs", number=7, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def load_batching_parameters_file(path: str, base: BatchingConfig) -> BatchingConfig:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read --batching_parameters_file {path}: {exc}") from exc
    params = _batching_parameters_class()()
    try:
        # Newer TF Serving releases add fields we do not implement; skip them rather than fail.
        text_format.Parse(text, params, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise ConfigError(f"invalid --batching_parameters_file {path}: {exc}") from exc
    if params.allowed_batch_sizes or params.pad_variable_length_inputs:
        log.warning("allowed_batch_sizes / pad_variable_length_inputs are ignored by this server")
    values = {}
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
        if params.HasField(name):
            values[name] = getattr(params, name).value
    return BatchingConfig(
        enabled=base.enabled,
        max_batch_size=values.get("max_batch_size", base.max_batch_size),
        batch_timeout_micros=values.get("batch_timeout_micros", base.batch_timeout_micros),
        num_batch_threads=values.get("num_batch_threads", base.num_batch_threads),
        max_enqueued_batches=values.get("max_enqueued_batches", base.max_enqueued_batches),
    )


def _monitoring_config_class():
    """``tensorflow.serving.MonitoringConfig`` (monitoring_config.proto), which
    tensorflow-serving-api does not ship either; two tiny messages, declared like the one above."""
    pool = descriptor_pool.DescriptorPool()
    fdp = descriptor_pb2.FileDescriptorProto(name="serving_compat/monitoring_config.proto",
                                             package="tensorflow.serving", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto
    prom = fdp.message_type.add(name="PrometheusConfig")
    prom.field.add(name="enable", number=1, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    prom.field.add(name="path", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    mon = fdp.message_type.add(name="MonitoringConfig")
    mon.field.add(name="prometheus_config", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                  type_name=".tensorflow.serving.PrometheusConfig")
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def load_monitoring_config_file(path: str) -> MonitoringConfig:
    """TF Serving's --monitoring_config_file: ``prometheus_config { enable: true path: "/metrics" }``."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read --monitoring_config_file {path}: {exc}") from exc
    cfg = _monitoring_config_class()()
    try:
        text_format.Parse(text, cfg)
    except text_format.ParseError as exc:
        raise ConfigError(f"invalid --monitoring_config_file {path}: {exc}") from exc
    prom = cfg.prometheus_config
    metrics_path = prom.path or DEFAULT_METRICS_PATH
    if prom.enable and (not metrics_path.startswith("/") or metrics_path.lower().startswith("/v1/")):
        raise ConfigError(f"--monitoring_config_file {path}: prometheus_config.path must start with / and "
                          f"lie outside /v1/, got {prom.path!r}")
    return MonitoringConfig(enabled=prom.enable, path=metrics_path)


def parse_args(argv: list[str] | None) -> ServerConfig:
    """Flags -> ServerConfig; raises ConfigError (or SystemExit from argparse) on bad input."""
    args = build_arg_parser().parse_args(argv)
    if args.model_config_file and args.model_base_path:
        raise ConfigError("use either --model_config_file or --model_name/--model_base_path, not both")
    check_tf_serving_flags(args)
    if args.model_config_file:
        models = load_model_config_file(args.model_config_file)
        check_version_labels(models, args.allow_version_labels_for_unavailable_models)
    elif args.model_base_path:
        if not args.model_name or "/" in args.model_name or ":" in args.model_name:
            raise ConfigError(f"invalid --model_name {args.model_name!r}")
        models = (ModelConfig(name=args.model_name, base_path=_normalise_base_path(args.model_base_path)),)
    elif args.registry_models:
        models = ()  # all from the registry
    else:
        raise ConfigError("give --model_base_path (with --model_name), --model_config_file, "
                          "or --model models:/NAME@ALIAS")
    if args.registry_models:
        from .mlflow_source import check_model_uri

        for uri in args.registry_models:
            check_model_uri(uri)

    batching = BatchingConfig(
        enabled=bool(args.enable_batching),
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        num_batch_threads=args.num_batch_threads,
        max_enqueued_batches=args.max_enqueued_batches,
    )
    if args.batching_parameters_file:
        if not args.enable_batching:
            log.warning("--batching_parameters_file is ignored without --enable_batching (as in TF Serving)")
        else:
            batching = load_batching_parameters_file(args.batching_parameters_file, batching)
    if batching.enabled and (batching.max_batch_size < 1 or batching.num_batch_threads < 1
                             or batching.batch_timeout_micros < 0 or batching.max_enqueued_batches < 1):
        raise ConfigError("batching needs max_batch_size>=1, num_batch_threads>=1, "
                          "batch_timeout_micros>=0, max_enqueued_batches>=1")

    for name in ("port", "rest_api_port"):
        value = getattr(args, name)
        if not 0 <= value <= 65535:
            raise ConfigError(f"--{name} must be in 0..65535, got {value}")
    if args.port == 0 and args.rest_api_port == 0:
        raise ConfigError("both --port and --rest_api_port are 0; nothing to serve on")
    for name in ("max_body_bytes", "max_instances", "max_input_chars", "rest_api_num_threads", "grpc_max_threads",
                 "max_tokens", "max_total_tokens", "max_tensor_elements", "max_concurrent_model_calls",
                 "grpc_max_concurrent_rpcs", "rest_max_connections"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1")
    for name in ("max_queued_model_calls", "shutdown_grace_seconds"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name} must be >= 0")
    if args.model_config_file_poll_wait_seconds and not args.model_config_file:
        raise ConfigError("--model_config_file_poll_wait_seconds needs --model_config_file")
    if args.model_config_file_poll_wait_seconds < 0:
        raise ConfigError("--model_config_file_poll_wait_seconds must be >= 0")
    monitoring = (load_monitoring_config_file(args.monitoring_config_file) if args.monitoring_config_file
                  else MonitoringConfig())
    intra, inter = args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism
    if args.tensorflow_session_parallelism:
        intra = intra or args.tensorflow_session_parallelism
        inter = inter or args.tensorflow_session_parallelism
    for name in ("http_read_timeout_seconds", "http_idle_timeout_seconds", "http_first_byte_timeout_seconds"):
        if not getattr(args, name) > 0:
            raise ConfigError(f"--{name} must be > 0")

    return ServerConfig(
        models=models,
        host=args.host,
        port=args.port,
        rest_api_port=args.rest_api_port,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        batching=batching,
        limits=Limits(args.max_body_bytes, args.max_instances, args.max_input_chars, args.max_tokens,
                      args.max_total_tokens, args.max_tensor_elements),
        rest_api_num_threads=args.rest_api_num_threads,
        grpc_max_threads=args.grpc_max_threads,
        rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
        intra_op_parallelism=intra,
        inter_op_parallelism=inter,
        log_level=args.log_level,
        max_concurrent_model_calls=args.max_concurrent_model_calls,
        max_queued_model_calls=args.max_queued_model_calls,
        grpc_max_concurrent_rpcs=args.grpc_max_concurrent_rpcs,
        rest_max_connections=args.rest_max_connections,
        http_read_timeout_seconds=args.http_read_timeout_seconds,
        http_idle_timeout_seconds=args.http_idle_timeout_seconds,
        shutdown_grace_seconds=args.shutdown_grace_seconds,
        enable_model_warmup=bool(args.enable_model_warmup),
        registry_models=tuple(args.registry_models),
        tracking_uri=args.tracking_uri,
        model_cache_dir=args.model_cache_dir,
        http_first_byte_timeout_seconds=min(args.http_first_byte_timeout_seconds, args.http_read_timeout_seconds),
        monitoring=monitoring,
        model_config_file=args.model_config_file,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        grpc_channel_arguments=parse_grpc_channel_arguments(args.grpc_channel_arguments),
        allow_version_labels_for_unavailable_models=bool(args.allow_version_labels_for_unavailable_models),
    )
