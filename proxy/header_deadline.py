"""uvicorn's HTTP protocol with the limits a client meets before its request reaches the app.

- A deadline for the request headers (a slowloris defence). uvicorn closes idle keep-alive
  connections, but a client that sends its headers a byte at a time, or opens a connection and
  sends nothing, holds a socket for as long as it likes. One timer per request, armed when the
  connection opens or the request's first byte arrives and cancelled when the headers are
  complete: no timer per read, so a fast request pays for one `call_later`. The body has its own
  deadline in the forwarder (`[server] body_timeout_s`).
- A size and count limit for the headers (431). httptools has none and joins a long header
  piece by piece, so bytes are counted per read while headers are incomplete (one addition per
  read, not per header), and exactly only when that cheap count is over the limit.
- A cap on open connections, checked once per connection, so idle sockets cannot use up the
  process's file descriptors and make every other request fail. At the cap, connections with no
  request in progress (kept alive, or opened and silent) make room, the longest idle first, a
  batch at a time, as nginx reuses its keep-alive connections; only when every connection is
  busy does a new one get a 503. An idle crowd therefore cannot lock out real clients, and an
  HTTP client whose idle connection is closed opens another.
- Pipelined requests whose client leaves. uvicorn tells only the newest request of a connection
  that the client has gone, so with requests pipelined behind it, the one being answered went on
  writing to a closed socket (a RuntimeError in the log) and was captured as delivered. Every
  unanswered request of the connection is told, so the one in flight ends as a client disconnect
  (the primary's call is cancelled, the row says so) and the ones queued behind it never start.
  A client that half-closes (`shutdown(SHUT_WR)`) is a client that left, as in nginx: TCP cannot
  tell "done sending" from "gone".
- Two savings per request on the live path: the request's task is cancelled from here when its
  client leaves (client_disconnect.py: no watcher task per request), and what a connection's
  cycles write in one turn of the event loop leaves in one system call (coalesced_writes.py:
  a buffered answer's head and body, once two `send` calls).

A refused client gets a JSON error and a lingering close: the proxy stops answering, discards
what the client is still sending for a moment, then closes, so the client reads the error
rather than a connection reset.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shadowtap.proxy.client_disconnect import WATCH_EXTENSION, DisconnectWatch
from shadowtap.proxy.coalesced_writes import CoalescingTransport
from shadowtap.proxy.http_errors import error_body

log = logging.getLogger("shadowtap.server")

# How long a refused connection is drained before it is closed. Refused for its headers, the
# client may still be sending megabytes; refused at connect, it sends one request at most.
_LINGER_S = 5.0
_LINGER_AT_CONNECT_S = 1.0
# Connections beyond max_connections that get a 503 and a lingering close; past these, they are
# closed at once, so a flood of connections cannot hold more file descriptors than
# max_connections plus this.
_REFUSALS_IN_FLIGHT = 64
# Idle connections closed at once when a new one arrives at the cap: a batch, so a flood of new
# connections sorts the open ones once per batch rather than once per connection.
_EVICTION_BATCH = 32


def _error_response(status_line: bytes, message: str, code: str, default_headers,
                    type_: str = "invalid_request_error") -> bytes:
    """A complete OpenAI-style JSON error response that ends the connection."""
    body = error_body(message, type_=type_, code=code)
    lines = [status_line]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    lines += [b"content-type: application/json\r\n",
              b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
              b"connection: close\r\n\r\n", body]
    return b"".join(lines)


class _HeadersTooLarge(Exception):
    """Raised inside a parser callback to stop httptools; uvicorn then calls send_400_response."""


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that answers 408 when request headers take longer than the deadline, 431
    when they are too large or too many, and, at the cap, closes idle connections or answers 503."""

    _closed_idle = 0  # idle connections closed to make room, by this process
    _last_eviction_log = float("-inf")

    def __init__(self, *args, header_timeout_s: float, max_header_bytes: int | None = None,
                 max_header_count: int | None = None, max_connections: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_deadline: asyncio.TimerHandle | None = None
        self._headers_begun = False
        self._max_header_bytes = max_header_bytes if max_header_bytes is not None else 1 << 62
        self._max_header_count = max_header_count if max_header_count is not None else 1 << 62
        self._max_connections = max_connections
        self._read_size = 0  # bytes of the read being parsed
        self._first_read = 0  # the read in which this request began (it may hold earlier bytes too)
        self._later_reads = 0  # reads after it, while the headers were still incomplete: all headers
        self._refusal: tuple[bytes, str, str] | None = None
        self._lingering: asyncio.TimerHandle | None = None
        self._unanswered: list = []  # this connection's request cycles, pruned as they complete
        self._idle_since = 0.0  # loop time of the last response or of the connect, for eviction

    @classmethod
    def with_timeout(cls, header_timeout_s: float, **limits: int | None):
        """The protocol factory to give uvicorn.Config(http=...); `limits` are max_header_bytes,
        max_header_count and max_connections."""
        return functools.partial(cls, header_timeout_s=header_timeout_s, **limits)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._idle_since = self.loop.time()
        if (self._max_connections is not None and len(self.connections) > self._max_connections
                and not self._close_idle_connections()):
            self._refuse_connection()
            return
        self._arm()  # a connection that never sends a byte is cut too

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._idle_since = self.loop.time()

    def _is_idle(self) -> bool:
        """No request in progress or queued, not being refused or closed: safe to close."""
        return (not self._headers_begun and self._lingering is None and not self.pipeline
                and (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing())

    def _close_idle_connections(self) -> bool:
        """Close up to a batch of the longest-idle connections; whether any was closed."""
        idle = [connection for connection in self.connections
                if connection is not self and isinstance(connection, HeaderDeadlineProtocol) and connection._is_idle()]
        if not idle:
            return False
        idle.sort(key=lambda connection: connection._idle_since)
        for connection in idle[:_EVICTION_BATCH]:
            connection._disarm()
            connection.transport.close()
        HeaderDeadlineProtocol._closed_idle += min(len(idle), _EVICTION_BATCH)
        if self.loop.time() - HeaderDeadlineProtocol._last_eviction_log >= 10.0:  # a flood logs once per 10 s
            HeaderDeadlineProtocol._last_eviction_log = self.loop.time()
            log.info("connection limit reached; closing idle connections to make room",
                     extra={"closed_so_far": HeaderDeadlineProtocol._closed_idle, "connections": len(self.connections),
                            "max_connections": self._max_connections})
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        for cycle in self._unanswered:  # uvicorn itself tells only self.cycle, the newest
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
                cycle.scope["extensions"][WATCH_EXTENSION]["watch"].client_left()
        self._unanswered.clear()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            return  # refused: drain what the client still sends, never parse it
        self._read_size = len(data)
        if self._headers_begun:
            self._later_reads += self._read_size
        super().data_received(data)
        if self._headers_begun and self._lingering is None and not self.transport.is_closing() and (
                self._later_reads > self._max_header_bytes or len(self.headers) > self._max_header_count):
            # Headers still incomplete and already over a limit: refuse now, before httptools
            # joins any more of them.
            self._refuse_headers(self._later_reads)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_begun = True
        self._first_read, self._later_reads = self._read_size, 0
        if self._header_deadline is None:  # the first request keeps the deadline armed at connect
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._headers_begun = False
        if self._first_read + self._later_reads > self._max_header_bytes or (
                len(self.headers) > self._max_header_count):
            size = _header_section_size(self.url, self.headers)
            if size > self._max_header_bytes or len(self.headers) > self._max_header_count:
                self._refusal = self._headers_refusal(size)
                raise _HeadersTooLarge  # stops the parser; uvicorn calls send_400_response
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:
            return  # a WebSocket upgrade, which this protocol hands on
        # The forwarder's way to learn that the client left, without a task of its own: see
        # client_disconnect.py. (The request's task starts on the loop's next turn, after this.)
        self.scope["extensions"] = {WATCH_EXTENSION: {"watch": DisconnectWatch(cycle)}}
        self._unanswered = [earlier for earlier in self._unanswered if not earlier.response_complete]
        self._unanswered.append(cycle)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's own 400 (unparseable request, conflicting lengths) as JSON like every other
        # error the proxy gives; the request never reaches the app or the primary.
        self._disarm()
        if self._refusal is not None:  # headers over a limit, found in on_headers_complete
            self._refuse(*self._refusal, linger_s=_LINGER_S)
            return
        self.transport.write(_error_response(
            b"HTTP/1.1 400 Bad Request\r\n", f"shadowtap: {msg} It was not forwarded.",
            "invalid_http_request", self.server_state.default_headers))
        self.transport.close()

    def _headers_refusal(self, size: int) -> tuple[bytes, str, str]:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        log.warning("request headers too large; answered 431",
                    extra={"client": client, "header_bytes_at_least": size, "header_count": len(self.headers)})
        return (b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
                f"shadowtap: the request headers exceed the limit of {self._max_header_bytes} bytes "
                f"([server] max_header_bytes) or {self._max_header_count} headers ([server] max_header_count); "
                "it was not forwarded.", "request_headers_too_large")

    def _refuse_headers(self, size: int) -> None:
        self._disarm()
        self._headers_begun = False
        self._refuse(*self._headers_refusal(size), linger_s=_LINGER_S)

    def _refuse_connection(self) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        if len(self.connections) > self._max_connections + _REFUSALS_IN_FLIGHT:  # type: ignore[operator]
            self.transport.close()
            return
        log.warning("connection limit reached; answered 503", extra={"client": client,
                                                                      "connections": len(self.connections)})
        self._refuse(b"HTTP/1.1 503 Service Unavailable\r\n",
                     f"shadowtap: the proxy is at its limit of {self._max_connections} open connections "
                     "([server] max_connections); retry shortly.", "proxy_overloaded",
                     linger_s=_LINGER_AT_CONNECT_S, type_="server_error")

    def _refuse(self, status_line: bytes, message: str, code: str, *, linger_s: float,
                type_: str = "invalid_request_error") -> None:
        """Answer with a JSON error, then close the connection after draining it for `linger_s`
        (sooner when the client closes its side): closing with unread bytes would send a reset
        that can destroy the answer before the client reads it."""
        self.transport.write(_error_response(status_line, message, code, self.server_state.default_headers,
                                             type_=type_))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._lingering = self.loop.call_later(linger_s, self.transport.close)

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self._header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request stalled behind one still being answered: let that answer
            # finish, then close instead of reading the rest.
            self.cycle.keep_alive = False
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        if self._headers_begun:
            log.warning("request headers too slow; answered 408", extra={"client": client})
            self.transport.write(_error_response(
                b"HTTP/1.1 408 Request Timeout\r\n",
                f"shadowtap: the request headers did not arrive within {self._header_timeout_s:g} s "
                "([server] header_timeout_s).", "request_timeout", self.server_state.default_headers))
        else:
            log.info("connection sent nothing in time; closed", extra={"client": client})
        self.transport.close()


def _header_section_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """The request line and header lines as sent, give or take optional whitespace."""
    return len(url) + 16 + sum(len(name) + len(value) + 4 for name, value in headers)
