"""Pooled keep-alive connections to at most a few configured origins, and the one call that sends a
request over them.

The pool holds at most `max_connections` connections, idle or busy, for all origins together; a
caller that finds none free waits, within `connect_timeout_s` for the wait and the connect together
(as aiohttp's `connect` timeout does).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from shadowtap.proxy.upstream_http.connection import UpstreamConnection
from shadowtap.proxy.upstream_http.errors import ConnectFailed, ConnectionClosed
from shadowtap.proxy.upstream_http.origin import Origin, RequestTarget
from shadowtap.proxy.upstream_http.request_head import request_head
from shadowtap.proxy.upstream_http.response import UpstreamResponse

# A connection idle this long is closed by us rather than reused (aiohttp's default keep-alive).
IDLE_TIMEOUT_S = 15.0
# Methods a server must be able to receive twice (RFC 9110 §9.2.2): the only ones resent when a
# reused connection turns out to have been closed before any byte of the answer (aiohttp's rule).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class ConnectionPool:
    """Connections to the origins requests name; `request` sends one and returns its response."""

    def __init__(self, *, max_connections: int, connect_timeout_s: float, read_timeout_s: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._limit = max_connections
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._ssl_context = ssl_context
        self._idle: dict[tuple[bool, str, int], list[UpstreamConnection]] = {}
        self._keys: dict[UpstreamConnection, tuple[bool, str, int]] = {}   # every open connection
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        return len(self._keys)

    @property
    def idle_connections(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    async def request(self, method: str, target: RequestTarget, headers: list[tuple[str, str]],
                      body: bytes | bytearray | memoryview) -> UpstreamResponse:
        """Send the request and return once the response's status and headers arrived."""
        head = request_head(method, target, headers, len(body))
        origin = target.origin
        head_request = method == "HEAD"
        connection = self._idle_connection(origin) or await self._new_or_freed_connection(origin)
        retried = False
        while True:
            if connection.usable:
                reused = connection.requests > 0
                response = connection.send(head, body, head_request=head_request)
                try:
                    await response.wait_for_headers()
                    return response
                except ConnectionClosed:
                    # The upstream closed a kept-alive connection as the request went out. Resent only
                    # when that is harmless: the server may have acted on a POST it never answered.
                    if retried or not (reused and not response.any_byte and method in _IDEMPOTENT):
                        raise
                except BaseException:
                    connection.abort()
                    raise
            else:
                connection.abort()
                if retried:  # closed as soon as it opened, twice: nothing was sent
                    raise ConnectionClosed("the upstream closed the connection before the request was sent")
            retried = True
            connection = await self._new_or_freed_connection(origin)

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self._keys):
            connection.abort()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionClosed("the upstream client was closed"))

    def _idle_connection(self, origin: Origin) -> UpstreamConnection | None:
        idle = self._idle.get(origin.key)
        while idle:
            connection = idle.pop()  # the most recently used: least likely to have been closed
            if connection.usable:
                return connection
            connection.abort()
        return None

    async def _new_or_freed_connection(self, origin: Origin) -> UpstreamConnection:
        async with asyncio.timeout(self._connect_timeout_s):
            while True:
                connection = self._idle_connection(origin)
                if connection is not None:
                    return connection
                if len(self._keys) < self._limit or self._close_idle_elsewhere(origin):
                    return await self._connect(origin)
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        self._wake_one()  # woken but leaving (timed out, cancelled): pass the turn on
                    else:
                        self._waiters.remove(waiter)
                    raise

    async def _connect(self, origin: Origin) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        connection = UpstreamConnection(loop, self._read_timeout_s, self._reusable, self._gone)
        self._keys[connection] = origin.key  # counts against the limit while it connects
        try:
            await loop.create_connection(lambda: connection, origin.host, origin.port,
                                         ssl=self._tls_context() if origin.tls else None)
        except OSError as exc:  # refused, unreachable, no such host, bad certificate, out of files
            self._gone(connection)
            raise ConnectFailed(exc) from None
        except BaseException:  # cancelled or timed out while connecting
            self._gone(connection)
            raise
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()  # verifies certificates and host names
        return self._ssl_context

    def _close_idle_elsewhere(self, origin: Origin) -> bool:
        """Make room for `origin` by closing an idle connection to another origin, if there is one."""
        for key, idle in self._idle.items():
            if key != origin.key and idle:
                idle.pop(0).abort()
                return True
        return False

    def _reusable(self, connection: UpstreamConnection) -> None:
        key = self._keys.get(connection)
        if key is None or self._closed:
            connection.abort()
            return
        self._idle.setdefault(key, []).append(connection)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT_S, self._sweep)
        self._wake_one()

    def _gone(self, connection: UpstreamConnection) -> None:
        key = self._keys.pop(connection, None)
        if key is None:
            return
        idle = self._idle.get(key)
        if idle and connection in idle:  # the upstream closed it while it waited in the pool
            idle.remove(connection)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close connections idle for longer than IDLE_TIMEOUT_S (they lie at the bottom of each list)."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for idle in self._idle.values():
            while idle and (not idle[0].usable or now - idle[0].idle_since > IDLE_TIMEOUT_S):
                idle.pop(0).abort()
        if any(self._idle.values()):
            self._sweeper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT_S, self._sweep)
