"""`x-shadowtap-exchange-id` is sent only where it names a captured exchange, and then it resolves
with `shadowtap captures show ID`."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from shadowtap.core.cli import cli
from shadowtap.proxy.app import ShadowtapApp
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.metrics import ProxyMetrics
from tests.support.store_reading import wait_for_exchange

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def forwarder_that_always_sends_the_id(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"x-shadowtap-exchange-id", b"01ID")]})
    await send({"type": "http.response.body", "body": b"{}"})


def app(*, capture_all_endpoints: bool = False) -> ShadowtapApp:
    writer = CaptureWriter(lambda: None, lambda store: None, ProxyMetrics(), queue_size=1, batch_size=1,
                           flush_interval_s=1, capture_all_endpoints=capture_all_endpoints)
    return ShadowtapApp(forwarder_that_always_sends_the_id, admin=None, metrics=ProxyMetrics(), client_keys=[],
                        keys_in_authorization=False, captures=writer.captures)


async def exchange_id_header(application: ShadowtapApp, method: str, path: str) -> str | None:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
        response = await client.request(method, path)
    assert response.status_code == 200
    return response.headers.get("x-shadowtap-exchange-id")


@pytest.mark.parametrize("method, path", [("GET", "/v1/models"), ("GET", "/v1/models/gpt-4o"),
                                          ("POST", "/v1/no/such/endpoint"), ("GET", "/v1")])
async def test_no_exchange_id_is_sent_for_a_path_that_is_not_captured(method, path):
    assert await exchange_id_header(app(), method, path) is None


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"])
async def test_the_exchange_id_is_sent_for_the_captured_endpoints(path):
    assert await exchange_id_header(app(), "POST", path) == "01ID"


async def test_every_path_carries_the_id_when_every_endpoint_is_captured():
    assert await exchange_id_header(app(capture_all_endpoints=True), "GET", "/v1/models") == "01ID"


def test_every_exchange_id_a_client_receives_resolves_with_captures_show(proxy):
    with httpx.Client(base_url=proxy.base_url, timeout=10) as client:
        chat = client.post("/chat/completions", json={"model": "sim-small",
                                                      "messages": [{"role": "user", "content": "ids resolve"}]})
        models = client.get("/models")
        missing = client.post("/no/such/endpoint", json={})
    assert chat.status_code == 200 and models.status_code == 200 and missing.status_code == 404
    assert "x-shadowtap-exchange-id" not in models.headers
    assert "x-shadowtap-exchange-id" not in missing.headers
    exchange_id = chat.headers["x-shadowtap-exchange-id"]
    wait_for_exchange(proxy.store_path, exchange_id)
    shown = CliRunner().invoke(cli, ["captures", "show", exchange_id, "--store", str(proxy.store_path)])
    assert shown.exit_code == 0, shown.output
    assert exchange_id in shown.output
