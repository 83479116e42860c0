"""A store that cannot be opened at start-up (corrupt, locked, an unwritable directory) does not
stop the proxy: the writer reports "failing", retries, and writes what waited in its queue once
the store opens; closed before it ever opens, it counts what is lost. (Issue 12, item 5.)"""

from __future__ import annotations

import pytest

from shadowtap.core.errors import StoreError
from shadowtap.proxy.capture import writer as writer_module
from shadowtap.proxy.capture.builder_process import InProcessBuilder
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.metrics import ProxyMetrics
from tests.capture.test_capture_writer import FakeBuilder, FakeStore, dropped, make_exchange, wait_until


class StoreThatOpensLate:
    """Refuses to open until `allow()`; then hands out one FakeStore."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.allowed = False
        self.attempts = 0

    def allow(self) -> None:
        self.allowed = True

    def __call__(self) -> FakeStore:
        self.attempts += 1
        if not self.allowed:
            raise StoreError("cannot open capture store 'captures.db': file is not a database")
        return self.store


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(writer_module, "_OPEN_RETRY_S", (0.01, 0.02))


def writer_over(opener: StoreThatOpensLate, metrics: ProxyMetrics) -> CaptureWriter:
    return CaptureWriter(opener, lambda store: InProcessBuilder(FakeBuilder().build), metrics, queue_size=100,
                         batch_size=10, flush_interval_s=0.01)


def test_a_store_that_cannot_open_is_retried_and_what_waited_is_written_when_it_opens(caplog):
    metrics = ProxyMetrics()
    opener = StoreThatOpensLate()
    writer = writer_over(opener, metrics)
    writer.start()  # does not raise: the proxy serves
    try:
        assert writer.store_state() == "failing"
        waiting = [make_exchange() for _ in range(3)]
        assert all(writer.submit(exchange) for exchange in waiting)
        wait_until(lambda: opener.attempts >= 3)
        opener.allow()
        wait_until(lambda: len(opener.store.rows) == 3)
        assert writer.store_state() == "ok"
    finally:
        writer.close(timeout_s=5)
    assert sorted(opener.store.ids()) == sorted(exchange.id for exchange in waiting)
    opening_errors = [record for record in caplog.records if "serving without capture" in record.getMessage()]
    assert len(opening_errors) == 1  # once per episode, not once per attempt
    assert "file is not a database" in opening_errors[0].getMessage()
    assert "captures.db" in opening_errors[0].getMessage()


def test_closed_before_the_store_ever_opens_the_waiting_captures_are_counted_as_lost():
    metrics = ProxyMetrics()
    opener = StoreThatOpensLate()
    writer = writer_over(opener, metrics)
    writer.start()
    for _ in range(4):
        assert writer.submit(make_exchange())
    writer.close(timeout_s=5)
    assert writer.lost_at_shutdown == 4
    assert dropped(metrics, "write_failed_at_shutdown") == 4
