"""TF Serving's text-proto files -> typed config values.

``--model_config_file`` (ModelServerConfig), ``--batching_parameters_file`` (BatchingParameters)
and ``--monitoring_config_file`` (MonitoringConfig) are read in TF Serving's own format, so a file
written for ``tensorflow_model_server`` works here unchanged and back. Kept apart from the flags
because the server re-reads the model config file while running (``server.py``).
"""

from __future__ import annotations

import logging
import os

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from components.savedmodel.layout import version_dirs

from .config import DEFAULT_METRICS_PATH, BatchingConfig, ConfigError, ModelConfig, MonitoringConfig, VersionPolicy

log = logging.getLogger(__name__)


def normalise_base_path(path: str) -> str:
    """A local base path, absolute (relative ones: to the working dir, as TF Serving)."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    if "://" in path:
        raise ConfigError(f"only local base paths are supported, got {path!r}")
    return os.path.abspath(os.path.expanduser(path))


def _parse_text_proto(path: str, flag: str, message, allow_unknown_field: bool = False):
    """Fill `message` from TF Serving's text-proto file `path` (given as `--flag`): a file that
    cannot be read or parsed is one `ConfigError` line naming the flag."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read --{flag} {path}: {exc}") from exc
    try:
        text_format.Parse(text, message, allow_unknown_field=allow_unknown_field)
    except text_format.ParseError as exc:
        raise ConfigError(f"invalid --{flag} {path}: {exc}") from exc
    return message


def load_model_config_file(path: str) -> tuple[ModelConfig, ...]:
    """Parse TF Serving's ModelServerConfig text proto (``model_config_list``)."""
    from tensorflow_serving.config import model_server_config_pb2

    cfg = _parse_text_proto(path, "model_config_file", model_server_config_pb2.ModelServerConfig())
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
            base_path=normalise_base_path(mc.base_path),  # relative: to the working dir, as TF Serving
            version_policy=_version_policy(mc),
            version_labels=dict(mc.version_labels),
        ))
    if not models:
        raise ConfigError(f"--model_config_file {path} lists no models")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate model names in {path}: {names}")
    return tuple(models)


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
    # Newer TF Serving releases add fields we do not implement; skip them rather than fail.
    params = _parse_text_proto(path, "batching_parameters_file", _batching_parameters_class()(),
                               allow_unknown_field=True)
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
    cfg = _parse_text_proto(path, "monitoring_config_file", _monitoring_config_class()())
    prom = cfg.prometheus_config
    metrics_path = prom.path or DEFAULT_METRICS_PATH
    if prom.enable and (not metrics_path.startswith("/") or metrics_path.lower().startswith("/v1/")):
        raise ConfigError(f"--monitoring_config_file {path}: prometheus_config.path must start with / and "
                          f"lie outside /v1/, got {prom.path!r}")
    return MonitoringConfig(enabled=prom.enable, path=metrics_path)
