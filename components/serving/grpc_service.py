"""TF Serving's gRPC API (PredictionService, ModelService) on tensorflow-serving-api's stubs.

Using the generated servicer bases and protos means any TF Serving client
(``PredictionServiceStub``, ``ModelServiceStub``) talks to us unchanged.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from .errors import ServingError, detached, invalid
from .metrics import Metrics
from .model_registry import ModelRegistry
from .predictor import Predictor, model_spec_target
from .proto_codec import array_to_proto

log = logging.getLogger(__name__)

_SIGNATURE_DEF = "signature_def"


def _abort(context: grpc.ServicerContext, err: ServingError):
    context.abort(err.grpc_code, err.message)


class _Undecodable:
    """What the request deserializer returns for bytes that are not the expected proto.

    grpcio turns a deserializer exception into INTERNAL plus a logged traceback; a client can
    send any bytes, so we return this marker instead and the handler answers INVALID_ARGUMENT.
    """

    def __init__(self, message_name: str, error: Exception):
        self.message = f"Cannot parse the request as {message_name}: {type(error).__name__}"


def _safe_deserializer(message_class):
    def deserialize(data: bytes):
        try:
            return message_class.FromString(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError, RecursionError (deep nesting), ...
            return _Undecodable(message_class.DESCRIPTOR.full_name, exc)
    return deserialize


def _check_decoded(request, context) -> None:
    if isinstance(request, _Undecodable):
        _abort(context, invalid(request.message))


def _as_serving_error(exc: Exception) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    log.exception("gRPC request failed")
    return ServingError("INTERNAL", f"{type(exc).__name__}: {exc}")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify/Regress/MultiInference stay UNIMPLEMENTED."""

    def __init__(self, predictor: Predictor, registry: ModelRegistry, metrics: Metrics):
        self._predictor = predictor
        self._registry = registry
        self._metrics = metrics

    def Predict(self, request, context):
        _check_decoded(request, context)
        started = time.perf_counter()
        name = request.model_spec.name
        model_label = name if name in self._registry.model_names() else "<unknown>"
        outcome = self._predict(request, context)
        del request  # the parsed request (up to --max_body_bytes) is not needed for the answer
        if isinstance(outcome, ServingError):
            self._metrics.request(model_label, "grpc", outcome.code, time.perf_counter() - started)
            _abort(context, outcome)
        self._metrics.request(model_label, "grpc", "OK", time.perf_counter() - started)
        return outcome

    def _predict(self, request, context):
        """The response, or a traceback-free error (see errors.detached: a caught error kept in a
        local of the frame its traceback points at is a cycle holding the whole request)."""
        try:
            prepared = self._predictor.prepare_proto(request)
            outputs = self._predictor.run(prepared, context.time_remaining())
            response = predict_pb2.PredictResponse()
            response.model_spec.name = prepared.servable.name
            response.model_spec.version.value = prepared.servable.version
            response.model_spec.signature_name = prepared.sig.name
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(array_to_proto(value))
            return response
        except Exception as exc:  # noqa: BLE001 - every failure becomes a gRPC status
            return detached(_as_serving_error(exc))

    def GetModelMetadata(self, request, context):
        _check_decoded(request, context)
        try:
            if not request.HasField("model_spec"):
                raise invalid("Missing ModelSpec")
            if not request.metadata_field:
                raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
            for f in request.metadata_field:
                if f != _SIGNATURE_DEF:
                    raise invalid(f"Metadata field {f} is not supported")
            version, label = model_spec_target(request.model_spec)
            servable = self._registry.servable(request.model_spec.name, version, label)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.metadata[_SIGNATURE_DEF].Pack(servable.signature_def_map)
        except Exception as exc:  # noqa: BLE001
            _abort(context, _as_serving_error(exc))
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus; HandleReloadConfigRequest stays UNIMPLEMENTED."""

    def __init__(self, registry: ModelRegistry):
        self._registry = registry

    def GetModelStatus(self, request, context):
        _check_decoded(request, context)
        try:
            if not request.HasField("model_spec"):
                raise invalid("Missing ModelSpec")
            version, label = model_spec_target(request.model_spec)
            return self._registry.status(request.model_spec.name, version, label)
        except Exception as exc:  # noqa: BLE001
            _abort(context, _as_serving_error(exc))


def _handlers(service: str, methods: dict) -> grpc.GenericRpcHandler:
    """Like the generated add_*Servicer_to_server, with our tolerant request deserializer."""
    return grpc.method_handlers_generic_handler(service, {
        name: grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=_safe_deserializer(req), response_serializer=resp.SerializeToString)
        for name, (fn, req, resp) in methods.items()})


def create_grpc_server(host: str, port: int, max_threads: int, max_message_bytes: int,
                       predictor: Predictor, registry: ModelRegistry, metrics: Metrics,
                       max_concurrent_rpcs: int | None = None,
                       channel_arguments: tuple[tuple[str, int | str], ...] = ()) -> grpc.Server:
    """Build and bind (not start) the gRPC server; raises RuntimeError if the port is taken.

    ``max_concurrent_rpcs``: grpcio answers RESOURCE_EXHAUSTED beyond it (library code, no
    hand-written admission for gRPC connections)."""
    options = dict([
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", -1),
        # Without this, Linux SO_REUSEPORT lets a second server "bind" a port already in use.
        ("grpc.so_reuseport", 0),
    ])
    options.update(channel_arguments)  # --grpc_channel_arguments, as TF Serving passes them
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="grpc"),
        options=list(options.items()),
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    prediction = PredictionServicer(predictor, registry, metrics)
    models = ModelServicer(registry)
    server.add_generic_rpc_handlers((
        _handlers("tensorflow.serving.PredictionService", {
            "Predict": (prediction.Predict, predict_pb2.PredictRequest, predict_pb2.PredictResponse),
            "GetModelMetadata": (prediction.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest,
                                 get_model_metadata_pb2.GetModelMetadataResponse),
        }),
        _handlers("tensorflow.serving.ModelService", {
            "GetModelStatus": (models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest,
                               get_model_status_pb2.GetModelStatusResponse),
        }),
    ))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot bind gRPC server to {address}: {exc}") from exc
    if bound == 0:
        raise RuntimeError(f"cannot bind gRPC server to {address}")
    return server
