"""The upstream client's connection pool: keep-alive reuse, the connection limit, and connections the
upstream closed while they were pooled."""

from __future__ import annotations

import asyncio

import pytest

from shadowtap.proxy.upstream_http import ConnectionClosed
from tests.upstream_http.raw_origin import RawOrigin, answer_each_request, body_of, ok, pool

pytestmark = pytest.mark.timeout(30)


def test_a_finished_response_leaves_its_connection_to_carry_the_next_request():
    async def scenario():
        async with RawOrigin(answer_each_request) as origin:
            client = pool()
            try:
                for _ in range(3):
                    response = await client.request("POST", origin.target(), [], b"{}")
                    assert await body_of(response) == b"ok"
            finally:
                await client.close()
            return len(origin.connections), origin.requests

    assert asyncio.run(scenario()) == (1, 3)


def test_requests_beyond_max_connections_wait_for_a_free_connection_and_then_use_it():
    release = asyncio.Event()

    async def slow_answers(exchange):
        while await exchange.read_request() is not None:
            await release.wait()
            await exchange.answer(ok())

    async def scenario():
        async with RawOrigin(slow_answers) as origin:
            client = pool(max_connections=2)
            try:
                requests = [asyncio.ensure_future(client.request("POST", origin.target(), [], b"{}")) for _ in range(5)]
                await asyncio.sleep(0.2)
                waiting = sum(not request.done() for request in requests)
                opened = client.open_connections
                release.set()
                bodies = [await body_of(await request) for request in requests]
            finally:
                await client.close()
            return waiting, opened, bodies, len(origin.connections)

    waiting, opened, bodies, connections = asyncio.run(scenario())
    assert waiting == 5 and opened == 2
    assert bodies == [b"ok"] * 5 and connections == 2


def test_waiting_for_a_free_connection_longer_than_the_connect_timeout_raises_timeout():
    async def never_answers(exchange):
        await exchange.read_request()
        await asyncio.sleep(10)

    async def scenario():
        async with RawOrigin(never_answers) as origin:
            client = pool(max_connections=1, connect_timeout_s=0.2, read_timeout_s=5)
            try:
                first = asyncio.ensure_future(client.request("POST", origin.target(), [], b"{}"))
                await asyncio.sleep(0.05)
                with pytest.raises(TimeoutError):
                    await client.request("POST", origin.target(), [], b"{}")
                first.cancel()
            finally:
                await client.close()

    asyncio.run(scenario())


def test_a_pooled_connection_the_upstream_closed_while_idle_is_replaced_by_a_fresh_one():
    async def answer_once_then_close(exchange):
        await exchange.read_request()
        await exchange.answer(ok())  # says nothing of closing: the client pools the connection
        await asyncio.sleep(0.05)
        exchange.close()

    async def scenario():
        async with RawOrigin(answer_once_then_close) as origin:
            client = pool()
            try:
                assert await body_of(await client.request("POST", origin.target(), [], b"{}")) == b"ok"
                await asyncio.sleep(0.2)  # the close reaches the pooled connection
                second = await body_of(await client.request("POST", origin.target(), [], b"{}"))
            finally:
                await client.close()
            return second, [len(connection.bodies) for connection in origin.connections]

    assert asyncio.run(scenario()) == (b"ok", [1, 1])


def test_a_post_is_never_sent_twice_when_a_reused_connection_closes_without_answering():
    async def answer_first_then_drop(exchange):
        await exchange.read_request()
        await exchange.answer(ok())
        await exchange.read_request()  # read, perhaps acted on, never answered
        exchange.close()

    async def scenario():
        async with RawOrigin(answer_first_then_drop) as origin:
            client = pool()
            try:
                await body_of(await client.request("POST", origin.target(), [], b"{}"))
                with pytest.raises(ConnectionClosed):
                    await client.request("POST", origin.target(), [], b'{"second": true}')
            finally:
                await client.close()
            return [connection.bodies for connection in origin.connections]

    assert asyncio.run(scenario()) == [[b"{}", b'{"second": true}']]


def test_a_get_is_sent_again_on_a_new_connection_when_a_reused_one_closes_without_answering():
    async def answer_first_then_drop(exchange):
        await exchange.read_request()
        await exchange.answer(ok())
        await exchange.read_request()
        exchange.close()

    async def scenario():
        async with RawOrigin(answer_first_then_drop) as origin:
            client = pool()
            try:
                await body_of(await client.request("GET", origin.target("/models"), [], b""))
                answer = await body_of(await client.request("GET", origin.target("/models"), [], b""))
            finally:
                await client.close()
            return answer, [len(connection.heads) for connection in origin.connections]

    assert asyncio.run(scenario()) == (b"ok", [2, 1])


def test_a_request_on_a_new_connection_is_not_resent_when_the_upstream_closes_without_answering():
    async def drop(exchange):
        await exchange.read_request()
        exchange.close()

    async def scenario():
        async with RawOrigin(drop) as origin:
            client = pool()
            try:
                with pytest.raises(ConnectionClosed):
                    await client.request("GET", origin.target("/models"), [], b"")
            finally:
                await client.close()
            return origin.requests

    assert asyncio.run(scenario()) == 1


def test_an_unfinished_response_closed_by_the_reader_drops_its_connection_instead_of_pooling_it():
    async def long_answer(exchange):
        while await exchange.read_request() is not None:
            await exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")

    async def scenario():
        async with RawOrigin(long_answer) as origin:
            client = pool()
            try:
                response = await client.request("POST", origin.target(), [], b"{}")
                response.close()
                await asyncio.sleep(0.05)
                return client.open_connections, client.idle_connections
            finally:
                await client.close()

    assert asyncio.run(scenario()) == (0, 0)
