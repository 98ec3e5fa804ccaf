"""uvicorn's h11 protocol plus the connection rules a public REST port needs.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and caps header size, but:

* it has no timeout for a connection that opens and sends nothing, or sends half a request head
  and stops (slowloris): such connections stay open forever;
* its only connection cap (``limit_concurrency``) counts those silent connections too and then
  answers *every* request 503: 256 silent sockets locked the whole API out, renewably;
* its own error answers (bad HTTP, over the limit) are plain text, where TF Serving's clients
  expect ``{"error": ...}``.

So this subclass (1) closes a connection whose first byte does not arrive within
``first_byte_timeout`` and whose request head is not complete within ``header_timeout``;
(2) caps open connections at ``max_connections`` by evicting the connection that has waited
longest *without a request in progress* (fresh, half-sent head, or idle keep-alive): a request
that has arrived is never displaced by a newcomer, and a well-behaved client's connection sends
its request at once, so it is served while any number of silent sockets come and go; only when
every connection is busy with a request does a newcomer get a JSON 503; (3) writes JSON errors.
Body reads are bounded in rest.py.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def _json_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


async def _over_capacity(scope, receive, send) -> None:
    """ASGI app for a request that arrived on a connection admitted over the cap."""
    body = _json_body("Server is at capacity: every connection is busy with a request "
                      "(--rest_max_connections); retry later")
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class ServingH11Protocol(H11Protocol):
    # Set per server by ``protocol_class`` (class attributes: uvicorn builds one instance per connection).
    header_timeout: float = 15.0
    first_byte_timeout: float = 5.0
    max_connections: int = 256
    _waiting: dict  # connections without a request in progress, oldest first (a dict keeps order)
    _open: set

    _header_timer: asyncio.TimerHandle | None = None
    _head_started = False

    # ---- connection life cycle ----
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._open.add(self)
        if len(self._open) > self.max_connections and not self._evict_one():
            self.app = _over_capacity  # answered when its request arrives (then closed)
        self._waiting[self] = None
        self._arm_header_timer(self.first_byte_timeout)

    def connection_lost(self, exc) -> None:
        self._disarm_header_timer()
        self._open.discard(self)
        self._waiting.pop(self, None)
        super().connection_lost(exc)

    def _evict_one(self) -> bool:
        for victim in self._waiting:
            if victim is not self:
                victim._close()
                return True
        return False

    def _close(self) -> None:
        self._waiting.pop(self, None)
        self._open.discard(self)
        if not self.transport.is_closing():
            self.transport.close()

    # ---- request progress ----
    def data_received(self, data: bytes) -> None:
        if not self._head_started and self._waiting_for_head():
            # The first bytes of a request head: the whole head gets header_timeout from here
            # (later bytes do not restart it, so trickling a head byte by byte does not help).
            self._head_started = True
            self._arm_header_timer(self.header_timeout, restart=True)
        super().data_received(data)
        if not self._waiting_for_head():
            self._head_started = False
            self._disarm_header_timer()
            self._waiting.pop(self, None)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._waiting.pop(self, None)
            self._waiting[self] = None  # idle keep-alive: the newest waiting connection

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    # ---- timers ----
    def _arm_header_timer(self, seconds: float, restart: bool = False) -> None:
        if restart:
            self._disarm_header_timer()
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(seconds, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        # Armed on connect or by the first bytes of a next request: the head is still incomplete.
        if self._waiting_for_head() and not self.transport.is_closing():
            self._close()

    # ---- uvicorn's own error answers, as JSON ----
    def send_400_response(self, msg: str) -> None:
        body = _json_body(f"Malformed request: {msg}")
        for event in (h11.Response(status_code=400, reason=b"Bad Request",
                                   headers=[(b"content-type", b"application/json"), (b"connection", b"close")]),
                      h11.Data(data=body), h11.EndOfMessage()):
            try:
                self.transport.write(self.conn.send(event))
            except h11.LocalProtocolError:  # h11 cannot write a response in its current state
                break
        self._close()


def protocol_class(header_timeout: float, first_byte_timeout: float, max_connections: int) -> type:
    """A protocol class with its own settings and connection book-keeping (one per server)."""
    return type("ServingH11Protocol", (ServingH11Protocol,), {
        "header_timeout": header_timeout, "first_byte_timeout": first_byte_timeout,
        "max_connections": max_connections, "_waiting": {}, "_open": set()})
