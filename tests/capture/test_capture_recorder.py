"""The recorder link and a real recorder process, without HTTP: what the live side hands over is
written, however far ahead of the socket it gets, and the counts come back to its metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time

import orjson
import pytest

from shadowtap.core.store import CaptureStore
from shadowtap.proxy.capture.recorder import RECORDER_NICENESS
from shadowtap.proxy.capture.recorder_link import RecorderLink
from shadowtap.proxy.capture.recorder_start import RecorderOptions, RowBuilderSettings
from shadowtap.proxy.exchange import RawExchange, new_exchange_id
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.process_names import CAPTURE_RECORDER

pytestmark = pytest.mark.e2e

SETTINGS = RowBuilderSettings(emails=True, phones=True, card_numbers=True, patterns=(), replacement="[REDACTED:{kind}]",
                              client_key_salt=None, max_body_bytes=1 << 20)
EXCHANGES = 300
BODY_PADDING = 100_000  # 300 exchanges of 100 KB: far more than a socket buffer takes at once


def an_exchange(index: int) -> RawExchange:
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{index} " + "x" * BODY_PADDING}]}
    answer = {"id": f"c{index}", "object": "chat.completion", "model": "gpt-4o-mini",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {index}"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    return RawExchange(id=new_exchange_id(), started_at=1_765_000_000.0 + index, t_start=1.0, method="POST",
                       path="/v1/chat/completions", query="",
                       request_headers=[(b"content-type", b"application/json")], request_body=orjson.dumps(request),
                       status=200, response_headers=[(b"content-type", b"application/json")],
                       response_chunks=[orjson.dumps(answer)], chunk_times=[1.5], t_upstream_start=1.1,
                       t_upstream_headers=1.4, t_response_started=1.45, t_end=1.6)


def stored_ids(path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("select id from exchanges")}
    finally:
        connection.close()


def test_every_exchange_handed_over_faster_than_the_socket_drains_is_written_and_counted(tmp_path):
    store_path = tmp_path / "captures.db"
    CaptureStore.open(store_path).close()
    metrics = ProxyMetrics()
    exchanges = [an_exchange(index) for index in range(EXCHANGES)]

    async def hand_over() -> tuple[list[bool], RecorderLink]:
        link = RecorderLink(str(store_path), SETTINGS, RecorderOptions(
            queue_size=10_000, batch_size=50, flush_interval_s=0.02, capture_all_endpoints=False,
            queue_max_bytes=None), metrics, asyncio.get_running_loop())
        link.start()
        accepted = [link.submit(exchange) for exchange in exchanges]
        await asyncio.sleep(0.05)  # the loop writes what the socket takes; the rest waits its turn
        link.close(timeout_s=120)
        return accepted, link

    accepted, link = asyncio.run(hand_over())

    assert all(accepted)
    assert stored_ids(store_path) == {exchange.id for exchange in exchanges}
    assert link.written == EXCHANGES and link.lost_at_shutdown == 0
    assert metrics.registry.get_sample_value("shadowtap_capture_written_total") == EXCHANGES
    assert metrics.registry.get_sample_value("shadowtap_capture_enqueued_total") == EXCHANGES


def test_exchanges_beyond_the_queue_size_not_yet_read_by_the_recorder_are_dropped_and_counted(tmp_path):
    store_path = tmp_path / "captures.db"
    CaptureStore.open(store_path).close()
    metrics = ProxyMetrics()

    async def hand_over() -> list[bool]:
        link = RecorderLink(str(store_path), SETTINGS, RecorderOptions(
            queue_size=5, batch_size=50, flush_interval_s=0.02, capture_all_endpoints=False, queue_max_bytes=None),
            metrics, asyncio.get_running_loop())
        link.start()
        # All in one turn of the loop: the recorder cannot have read any of them yet.
        accepted = [link.submit(an_exchange(index)) for index in range(8)]
        link.close(timeout_s=120)
        return accepted

    accepted = asyncio.run(hand_over())

    assert accepted == [True] * 5 + [False] * 3
    assert metrics.registry.get_sample_value("shadowtap_capture_dropped_total", {"reason": "queue_full"}) == 3
    assert len(stored_ids(store_path)) == 5


def recorder_pids() -> list[int]:
    """This process's children named as the recorder names itself (Linux's /proc)."""
    children = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as listed:
            children += [int(pid) for pid in listed.read().split()]
    named = []
    for pid in children:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as comm:
            if comm.read().strip() == CAPTURE_RECORDER[:15]:  # the kernel keeps 15 characters
                named.append(pid)
    return named


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads the recorder's niceness from /proc")
def test_recorder_runs_a_little_below_the_live_process_priority(tmp_path):
    store_path = tmp_path / "captures.db"
    CaptureStore.open(store_path).close()

    async def niceness_seen() -> list[int]:
        link = RecorderLink(str(store_path), SETTINGS, RecorderOptions(
            queue_size=100, batch_size=10, flush_interval_s=0.02, capture_all_endpoints=False,
            queue_max_bytes=None), ProxyMetrics(), asyncio.get_running_loop())
        link.start()
        try:
            link.submit(an_exchange(0))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not recorder_pids():
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # it names itself, then lowers its priority
            return [os.getpriority(os.PRIO_PROCESS, pid) for pid in recorder_pids()]
        finally:
            link.close(timeout_s=60)

    assert asyncio.run(niceness_seen()) == [min(19, os.getpriority(os.PRIO_PROCESS, 0) + RECORDER_NICENESS)]
    assert 0 < RECORDER_NICENESS <= 2  # lower than live requests, but enough to keep up at saturation
