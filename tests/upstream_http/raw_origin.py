"""An HTTP origin on loopback that answers with exactly the bytes a test scripts, and records what
it received: the way to see framing, keep-alive and closes as the client meets them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shadowtap.proxy.upstream_http import ConnectionPool, Origin, RequestTarget


@dataclass
class Received:
    """What one connection delivered: each request's head (line and headers) and body."""

    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


class Exchange:
    """One connection as the scripted handler sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, received: Received) -> None:
        self.reader, self.writer, self.received = reader, writer, received

    async def read_request(self) -> bytes | None:
        """The next request's head; its body is read by Content-Length. None when the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length) if length else b""
        self.received.heads.append(head)
        self.received.bodies.append(body)
        return head

    async def answer(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[Exchange], Awaitable[None]]


class RawOrigin:
    """`async with RawOrigin(handler) as origin:` serves each connection with `handler`."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._tls = tls
        self.connections: list[Received] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> RawOrigin:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        return self

    async def __aexit__(self, *exc_info) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}/v1"

    def target(self, path: str = "/chat/completions", host: str = "127.0.0.1") -> RequestTarget:
        return RequestTarget.of(Origin.parse(self.url(host)), path, b"")

    @property
    def requests(self) -> int:
        return sum(len(connection.heads) for connection in self.connections)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = Received()
        self.connections.append(received)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(Exchange(reader, writer, received))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


def ok(body: bytes = b"ok", *extra: bytes) -> bytes:
    """A keep-alive answer with a Content-Length body."""
    headers = b"".join(line + b"\r\n" for line in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), headers, body)


async def answer_each_request(exchange: Exchange, data: bytes = ok()) -> None:
    """Keep-alive: answer every request on the connection the same way, until the client leaves."""
    while await exchange.read_request() is not None:
        await exchange.answer(data)


def pool(**overrides) -> ConnectionPool:
    settings = {"max_connections": 10, "connect_timeout_s": 2.0, "read_timeout_s": 2.0, **overrides}
    return ConnectionPool(**settings)


async def body_of(response) -> bytes:
    return b"".join([chunk async for chunk in response.chunks()])
