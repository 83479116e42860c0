"""CaptureWriter against a real SQLite store that fails: one bad row never jams the writer, a
failing store is logged once per episode, and a batch's exchanges and shadows land together."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from shadowtap.core.store import CaptureStore
from shadowtap.proxy.capture.builder_process import InProcessBuilder
from shadowtap.proxy.capture.record import CaptureRows
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.metrics import ProxyMetrics
from tests.support.fault_processes import wait_until


def exchange_row(exchange_id: str) -> dict:
    return {"id": exchange_id, "started_at": "2026-11-23T00:00:00+00:00", "method": "POST",
            "path": "/v1/chat/completions", "endpoint": "chat.completions", "status": 200}


def shadow_row(exchange_id: str) -> dict:
    return {"id": f"{exchange_id}:cand", "exchange_id": exchange_id, "candidate": "cand", "outcome": "ok"}


class Disk:
    full = False


class FlakyStore(CaptureStore):
    """A real store whose inserts fail like a full disk while `disk.full` is set."""

    disk = Disk()

    def insert_capture(self, exchanges, shadows) -> None:
        if self.disk.full:
            raise sqlite3.OperationalError("database or disk is full")
        super().insert_capture(exchanges, shadows)


@pytest.fixture
def store_path(tmp_path):
    FlakyStore.disk = Disk()
    return tmp_path / "s.db"


def make_writer(store_path, metrics: ProxyMetrics, **options) -> CaptureWriter:
    """The writer opens the store in its own thread, as the proxy's does."""
    settings = {"queue_size": 100, "batch_size": 10, "flush_interval_s": 0.01, **options}
    return CaptureWriter(lambda: FlakyStore.open(store_path), lambda opened: InProcessBuilder(), metrics, **settings)


def stored_ids(store_path, table: str = "exchanges") -> set[str]:
    with sqlite3.connect(store_path) as connection:
        return {row[0] for row in connection.execute(f"select id from {table}")}


def test_only_the_rejected_exchange_is_dropped_when_a_batch_holds_a_duplicate_id(store_path):
    seeded = CaptureStore.open(store_path)
    seeded.insert_capture([exchange_row("dup")], [])
    seeded.close()
    metrics = ProxyMetrics()
    writer = make_writer(store_path, metrics)
    for exchange_id in ("a", "dup", "b"):
        assert writer.submit(CaptureRows(exchanges=[exchange_row(exchange_id)]))
    writer.start()
    writer.submit(CaptureRows(exchanges=[exchange_row("after")]))
    writer.close(timeout_s=5)

    assert stored_ids(store_path) == {"dup", "a", "b", "after"}
    assert metrics.registry.get_sample_value("shadowtap_capture_dropped_total", {"reason": "rejected_by_store"}) == 1
    assert writer.lost_at_shutdown == 0


def test_a_failing_store_is_logged_once_when_it_starts_and_once_when_it_recovers(store_path, caplog):
    metrics = ProxyMetrics()
    writer = make_writer(store_path, metrics, queue_size=3, batch_size=2)
    FlakyStore.disk.full = True
    writer.start()
    caplog.set_level(logging.DEBUG, logger="shadowtap.capture")
    try:
        writer.submit(CaptureRows(exchanges=[exchange_row("x0")]))
        wait_until(lambda: writer.store_state() == "failing", 10, "the first write should fail")
        accepted = [writer.submit(CaptureRows(exchanges=[exchange_row(f"x{index}")])) for index in range(1, 8)]
        wait_until(lambda: metrics.registry.get_sample_value("shadowtap_capture_write_errors_total") >= 3, 10,
                   "the writer should keep retrying")
        failing_state = writer.store_state()
        FlakyStore.disk.full = False
        wait_until(lambda: writer.store_state() == "ok", 10, "the writer should recover")
    finally:
        writer.close(timeout_s=5)

    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert failing_state == "failing"
    assert [r.getMessage().split(" (")[0].split(" after")[0] for r in errors] == [
        "capture store writes are failing", "capture store writes resumed"]
    dropped = metrics.registry.get_sample_value("shadowtap_capture_dropped_total", {"reason": "store_failing"})
    # One held in the failing batch, three waiting in the queue: the other four were dropped.
    assert accepted == [True] * 3 + [False] * 4
    assert dropped == errors[1].dropped == 4
    assert stored_ids(store_path) == {f"x{index}" for index in range(4)}


def test_exchanges_and_their_shadow_rows_are_committed_in_one_transaction(store_path):
    store = CaptureStore.open(store_path)
    failing_shadow = dict(shadow_row("e1"), outcome=None)  # NOT NULL: the shadow insert fails
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_capture([exchange_row("e1")], [failing_shadow])
    assert stored_ids(store_path) == set()

    store.insert_capture([exchange_row("e2")], [shadow_row("e2")])
    store.close()
    assert stored_ids(store_path) == {"e2"} and stored_ids(store_path, "shadows") == {"e2:cand"}
