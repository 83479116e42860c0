"""One keep-alive HTTP/1.1 connection to an upstream, carrying one request at a time.

An asyncio Protocol feeding httptools' response parser (llhttp, as uvicorn uses on the other side):
no stream reader, payload writer or per-request timer objects between the socket and the relay.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

import httptools

from shadowtap.proxy.upstream_http.errors import ConnectionClosed, InvalidResponse, ReadTimeout
from shadowtap.proxy.upstream_http.response import UpstreamResponse

# Flow control: past this much unread body the connection stops reading from the upstream, and it
# reads again once the relay has taken what was buffered (aiohttp's reader pauses at 128 KiB too).
HIGH_WATER = 128 * 1024
LOW_WATER = 32 * 1024
_FRAMING_HEADERS = (b"content-length", b"transfer-encoding")


class UpstreamConnection(asyncio.Protocol):
    """A pooled connection. `send` starts a request and returns its response; when the response's
    body ended cleanly on a connection the upstream keeps open, `on_reusable` hands it back to the pool;
    `on_closed` tells the pool it is gone."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout_s: float,
                 on_reusable: Callable[[UpstreamConnection], None],
                 on_closed: Callable[[UpstreamConnection], None]) -> None:
        self._loop = loop
        self._read_timeout_s = read_timeout_s
        self._on_reusable = on_reusable
        self._on_closed = on_closed
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._response: UpstreamResponse | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._informational = False
        self._head_request = False
        self._close_delimited = False
        self._paused = False
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.requests = 0           # requests sent on it so far
        self.idle_since = 0.0

    @property
    def usable(self) -> bool:
        """Whether a new request may be sent on it: open, not closing, not half-closed, not busy."""
        transport = self._transport
        return (not self.closed and self._response is None and transport is not None
                and not transport.is_closing())

    def send(self, head: bytes, body: bytes | bytearray | memoryview, *, head_request: bool) -> UpstreamResponse:
        transport = self._transport
        assert transport is not None and self._response is None
        response = self._response = UpstreamResponse(self)
        self.requests += 1
        self._headers = []
        self._informational = False
        self._head_request = head_request
        if not body:
            transport.write(head)
        elif len(body) <= 65536:
            transport.write(head + body)   # one write, one packet when small
        else:
            transport.write(head)
            transport.write(body)
        self._last_read = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._last_read + self._read_timeout_s, self._check_read_deadline)
        return response

    def abort(self) -> None:
        """Drop the connection at once: what is unread of a response cannot be skipped over reliably."""
        if self._transport is not None and not self.closed:
            self._transport.abort()
        self._lost(ConnectionClosed("the connection was dropped"))

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()

    def drained(self, response: UpstreamResponse) -> None:
        """`response`'s reader took what was buffered."""
        if self._paused and response is self._response and response.buffered <= LOW_WATER:
            self._paused = False
            if self._transport is not None and not self.closed:
                self._transport.resume_reading()
                self._last_read = self._loop.time()
                if self._timer is None:
                    self._timer = self._loop.call_at(self._last_read + self._read_timeout_s,
                                                     self._check_read_deadline)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is one in all but name
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # requests go out in one write and must not wait for an ACK (Nagle)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        response = self._response
        if response is None:
            # Bytes nobody asked for (an idle connection's late "408" before a close): the
            # connection's framing can no longer be trusted.
            self.abort()
            return
        response.any_byte = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish_unreusable()   # a 101: what follows is another protocol, never relayed
        except httptools.HttpParserError as exc:
            self._lost(InvalidResponse(f"the upstream's answer is not valid HTTP/1.1: {exc}"))
            self.abort()

    def eof_received(self) -> bool:
        response = self._response
        if response is not None and response.headers_arrived and self._close_delimited:
            self._finish_unreusable()  # a body without length or chunking ends with the connection
        else:
            self._lost(ConnectionClosed("the upstream closed the connection"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        response = self._response
        if exc is None and response is not None and response.headers_arrived and self._close_delimited:
            self._finish_unreusable()
        detail = f": {exc}" if exc is not None else ""
        self._lost(ConnectionClosed(f"the upstream closed the connection{detail}"))

    def pause_writing(self) -> None:  # a large body the upstream reads slowly: the transport buffers it
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        response = self._response
        if response is None:  # a second answer to one request
            raise InvalidResponse("the upstream sent a response nobody asked for")
        if 100 <= status < 200 and status != 101:
            self._informational = True  # "100 Continue" and friends: the real answer follows
            self._headers = []
            return
        headers = self._headers
        self._close_delimited = status not in (204, 304) and not any(
            name.lower() in _FRAMING_HEADERS for name, _ in headers)
        response.deliver_headers(status, headers)
        if self._head_request:
            self._finish_unreusable()  # a HEAD answer has no body, whatever its length says

    def on_body(self, body: bytes) -> None:
        response = self._response
        if response is None:
            return
        response.deliver(body)
        if response.buffered > HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        response = self._response
        if response is None or response.finished:
            return
        self._response = None
        response.finish()
        if self._paused and self._transport is not None:  # the last bytes came with the pause
            self._paused = False
            self._transport.resume_reading()
        if self._parser.should_keep_alive() and not self.closed:
            self.idle_since = self._loop.time()
            self._on_reusable(self)
        else:
            self.close()

    # internals

    def _finish_unreusable(self) -> None:
        response = self._response
        self._response = None
        if response is not None:
            response.finish()
        self.close()

    def _lost(self, error: ConnectionClosed | InvalidResponse | ReadTimeout) -> None:
        response = self._response
        self._response = None
        if response is not None:
            response.fail(error)
        if not self.closed:
            self.closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._on_closed(self)

    def _check_read_deadline(self) -> None:
        # One timer per connection, moved on only when it fires: data arriving costs no timer work.
        self._timer = None
        if self._response is None or self._paused or self.closed:
            return
        due = self._last_read + self._read_timeout_s
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check_read_deadline)
            return
        self._lost(ReadTimeout(f"no byte from the upstream for {self._read_timeout_s:g} s"))
        self.abort()
