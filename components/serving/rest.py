"""TF Serving's REST API on FastAPI/Starlette.

URLs are matched with TF Serving's own regular expressions
(``http_rest_api_util.cc``) rather than FastAPI path templates, because its
``/v1/models/NAME[/versions/N|/labels/L]:predict`` syntax (a colon verb,
case-insensitive) does not map onto path parameters, and because unmatched
``/v1/...`` URLs must answer TF Serving's ``Malformed request`` error.
Model calls (and parsing/formatting of all but small payloads) run on a
thread pool, so the event loop stays free for status and metadata requests
while models compute.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import Executor
from urllib.parse import unquote

from fastapi import FastAPI, Request
from google.protobuf import json_format
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from .config import Limits
from .errors import ServingError, detached, invalid
from .json_codec import dumps, predict_response_json
from .metrics import CONTENT_TYPE, Metrics
from .model_registry import ModelRegistry
from .predictor import Predictor

log = logging.getLogger(__name__)

PREDICT_RE = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE)
STATUS_RE = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE)
_INT64_MAX = 2**63 - 1
_JSON = "application/json"
# Small requests are parsed/formatted on the event loop: a thread hop costs more than the work.
# Anything bigger, and every model call, goes to the thread pool.
_INLINE_BODY_BYTES = 16 * 1024
_INLINE_OUTPUT_ELEMENTS = 4096
# A 10 MB body can parse to ~250 MB of Python objects. Parsing is GIL-bound, so running more
# than two at once gains nothing and only multiplies that peak (16 at once reached 9.4 GB).
_LARGE_BODY_BYTES = 1 << 20
_LARGE_PARSES_AT_ONCE = 2


def _json_response(payload: bytes, status: int = 200) -> Response:
    return Response(content=payload, status_code=status, media_type=_JSON)


def error_response(err: ServingError) -> Response:
    return _json_response(dumps({"error": err.message}), err.http_status)


def _version(text: str | None) -> int | None:
    if not text:
        return None
    # Length first: int() of a 5,000-digit string raises ValueError (Python's digit limit).
    if len(text) > 19 or int(text) > _INT64_MAX:
        raise invalid(f"Failed to convert version: {text} to numeric.")
    return int(text)


def status_json(resp) -> bytes:
    return dumps(json_format.MessageToDict(resp, always_print_fields_with_no_presence=True,
                                           preserving_proto_field_name=True))


def metadata_json(servable) -> bytes:
    """GetModelMetadataResponse as TF Serving's REST handler prints it (SignatureDefMap unpacked)."""
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=servable.name)
    spec.version.value = servable.version
    opts = dict(always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
    return dumps({
        "model_spec": json_format.MessageToDict(spec, **opts),
        "metadata": {"signature_def": json_format.MessageToDict(servable.signature_def_map, **opts)},
    })


async def read_body(request: Request, limit: int) -> bytes | ServingError:
    """The body, or the error to answer (too large, client gone). Returned, not raised: see
    errors.detached for why a rejected request must leave no traceback behind."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return _too_large(int(length), limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _too_large(size, limit)
            chunks.append(chunk)
    except ClientDisconnect:
        return client_gone()
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> ServingError:
    return ServingError("RESOURCE_EXHAUSTED", f"Request body of {size} bytes exceeds the limit of {limit} bytes "
                        "(--max_body_bytes)", http_status=413)


def client_gone() -> ServingError:
    """The client closed its connection before its request was answered (nginx's 499)."""
    return ServingError("CANCELLED", "Client closed the connection before the response", http_status=499)


def reject_ambiguous_framing(app):
    """ASGI wrapper: a request with both Transfer-Encoding and Content-Length is a 400 (RFC 9112
    6.3: such a message is a request-smuggling vector and must not be processed); h11 would
    silently prefer chunked. The connection is closed after the answer."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            names = {k for k, _ in scope["headers"]}
            if b"transfer-encoding" in names and b"content-length" in names:
                body = dumps({"error": "Malformed request: both Transfer-Encoding and Content-Length given"})
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)
    return wrapped


def create_app(registry: ModelRegistry, predictor: Predictor, metrics: Metrics, limits: Limits,
               executor: Executor, timeout_seconds: float | None = None,
               read_timeout_seconds: float | None = None,
               metrics_path: str | None = "/monitoring/prometheus/metrics"):
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    large_parses = asyncio.Semaphore(_LARGE_PARSES_AT_ONCE)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if exc.status_code == 405 and path.lower().startswith("/v1/"):
            # Methods outside the route's list (TRACE, PROPFIND, ...): TF Serving's 400, as for PUT.
            return error_response(invalid(f"Malformed request: {request.method} {path}"))
        return _json_response(dumps({"error": str(exc.detail)}), exc.status_code)

    @app.exception_handler(Exception)
    async def bug(_request: Request, exc: Exception) -> Response:  # instead of Starlette's plain-text 500
        log.error("request failed: %s: %s", type(exc).__name__, exc)
        return error_response(ServingError("INTERNAL", f"{type(exc).__name__}: {exc}"))

    if metrics_path:
        @app.get(metrics_path)
        async def prometheus() -> Response:
            return Response(metrics.render(), media_type=CONTENT_TYPE)

    # One catch-all route: TF Serving matches /v1/... case-insensitively (/V1/Models/m works) and
    # answers 400 "Malformed request" for any other method on it (HEAD and OPTIONS included).
    @app.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    async def v1(request: Request) -> Response:
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1").split("?", 1)[0] if raw else request.url.path
        if not path.lower().startswith("/v1/"):
            return _json_response(dumps({"error": "Not Found"}), 404)
        try:
            if request.method == "POST" and (m := PREDICT_RE.fullmatch(path)):
                name, ver, label, verb = m.groups()
                return await _predict(request, unquote(name), ver, unquote(label) if label else None,
                                      verb.lower())
            if request.method == "GET" and (m := STATUS_RE.fullmatch(path)):
                name, ver, label, sub = m.groups()
                if not name:
                    raise invalid("Missing model name in request.")
                version = _version(ver)
                label = unquote(label) if label else None
                if sub:
                    servable = registry.servable(unquote(name), version, label)
                    return _json_response(metadata_json(servable))
                return _json_response(status_json(registry.status(unquote(name), version, label)))
            raise invalid(f"Malformed request: {request.method} {path}")
        except ServingError as err:
            return error_response(err)
        except RecursionError:
            return error_response(invalid("Request nested too deeply"))
        except Exception as exc:  # a bug; still answer JSON, as TF Serving's INTERNAL errors do
            log.exception("request failed")
            return error_response(ServingError("INTERNAL", f"{type(exc).__name__}: {exc}"))

    async def _predict(request: Request, name: str, ver: str | None, label: str | None, verb: str) -> Response:
        started = time.perf_counter()
        model_label = name if name in registry.model_names() else "<unknown>"
        outcome = await _predict_outcome(request, name, ver, label, verb)
        if isinstance(outcome, ServingError):
            if outcome.code == "CANCELLED":
                log.info("predict %s: %s", name, outcome.message)
            metrics.request(model_label, "rest", outcome.code, time.perf_counter() - started)
            return error_response(outcome)
        metrics.request(model_label, "rest", "OK", time.perf_counter() - started)
        return _json_response(outcome)

    async def _predict_outcome(request: Request, name: str, ver: str | None, label: str | None,
                               verb: str) -> bytes | ServingError:
        """The response payload or the error to answer; never raises for a request's fault."""
        try:
            version = _version(ver)
            if verb != "predict":
                raise ServingError("UNIMPLEMENTED", f"{verb} is not supported by this server; use :predict")
            try:
                # A client trickling its body would otherwise hold a connection forever.
                body = await asyncio.wait_for(read_body(request, limits.max_body_bytes), read_timeout_seconds)
            except asyncio.TimeoutError:
                return ServingError("DEADLINE_EXCEEDED", "Timed out reading the request body "
                                    "(--http_read_timeout_seconds)", http_status=408)
            if isinstance(body, ServingError):
                return body
            return await asyncio.wait_for(_run_predict(name, version, label, body), timeout_seconds)
        except ServingError as err:
            return detached(err)
        except asyncio.TimeoutError:
            return ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded")
        except RecursionError:
            return invalid("Request nested too deeply")
        except Exception as exc:  # a bug; answer like TF Serving's INTERNAL errors, keep serving
            log.exception("predict failed")
            return ServingError("INTERNAL", f"{type(exc).__name__}: {exc}")

    async def _run_predict(name: str, version: int | None, label: str | None, body: bytes) -> bytes | ServingError:
        loop = asyncio.get_running_loop()
        deadline = None if timeout_seconds is None else loop.time() + timeout_seconds
        if len(body) <= _INLINE_BODY_BYTES:
            prepared = _prepare(name, version, label, body)
        elif len(body) < _LARGE_BODY_BYTES:
            prepared = await loop.run_in_executor(executor, _prepare, name, version, label, body)
        else:
            async with large_parses:
                prepared = await loop.run_in_executor(executor, _prepare, name, version, label, body)
        del body  # a big body is not needed any more while the model runs
        if isinstance(prepared, ServingError):
            return prepared
        # loop.time() is time.monotonic(), the clock the call pool checks deadlines against.
        try:
            future, handle = predictor.start(prepared, deadline)
        except ServingError as err:
            return detached(err)
        try:
            outputs = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # The request timed out (wait_for) or the client went away: a queued call is dropped
            # by the cancelled future, a running one is aborted through its handle.
            future.cancel()
            if handle is not None:
                handle.cancel()
            raise
        except ServingError as err:
            return detached(err)
        outputs = predictor.finish(prepared, outputs)
        if sum(a.size for a in outputs.values()) <= _INLINE_OUTPUT_ELEMENTS:
            return _format(outputs, prepared.fmt)
        return await loop.run_in_executor(executor, _format, outputs, prepared.fmt)

    def _prepare(name: str, version: int | None, label: str | None, body: bytes):
        """Parse and validate; a rejection comes back as a traceback-free error (no cycle can
        keep the parsed document alive)."""
        try:
            return predictor.prepare_json(name, version, label, body)
        except ServingError as err:
            return detached(err)
        except RecursionError:
            return invalid("Request nested too deeply")

    def _format(outputs, fmt) -> bytes:
        return dumps(predict_response_json(outputs, fmt))

    return reject_ambiguous_framing(app)
