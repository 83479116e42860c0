"""PrimaryClient turns the upstream client's failures before an answer into shadowtap's UpstreamError
kinds, each naming the configured base URL."""

from __future__ import annotations

import asyncio
import socket

import pytest

from shadowtap.core.config import PrimaryConfig
from shadowtap.core.errors import UpstreamTimeout, UpstreamUnreachable
from shadowtap.proxy.upstream import PrimaryClient
from tests.upstream_http.raw_origin import RawOrigin

pytestmark = pytest.mark.timeout(30)


def send_to(base_url: str, **settings):
    async def scenario():
        client = PrimaryClient(PrimaryConfig(base_url=base_url, **settings))
        await client.start()
        try:
            return await client.send("POST", client.url_for("/chat/completions", b""), [], b"{}")
        finally:
            await client.close()

    return asyncio.run(scenario())


def test_a_refused_connection_is_unreachable_and_names_the_base_url():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(UpstreamUnreachable, match=f"could not connect to the primary upstream at {base_url}"):
        send_to(base_url)


def run_against(handler, **settings):
    async def scenario():
        async with RawOrigin(handler) as origin:
            client = PrimaryClient(PrimaryConfig(base_url=origin.url(), **settings))
            await client.start()
            try:
                await client.send("POST", client.url_for("/chat/completions", b""), [], b"{}")
            finally:
                await client.close()

    asyncio.run(scenario())


def test_a_connection_closed_before_any_answer_is_unreachable():
    async def drop(exchange):
        await exchange.read_request()
        exchange.close()

    with pytest.raises(UpstreamUnreachable, match="failed before answering: ConnectionClosed"):
        run_against(drop)


def test_no_answer_within_read_timeout_s_is_a_timeout():
    async def silent(exchange):
        await exchange.read_request()
        await asyncio.sleep(5)

    with pytest.raises(UpstreamTimeout, match="did not answer in time"):
        run_against(silent, read_timeout_s=0.2)
