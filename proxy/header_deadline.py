"""uvicorn's HTTP protocol with a deadline for a client's request headers (a slowloris defence).

uvicorn closes idle keep-alive connections, but a client that sends its headers a byte at a time,
or opens a connection and sends nothing, holds a socket for as long as it likes. This protocol
arms one timer per request, when the connection opens or the request's first byte arrives, and
cancels it when the headers are complete: no timer per read, so a fast request pays for one
`call_later`. The request body has its own deadline in the forwarder (`[server] body_timeout_s`).
"""

from __future__ import annotations

import asyncio
import functools
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shadowtap.proxy.http_errors import error_body

log = logging.getLogger("shadowtap.server")


def _error_response(status_line: bytes, message: str, code: str, default_headers) -> bytes:
    """A complete OpenAI-style JSON error response that ends the connection."""
    body = error_body(message, type_="invalid_request_error", code=code)
    lines = [status_line]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    lines += [b"content-type: application/json\r\n",
              b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
              b"connection: close\r\n\r\n", body]
    return b"".join(lines)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that answers 408 when request headers take longer than the deadline."""

    def __init__(self, *args, header_timeout_s: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_deadline: asyncio.TimerHandle | None = None
        self._headers_begun = False

    @classmethod
    def with_timeout(cls, header_timeout_s: float):
        """The protocol factory to give uvicorn.Config(http=...)."""
        return functools.partial(cls, header_timeout_s=header_timeout_s)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is cut too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_begun = True
        if self._header_deadline is None:  # the first request keeps the deadline armed at connect
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._headers_begun = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's own 400 (unparseable request, conflicting lengths) as JSON like every other
        # error the proxy gives; the request never reaches the app or the primary.
        self._disarm()
        self.transport.write(_error_response(
            b"HTTP/1.1 400 Bad Request\r\n", f"shadowtap: {msg} It was not forwarded.",
            "invalid_http_request", self.server_state.default_headers))
        self.transport.close()

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
