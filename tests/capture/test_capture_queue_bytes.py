"""The capture queue is bounded in bytes as well as in count: a store that blocks or fails never
lets queued request and response bodies grow the proxy's memory past `[store] queue_max_bytes`."""

from __future__ import annotations

import gc
import tracemalloc

from shadowtap.proxy.capture.builder_process import InProcessBuilder
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.metrics import ProxyMetrics
from tests.capture.test_capture_writer import FakeBuilder, FakeStore, dropped, make_exchange, wait_until

MIB = 1024 * 1024


def bytes_writer(store: FakeStore, metrics: ProxyMetrics, *, max_bytes: int, batch_size: int = 2) -> CaptureWriter:
    return CaptureWriter(lambda: store, lambda opened: InProcessBuilder(FakeBuilder().build), metrics,
                         queue_size=10_000, batch_size=batch_size, flush_interval_s=0.01,
                         queue_max_bytes=max_bytes)


def big_exchange(request_bytes: int, response_chunks: int = 1, chunk_bytes: int = 0):
    """Fresh allocations each time, so what the writer drops is really freed."""
    return make_exchange(request_body=b"q" * request_bytes,
                         response_chunks=[b"r" * chunk_bytes for _ in range(response_chunks)])


def test_memory_held_stays_under_queue_max_bytes_when_the_store_blocks():
    metrics = ProxyMetrics()
    store = FakeStore(hold=True)
    writer = bytes_writer(store, metrics, max_bytes=8 * MIB)
    writer.start()
    try:
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        accepted = [writer.submit(big_exchange(MIB // 2, 4, MIB // 8)) for _ in range(64)]  # 64 MiB offered
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
        assert writer.queued_bytes() <= 8 * MIB
        assert held < 8 * MIB + MIB  # the bound plus bookkeeping, not the 64 MiB offered
        assert sum(accepted) == 8 and dropped(metrics, "queue_bytes") == 56
        assert dropped(metrics, "queue_full") == 0
    finally:
        store.release()
        writer.close(timeout_s=5)
    assert len(store.rows) == 8
    assert writer.queued_bytes() == 0


def test_a_failing_store_holds_at_most_queue_max_bytes_and_counts_the_drops_as_store_failing():
    metrics = ProxyMetrics()
    store = FakeStore(failures=1_000_000)
    writer = bytes_writer(store, metrics, max_bytes=4 * MIB)
    writer.start()
    try:
        writer.submit(big_exchange(MIB))
        wait_until(lambda: writer.store_state() == "failing")
        accepted = [writer.submit(big_exchange(MIB)) for _ in range(20)]
        assert writer.queued_bytes() <= 4 * MIB
        assert sum(accepted) == 3  # one held in the failing batch, three more fit
        assert dropped(metrics, "store_failing") == 17
        store.recover()
        wait_until(lambda: writer.queued_bytes() == 0 and len(store.rows) == 4)
        assert writer.submit(big_exchange(MIB))  # room again once the held bytes are written
    finally:
        writer.close(timeout_s=5)
    assert len(store.rows) == 5


def test_the_bytes_of_a_taken_batch_are_released_once_it_is_written():
    metrics = ProxyMetrics()
    store = FakeStore(hold=True)
    writer = bytes_writer(store, metrics, max_bytes=3 * MIB, batch_size=1)
    writer.start()
    try:
        assert writer.submit(big_exchange(MIB))
        assert store.inserting.wait(5)  # the writer holds it, still counted
        assert writer.queued_bytes() == MIB
        assert writer.submit(big_exchange(MIB)) and writer.submit(big_exchange(MIB))
        assert not writer.submit(big_exchange(1))
        store.release()
        wait_until(lambda: writer.queued_bytes() == 0)
    finally:
        writer.close(timeout_s=5)
    assert dropped(metrics, "queue_bytes") == 1 and len(store.rows) == 3


def test_an_exchange_larger_than_the_bound_is_dropped_but_small_ones_still_pass():
    metrics = ProxyMetrics()
    store = FakeStore()
    writer = bytes_writer(store, metrics, max_bytes=MIB)
    writer.start()
    try:
        assert not writer.submit(big_exchange(MIB // 2, 2, MIB // 4 + 1))  # response chunks count too
        assert writer.submit(big_exchange(100))
    finally:
        writer.close(timeout_s=5)
    assert dropped(metrics, "queue_bytes") == 1 and len(store.rows) == 1
