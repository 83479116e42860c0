"""Factories for records: raw exchanges as the live path produces them, and built store rows."""

from __future__ import annotations

import itertools
import time

import orjson

from shadowtap.core.redaction import Redactor
from shadowtap.proxy.capture.pricing import PriceTable
from shadowtap.proxy.capture.record import CaptureRowBuilder
from shadowtap.proxy.exchange import RawExchange, new_exchange_id

_counter = itertools.count()


def raw_exchange(*, path: str = "/v1/chat/completions", request: dict | bytes | None = None,
                 response: dict | bytes | None = None, status: int = 200,
                 request_headers: list[tuple[bytes, bytes]] | None = None,
                 response_headers: list[tuple[bytes, bytes]] | None = None,
                 started_at: float | None = None, latency_s: float = 0.05) -> RawExchange:
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]} if request is None else request
    response = response if response is not None else {
        "id": "c1", "object": "chat.completion", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
    body = request if isinstance(request, bytes) else orjson.dumps(request)
    answer = response if isinstance(response, bytes) else orjson.dumps(response)
    t0 = 1000.0 + next(_counter)
    return RawExchange(
        id=new_exchange_id(), started_at=started_at or time.time(), t_start=t0, method="POST", path=path, query="",
        request_headers=request_headers or [(b"content-type", b"application/json")], request_body=body,
        status=status, response_headers=response_headers or [(b"content-type", b"application/json")],
        response_chunks=[answer], chunk_times=[t0 + latency_s / 2], t_end=t0 + latency_s)


def row_builder(*, redactor: Redactor | None = None) -> CaptureRowBuilder:
    return CaptureRowBuilder(redactor=redactor or Redactor(), prices=PriceTable({}),
                             client_key_salt=b"test-salt", max_body_bytes=1 << 20)


def capture_from_upstream(store_path, base_url: str, requests: list[dict]) -> list[str]:
    """Send each chat request to a real upstream and store the exchange as the proxy would;
    return the exchange ids in order."""
    import httpx

    from shadowtap.core.store import CaptureStore

    store = CaptureStore.open(store_path)
    builder = row_builder()
    rows = []
    with httpx.Client() as client:
        for index, request in enumerate(requests):
            response = client.post(f"{base_url}/chat/completions", json=request).json()
            rows.append(builder.build(raw_exchange(request=request, response=response,
                                                   started_at=1_700_000_000 + index)))
    store.insert_exchanges(rows)
    store.close()
    return [row["id"] for row in rows]
