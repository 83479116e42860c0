"""`[store] max_capture_body_bytes` cuts JSON request bodies too: a JSON request over the limit is
stored as its first bytes, flagged `capture_truncated = 1`, never whole as `request_json`."""

from __future__ import annotations

import httpx
import orjson

from shadowtap.core.redaction import Redactor
from shadowtap.proxy.capture.pricing import PriceTable
from shadowtap.proxy.capture.record import CaptureRowBuilder
from tests.support.factories import raw_exchange
from tests.support.store_reading import wait_for_exchange

MIB = 1024 * 1024


def builder(limit: int) -> CaptureRowBuilder:
    return CaptureRowBuilder(redactor=Redactor(), prices=PriceTable({}), client_key_salt=None, max_body_bytes=limit)


def big_request(size: int) -> dict:
    return {"model": "sim-small", "messages": [{"role": "user", "content": "x" * size}]}


def test_a_6_mib_json_request_is_cut_to_the_4_mib_limit_and_flagged():
    row = builder(4 * MIB).build(raw_exchange(request=big_request(6 * MIB)))
    assert row.get("request_json") is None
    assert len(row["request_raw"]) == 4 * MIB
    assert row["capture_truncated"] == 1
    assert row["model"] == "sim-small"


def test_a_json_request_at_the_limit_is_stored_whole():
    request = big_request(1000)
    limit = len(orjson.dumps(request))
    row = builder(limit).build(raw_exchange(request=request))
    assert row["capture_truncated"] == 0
    assert orjson.loads(row["request_json"]) == request


def test_a_json_request_over_the_limit_sent_through_the_proxy_is_stored_cut(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config=f"[store]\nmax_capture_body_bytes = {MIB}\n")
    body = orjson.dumps(big_request(3 * MIB // 2))
    response = httpx.post(f"{proxy.base_url}/chat/completions", content=body,
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 200
    row = wait_for_exchange(proxy.store_path, response.headers["x-shadowtap-exchange-id"], timeout_s=30)
    assert row["request_json"] is None
    assert len(row["request_raw"]) == MIB
    assert row["capture_truncated"] == 1
