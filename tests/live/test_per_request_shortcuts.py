"""The live path's per-request shortcuts keep the answers they replace: exchange ids, the path
check's memory, cached metric children, and the disconnect watch the server protocol hands in."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from shadowtap.proxy.client_disconnect import WATCH_EXTENSION, DisconnectWatch, body_received, watch_for_disconnect
from shadowtap.proxy.dialects import dialect_for_path
from shadowtap.proxy.exchange import _CROCKFORD, new_exchange_id
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.upstream_path import UnsafePath, upstream_suffix
from tests.support.factories import raw_exchange


def _as_number(exchange_id: str) -> int:
    value = 0
    for character in exchange_id:
        value = value * 32 + _CROCKFORD.index(character)
    return value


def test_an_exchange_id_is_26_crockford_characters_whose_top_48_bits_are_the_milliseconds():
    before = time.time_ns() // 1_000_000
    exchange_id = new_exchange_id()
    after = time.time_ns() // 1_000_000
    assert len(exchange_id) == 26 and set(exchange_id) <= set(_CROCKFORD)
    assert before <= _as_number(exchange_id) >> 80 <= after


def test_exchange_ids_are_unique_and_sort_by_time_when_made_a_millisecond_apart():
    ids = [new_exchange_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    earlier = new_exchange_id()
    time.sleep(0.002)
    assert new_exchange_id() > earlier


def test_every_random_character_of_an_exchange_id_takes_every_value():
    seen = [set() for _ in range(16)]
    for _ in range(2_000):
        for position, character in enumerate(new_exchange_id()[10:]):
            seen[position].add(character)
    assert all(len(characters) == 32 for characters in seen)


def test_a_remembered_path_gives_the_same_suffix_and_a_refused_one_stays_refused():
    assert upstream_suffix(b"/v1/chat/completions") == "/chat/completions"
    assert upstream_suffix(b"/v1/chat/completions") == "/chat/completions"
    for _ in range(2):
        with pytest.raises(UnsafePath):
            upstream_suffix(b"/v1/%2e%2e/admin")


def test_a_long_path_is_checked_each_time_and_gets_the_same_answer():
    long_path = b"/v1/files/" + b"a" * 300
    assert upstream_suffix(long_path) == long_path[3:].decode()
    with pytest.raises(UnsafePath):
        upstream_suffix(long_path + b"/%2e%2e")


def test_request_counts_by_endpoint_and_status_are_exposed_as_before_when_children_are_cached():
    metrics = ProxyMetrics()
    for status in (200, 200, 429, 0):
        metrics.observe_exchange(raw_exchange(status=status))
    text = metrics.render().decode()
    assert 'shadowtap_requests_total{endpoint="chat.completions",status="200"} 2.0' in text
    assert 'shadowtap_requests_total{endpoint="chat.completions",status="429"} 1.0' in text
    assert 'shadowtap_requests_total{endpoint="chat.completions",status="other"} 1.0' in text
    assert 'shadowtap_upstream_latency_seconds_count{endpoint="chat.completions"} 4.0' in text


def _cycle(*, disconnected: bool = False) -> SimpleNamespace:
    flow = SimpleNamespace(resumed=0)
    flow.resume_reading = lambda: setattr(flow, "resumed", flow.resumed + 1)
    return SimpleNamespace(disconnected=disconnected, flow=flow)


async def _never_receive():
    await asyncio.Event().wait()


def test_the_server_watch_cancels_the_request_when_the_client_leaves():
    async def scenario():
        cycle = _cycle()
        watch = DisconnectWatch(cycle)
        request = asyncio.ensure_future(asyncio.sleep(10))
        scope = {"extensions": {WATCH_EXTENSION: {"watch": watch}}}
        assert watch_for_disconnect(scope, _never_receive, request) is watch
        assert cycle.flow.resumed == 1  # reading resumes, as a watcher's receive() did
        watch.client_left()
        with pytest.raises(asyncio.CancelledError):
            await request
        return watch.client_gone

    assert asyncio.run(scenario()) is True


def test_the_server_watch_cancels_nothing_once_the_response_is_complete():
    async def scenario():
        watch = DisconnectWatch(_cycle())
        request = asyncio.ensure_future(asyncio.sleep(0.01, result="answered"))
        watch.start(request)
        watch.cancel()
        watch.client_left()
        return await request, watch.client_gone

    assert asyncio.run(scenario()) == ("answered", False)


def test_the_server_watch_cancels_at_once_when_the_client_left_before_it_started():
    async def scenario():
        watch = DisconnectWatch(_cycle(disconnected=True))
        request = asyncio.ensure_future(asyncio.sleep(10))
        watch.start(request)
        with pytest.raises(asyncio.CancelledError):
            await request
        return watch.client_gone

    assert asyncio.run(scenario()) is True


def test_without_the_server_watch_a_task_waits_for_the_disconnect_message():
    async def scenario():
        messages: asyncio.Queue = asyncio.Queue()
        request = asyncio.ensure_future(asyncio.sleep(10))
        watch = watch_for_disconnect({"type": "http"}, messages.get, request)
        await messages.put({"type": "http.request", "body": b"", "more_body": False})
        await messages.put({"type": "http.disconnect"})
        with pytest.raises(asyncio.CancelledError):
            await request
        return watch.client_gone

    assert asyncio.run(scenario()) is True


def test_the_body_counts_as_received_only_when_the_protocol_says_it_all_arrived():
    cycle = _cycle()
    scope = {"extensions": {WATCH_EXTENSION: {"watch": DisconnectWatch(cycle)}}}
    cycle.more_body = True
    assert body_received(scope) is False
    cycle.more_body = False
    assert body_received(scope) is True
    assert body_received({"type": "http"}) is False  # another server: the body deadline is always armed


def test_a_remembered_path_keeps_its_dialect_and_a_long_path_is_looked_up_each_time():
    assert [dialect_for_path("/v1/messages").name for _ in range(2)] == ["anthropic.messages"] * 2
    assert dialect_for_path("/v1/threads/t1/messages").name == "other"
    assert dialect_for_path("/v1/" + "x" * 300 + "/chat/completions").name == "chat.completions"
