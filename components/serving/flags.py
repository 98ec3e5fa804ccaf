"""``tensorflow_model_server``'s command line -> a validated ``ServerConfig``.

Flag names and spellings follow TF Serving so a command line written for it works here
unchanged; every default is read from the dataclasses in ``config.py`` (written once there), so
the flags, their help and programmatic callers cannot drift apart.
"""

from __future__ import annotations

import argparse
import logging

from components.tracking.uri import DEFAULT_TRACKING_URI

from .config import (
    DEFAULT_METRICS_PATH,
    BatchingConfig,
    ConfigError,
    Limits,
    ModelConfig,
    MonitoringConfig,
    ServerConfig,
)
from .config_files import (
    check_version_labels,
    load_batching_parameters_file,
    load_model_config_file,
    load_monitoring_config_file,
    normalise_base_path,
)
from .mlflow_source import DEFAULT_CACHE_DIR, check_model_uri

log = logging.getLogger(__name__)

# The defaults, as the dataclasses declare them (the model list has none: it comes from the flags).
_SERVER = ServerConfig(models=())
_BATCHING = BatchingConfig()
_LIMITS = Limits()


# Flags whose value is one config field, in --help order: (flag, its default as config.py
# declares it, help); the flag's type is the default's (int, float, or a gflags-style bool).
_VALUE_FLAGS: tuple[tuple[str, int | float | bool, str], ...] = (
    ("max_batch_size", _BATCHING.max_batch_size, "Largest merged batch, in rows."),
    ("batch_timeout_micros", _BATCHING.batch_timeout_micros, "Longest wait for a batch to fill."),
    ("num_batch_threads", _BATCHING.num_batch_threads, "Threads running merged batches."),
    ("max_enqueued_batches", _BATCHING.max_enqueued_batches, "Queued batches per model/signature before 503."),
    ("max_body_bytes", _LIMITS.max_body_bytes, "Largest REST body / gRPC message (bytes)."),
    ("max_instances", _LIMITS.max_instances, "Most rows (instances) per request."),
    ("max_input_chars", _LIMITS.max_input_chars, "Longest string element of an input."),
    ("max_tokens", _LIMITS.max_tokens,
     "Largest max_tokens per row for generate signatures (inputs named max_tokens); more is a 400."),
    ("max_total_tokens", _LIMITS.max_total_tokens, "Largest sum of max_tokens over the rows of one request."),
    ("max_tensor_elements", _LIMITS.max_tensor_elements,
     "Most elements in one input tensor (checked from its shape before it is built)."),
    ("max_concurrent_model_calls", _SERVER.max_concurrent_model_calls,
     "Model calls running at once (REST and gRPC share them)."),
    ("max_queued_model_calls", _SERVER.max_queued_model_calls,
     "Model calls waiting for a free slot; beyond that a request gets 503 / RESOURCE_EXHAUSTED."),
    ("grpc_max_concurrent_rpcs", _SERVER.grpc_max_concurrent_rpcs,
     "gRPC calls in progress before new ones get RESOURCE_EXHAUSTED."),
    ("rest_max_connections", _SERVER.rest_max_connections,
     "Open REST connections; a new one beyond it closes the one that has waited longest without a "
     "request in progress (a request that has arrived is never displaced); if all are busy: 503."),
    ("http_read_timeout_seconds", _SERVER.http_read_timeout_seconds,
     "Time to receive a request's headers (from their first byte), and then its body, before the "
     "connection is closed."),
    ("http_idle_timeout_seconds", _SERVER.http_idle_timeout_seconds,
     "An idle keep-alive connection is closed after this long."),
    ("shutdown_grace_seconds", _SERVER.shutdown_grace_seconds,
     "On SIGTERM, in-flight requests get this long to finish before their model calls are cancelled."),
    ("enable_model_warmup", _SERVER.enable_model_warmup,
     "Replay assets.extra/tf_serving_warmup_requests before a version takes traffic."),
    ("rest_api_num_threads", _SERVER.rest_api_num_threads, "Worker threads for REST requests."),
    ("grpc_max_threads", _SERVER.grpc_max_threads, "Worker threads for gRPC requests."),
    ("rest_api_timeout_in_ms", _SERVER.rest_api_timeout_in_ms, "REST predict timeout (0: none)."),
    ("tensorflow_intra_op_parallelism", _SERVER.intra_op_parallelism, "TF intra-op threads (0: TF default)."),
    ("tensorflow_inter_op_parallelism", _SERVER.inter_op_parallelism, "TF inter-op threads (0: TF default)."),
)


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
    a("--port", type=int, default=_SERVER.port, help="gRPC port (0 disables gRPC).")
    a("--rest_api_port", type=int, default=_SERVER.rest_api_port, help="REST port (0 disables REST).")
    a("--host", default=_SERVER.host, help="Address both servers bind to.")
    a("--model_name", default="default", help="Model name when serving a single model.")
    a("--model_base_path", default="", help="Base path BASE/<version>/saved_model.pb of the single model.")
    a("--model_config_file", default=_SERVER.model_config_file,
      help="ModelServerConfig text proto listing several models.")
    a("--model", dest="registry_models", action="append", default=[], metavar="MODELS_URI",
      help="Serve a version from the MLflow Model Registry: models:/NAME@ALIAS or models:/NAME/VERSION "
           "(repeatable; served under the model name NAME; works alongside the flags above).")
    a("--tracking_uri", default=_SERVER.tracking_uri,
      help=f"MLflow tracking/registry URI for --model (default: $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI}).")
    a("--model_cache_dir", default=_SERVER.model_cache_dir,
      help=f"Where --model versions are downloaded, as <dir>/<NAME>/<version>/ (default: {DEFAULT_CACHE_DIR}).")
    a("--file_system_poll_wait_seconds", type=float, default=_SERVER.file_system_poll_wait_seconds,
      help="Seconds between scans of the base paths for new versions (0: scan once).")
    a("--enable_batching", type=_bool_flag, nargs="?", const=True, default=_BATCHING.enabled,
      help="Merge concurrent predict requests into one model call.")
    a("--batching_parameters_file", default="",
      help="BatchingParameters text proto (TF Serving format); overrides the flat batching flags.")
    for name, default, text in _VALUE_FLAGS:
        if isinstance(default, bool):  # gflags style: --flag, --flag=true/false
            a(f"--{name}", type=_bool_flag, nargs="?", const=True, default=default, help=text)
        else:
            a(f"--{name}", type=type(default), default=default, help=text)
    a("--log_level", default=_SERVER.log_level, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    a("--http_first_byte_timeout_seconds", type=float, default=_SERVER.http_first_byte_timeout_seconds,
      help="A new REST connection that sends nothing for this long is closed (at most "
           "--http_read_timeout_seconds).")
    # tensorflow_model_server flags this server implements.
    a("--monitoring_config_file", default="",
      help="MonitoringConfig text proto (prometheus_config { enable: true, path: ... }): where the "
           f"Prometheus metrics are served (default: on, at {DEFAULT_METRICS_PATH}).")
    a("--model_config_file_poll_wait_seconds", type=float, default=_SERVER.model_config_file_poll_wait_seconds,
      help="Re-read --model_config_file this often and apply changes: models added, removed, new "
           "version policies and labels (0: read once).")
    a("--grpc_channel_arguments", default="",
      help="Comma-separated gRPC server arguments, e.g. grpc.max_connection_age_ms=2000.")
    a("--tensorflow_session_parallelism", type=int, default=0,
      help="TF intra- and inter-op threads, where the two flags below are 0.")
    a("--allow_version_labels_for_unavailable_models", type=_bool_flag, nargs="?", const=True,
      default=_SERVER.allow_version_labels_for_unavailable_models,
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
        models = (ModelConfig(name=args.model_name, base_path=normalise_base_path(args.model_base_path)),)
    elif args.registry_models:
        models = ()  # all from the registry
    else:
        raise ConfigError("give --model_base_path (with --model_name), --model_config_file, "
                          "or --model models:/NAME@ALIAS")
    if args.registry_models:
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
