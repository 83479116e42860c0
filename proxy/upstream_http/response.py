"""An upstream's answer as the relay reads it: status and raw headers at once, then the body's chunks
as they arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from shadowtap.proxy.upstream_http.errors import BodyBrokeOff, BodyTimedOut, UpstreamHTTPError

if TYPE_CHECKING:
    from shadowtap.proxy.upstream_http.connection import UpstreamConnection


class UpstreamResponse:
    """One response, filled by its connection. The body is buffered only as far as the reader lags:
    past the connection's high-water mark the connection stops reading from the upstream."""

    __slots__ = ("status", "raw_headers", "_connection", "_pieces", "buffered", "finished", "_error",
                 "_waiter", "headers_arrived", "any_byte")

    def __init__(self, connection: UpstreamConnection) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self._connection = connection
        self._pieces: list[bytes] = []
        self.buffered = 0
        self.finished = False          # the whole body arrived
        self._error: UpstreamHTTPError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.headers_arrived = False
        self.any_byte = False          # whether the upstream sent anything of this response

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, each piece as soon as it arrived (what arrived meanwhile, joined). Raises
        BodyBrokeOff when the body ends before its end."""
        while True:
            pieces = self._pieces
            if pieces:
                data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                self._pieces = []
                self.buffered = 0
                self._connection.drained(self)
                yield data
            elif self._error is not None:
                error = self._error
                raise (BodyTimedOut(str(error)) if isinstance(error, TimeoutError) else BodyBrokeOff(str(error)))
            elif self.finished:
                return
            else:
                await self._wait()

    def close(self) -> None:
        """Done with this response: a finished one has already returned its connection to the pool; an
        unfinished one's connection is dropped (its unread rest could not carry another request)."""
        if not self.finished and self._error is None:
            self._error = BodyBrokeOff("the response was closed before its end")
            self._connection.abort()

    async def wait_for_headers(self) -> None:
        while not self.headers_arrived:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def _wait(self) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Called by the connection.

    def deliver_headers(self, status: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.raw_headers = raw_headers
        self.headers_arrived = True
        self._wake()

    def deliver(self, data: bytes) -> None:
        self._pieces.append(data)
        self.buffered += len(data)
        self._wake()

    def finish(self) -> None:
        self.finished = True
        self._wake()

    def fail(self, error: UpstreamHTTPError) -> None:
        if not self.finished and self._error is None:
            self._error = error
            self._wake()
