"""uvicorn's h11 protocol plus a header read timeout.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and caps header size
(``h11_max_incomplete_event_size``), but it has no timeout for a connection that opens and
sends nothing, or sends half a request head and stops (slowloris): such connections stay
open forever. This subclass arms a timer whenever the connection is waiting for a request
head (on connect, and when bytes of a next request arrive after a response) and closes the
connection if the head is not complete in time. Body reads are bounded in rest.py.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutH11Protocol(H11Protocol):
    header_timeout: float = 15.0  # set by server.py from --http_read_timeout_seconds

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head():
            self._arm_header_timer()
        super().data_received(data)
        if not self._waiting_for_head():
            self._disarm_header_timer()

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        # Armed on connect or by the first bytes of a next request: the head is still incomplete.
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.close()
