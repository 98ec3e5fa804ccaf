"""One error type for REST and gRPC, carrying a TensorFlow status code.

TF Serving decides every failure as a ``tensorflow::Status`` and only maps it
to an HTTP or gRPC code at the edge (``http_server.cc::ToHTTPStatusCode``).
Doing the same here keeps both APIs answering identically for the same fault.
"""

from __future__ import annotations

import grpc

# TF Serving's ToHTTPStatusCode table (tensorflow_serving/model_servers/http_server.cc).
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


# Error texts quote request data (names, values); a client must never get megabytes back, and a
# gRPC status message travels in a trailer that clients cap at 8 KiB (a longer one turns the
# answer into RESOURCE_EXHAUSTED on the client side).
MAX_MESSAGE_CHARS = 1024


def clean_message(message: str) -> str:
    """Truncate, and make the text encodable: a lone surrogate from the request ("\\ud800")
    would otherwise make UTF-8 encoding of the JSON error (or the gRPC trailer) fail."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + f"... [{len(message) - MAX_MESSAGE_CHARS} more characters]"
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return message


class ServingError(Exception):
    """A request or load failure with a TF status code name (e.g. ``NOT_FOUND``).

    ``http_status`` may override TF Serving's mapping where the issue asks for a different REST
    code than the gRPC one (a saturated server: 503 over REST, RESOURCE_EXHAUSTED over gRPC).
    """

    def __init__(self, code: str, message: str, http_status: int | None = None):
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown status code {code!r}")
        message = clean_message(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        return self._http_status or HTTP_STATUS[self.code]

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return grpc.StatusCode[self.code]

    def __str__(self) -> str:  # TF's Status::ToString() form, used when nesting errors
        return f"{self.code}: {self.message}"


def invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    return ServingError("NOT_FOUND", message)


def unavailable(message: str) -> ServingError:
    return ServingError("UNAVAILABLE", message)


def overloaded(message: str) -> ServingError:
    """The server is at its concurrency limit: REST 503, gRPC RESOURCE_EXHAUSTED."""
    return ServingError("RESOURCE_EXHAUSTED", message, http_status=503)


def detached(err: BaseException) -> BaseException:
    """``err`` without its traceback and chained exceptions, to keep or re-raise safely.

    A rejected request's error is raised deep in the parsing code, whose frames hold the request
    (a 10 MB body, its parsed document: ~250 MB of Python objects). Any reference cycle through
    the traceback (asyncio.wait_for's frame holds the task that holds the exception; a gRPC handler
    that keeps the caught error in a local) then keeps all of it alive until a full collection,
    which the collector runs rarely (it counts objects, not bytes): RSS grew ~250 MB per request.
    """
    err.__traceback__ = None
    err.__context__ = None
    err.__cause__ = None
    return err
