"""A slow reader slows the upstream down: the client stops reading from the socket past a high-water
mark instead of buffering a whole stream, and reads again once the reader caught up."""

from __future__ import annotations

import asyncio

import pytest

from shadowtap.proxy.upstream_http.connection import HIGH_WATER, UpstreamConnection
from tests.upstream_http.raw_origin import RawOrigin, pool

pytestmark = pytest.mark.timeout(30)

TOTAL = 32 * 1024 * 1024
PIECE = 64 * 1024
ONE_SOCKET_READ = 256 * 1024  # the most asyncio's transport hands over at once


def test_a_reader_that_stops_reading_stops_the_upstream_and_gets_every_byte_once_it_resumes():
    written = [0]

    async def stream(exchange):
        await exchange.read_request()
        await exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % TOTAL)
        piece = bytes(range(256)) * (PIECE // 256)
        while written[0] < TOTAL:
            exchange.writer.write(piece)
            await exchange.writer.drain()  # waits while the client does not read
            written[0] += PIECE

    async def scenario():
        async with RawOrigin(stream) as origin:
            client = pool()
            try:
                response = await client.request("POST", origin.target(), [], b"{}")
                chunks = response.chunks()
                first = await anext(chunks)
                await asyncio.sleep(0.5)  # a slow client: the relay is stuck in send()
                buffered_while_stalled, written_while_stalled = response.buffered, written[0]
                received = len(first) + sum([len(chunk) async for chunk in chunks])
            finally:
                await client.close()
            return buffered_while_stalled, written_while_stalled, received

    buffered, written_while_stalled, received = asyncio.run(scenario())
    assert buffered <= HIGH_WATER + ONE_SOCKET_READ  # the client stopped reading just past the mark
    assert written_while_stalled < TOTAL // 2  # so the upstream was held back (socket buffers aside)
    assert received == TOTAL



class RecordingTransport:
    """Just enough of a transport to see whether the connection is reading."""

    def __init__(self) -> None:
        self.reading = True
        self.written: list[bytes] = []

    def write(self, data) -> None:
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name, default=None):
        return default


def test_a_body_that_crosses_the_high_water_mark_in_its_last_read_leaves_the_pooled_connection_reading():
    async def scenario():
        pooled = []
        connection = UpstreamConnection(asyncio.get_running_loop(), 5.0, pooled.append, lambda _: None)
        transport = RecordingTransport()
        connection.connection_made(transport)  # type: ignore[arg-type]
        response = connection.send(b"POST / HTTP/1.1\r\n\r\n", b"", head_request=False)
        body = b"x" * (HIGH_WATER + 1)
        connection.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        return pooled == [connection], transport.reading, len(b"".join([chunk async for chunk in response.chunks()]))

    assert asyncio.run(scenario()) == (True, True, HIGH_WATER + 1)
