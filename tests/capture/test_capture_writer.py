"""CaptureWriter: never blocks the request path, counts what it drops, survives store failures,
and drains everything it accepted on close."""

from __future__ import annotations

import threading
import time
from time import perf_counter

import pytest

from shadowtap.proxy.capture.builder_process import InProcessBuilder
from shadowtap.proxy.capture.record import CaptureRows
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.exchange import RawExchange, new_exchange_id
from shadowtap.proxy.metrics import ProxyMetrics


def make_exchange(path: str = "/v1/chat/completions", **fields) -> RawExchange:
    """A finished chat exchange as the forwarder would hand it over; any field can be overridden."""
    values = dict(
        id=new_exchange_id(), started_at=time.time(), t_start=perf_counter(), method="POST", path=path,
        query="", request_headers=[(b"content-type", b"application/json")],
        request_body=b'{"model": "sim-small", "messages": [{"role": "user", "content": "hi"}]}',
        status=200, response_headers=[(b"content-type", b"application/json")],
        response_chunks=[b'{"choices": []}'], t_end=perf_counter(),
    )
    values.update(fields)
    return RawExchange(**values)


class FakeStore:
    """Records inserted rows; can fail its first inserts or hold them until released."""

    def __init__(self, *, failures: int = 0, hold: bool = False) -> None:
        self.rows: list[dict] = []
        self.batches: list[list[str]] = []
        self.insert_attempts = 0
        self.closed = False
        self._failures = failures
        self.inserting = threading.Event()
        self._released = threading.Event()
        if not hold:
            self._released.set()

    def release(self) -> None:
        self._released.set()

    def recover(self) -> None:
        self._failures = 0

    def insert_capture(self, exchanges: list[dict], shadows: list[dict]) -> None:
        self.insert_attempts += 1
        self.inserting.set()
        assert self._released.wait(10), "the test never released the store"
        if self._failures:
            self._failures -= 1
            raise OSError(28, "No space left on device")
        self.rows.extend(exchanges)
        self.batches.append([row["id"] for row in exchanges])

    def ids(self) -> list[str]:
        return [row["id"] for row in self.rows]

    def close(self) -> None:
        self.closed = True


class FakeBuilder:
    """Builds a minimal row; raises for the exchange ids it is told are malformed."""

    def __init__(self, broken_ids: frozenset[str] = frozenset()) -> None:
        self._broken = broken_ids

    def build(self, raw: RawExchange) -> CaptureRows:
        if raw.id in self._broken:
            raise ValueError(f"cannot build {raw.id}")
        return CaptureRows(exchanges=[{"id": raw.id, "path": raw.path}])


@pytest.fixture
def metrics() -> ProxyMetrics:
    return ProxyMetrics()


def make_writer(store: FakeStore, metrics: ProxyMetrics, builder: FakeBuilder | None = None, *,
                queue_size: int = 1000, batch_size: int = 50, flush_interval_s: float = 0.01,
                capture_all_endpoints: bool = False) -> CaptureWriter:
    builder = builder or FakeBuilder()
    return CaptureWriter(lambda: store, lambda opened: InProcessBuilder(builder.build), metrics, queue_size=queue_size,
                         batch_size=batch_size, flush_interval_s=flush_interval_s,
                         capture_all_endpoints=capture_all_endpoints)


def dropped(metrics: ProxyMetrics, reason: str) -> float:
    return metrics.registry.get_sample_value("shadowtap_capture_dropped_total", {"reason": reason}) or 0.0


def sample(metrics: ProxyMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_submit_drops_and_counts_without_blocking_when_the_queue_is_full(metrics):
    store = FakeStore(hold=True)  # a stuck disk: the writer is busy with its first batch
    writer = make_writer(store, metrics, queue_size=2, batch_size=1)
    writer.start()
    try:
        first = make_exchange()
        assert writer.submit(first)
        assert store.inserting.wait(5)

        later = [make_exchange() for _ in range(10)]
        started = perf_counter()
        accepted = [writer.submit(exchange) for exchange in later]
        elapsed = perf_counter() - started
    finally:
        store.release()
        writer.close(timeout_s=5)

    assert elapsed < 0.1
    assert accepted == [True, True] + [False] * 8
    assert dropped(metrics, "queue_full") == 8
    assert sorted(store.ids()) == sorted([first.id, later[0].id, later[1].id])


def test_nothing_is_lost_and_errors_are_counted_when_the_store_fails_twice_then_recovers(metrics):
    store = FakeStore(failures=2)  # like a disk that is full, then freed
    writer = make_writer(store, metrics, batch_size=10)
    writer.start()
    exchanges = [make_exchange() for _ in range(5)]
    try:
        assert all(writer.submit(exchange) for exchange in exchanges)
        wait_until(lambda: len(store.rows) >= len(exchanges))  # recovered while still running
    finally:
        writer.close(timeout_s=5)

    assert sorted(store.ids()) == sorted(exchange.id for exchange in exchanges)
    assert sample(metrics, "shadowtap_capture_write_errors_total") == 2
    assert sample(metrics, "shadowtap_capture_written_total") == len(exchanges)
    assert writer.lost_at_shutdown == 0


def test_close_writes_every_queued_exchange_when_the_queue_holds_many_batches(metrics):
    store = FakeStore()
    writer = make_writer(store, metrics, batch_size=7, flush_interval_s=1.0)
    writer.start()
    exchanges = [make_exchange() for _ in range(200)]
    assert all(writer.submit(exchange) for exchange in exchanges)
    writer.close(timeout_s=5)

    assert sorted(store.ids()) == sorted(exchange.id for exchange in exchanges)
    assert len(store.ids()) == len(set(store.ids()))
    assert writer.queue_depth() == 0
    assert writer.lost_at_shutdown == 0
    assert store.closed


def test_other_rows_of_the_batch_are_written_when_one_exchange_cannot_be_built(metrics):
    good_before, bad, good_after = make_exchange(), make_exchange(), make_exchange()
    store = FakeStore()
    writer = make_writer(store, metrics, FakeBuilder(frozenset({bad.id})), batch_size=10)
    # Queued before the thread starts, so all three arrive in the writer's first batch.
    for exchange in (good_before, bad, good_after):
        assert writer.submit(exchange)
    writer.start()
    writer.close(timeout_s=5)

    assert store.batches == [[good_before.id, good_after.id]]
    assert dropped(metrics, "build_error") == 1
    assert sample(metrics, "shadowtap_capture_written_total") == 2


def test_non_model_endpoints_are_not_queued_when_capture_all_endpoints_is_off(metrics):
    writer = make_writer(FakeStore(), metrics)
    assert not writer.submit(make_exchange("/v1/models", method="GET", request_body=b""))
    assert writer.queue_depth() == 0
    assert writer.submit(make_exchange("/v1/chat/completions"))
    assert writer.submit(make_exchange("/v1/embeddings"))
    assert writer.queue_depth() == 2
    assert dropped(metrics, "queue_full") == 0


def test_non_model_endpoints_are_queued_when_capture_all_endpoints_is_on(metrics):
    store = FakeStore()
    writer = make_writer(store, metrics, capture_all_endpoints=True)
    models = make_exchange("/v1/models", method="GET", request_body=b"")
    assert writer.submit(models)
    assert writer.queue_depth() == 1
    writer.start()
    writer.close(timeout_s=5)
    assert store.ids() == [models.id]


def test_exchanges_lost_at_close_are_counted_when_the_store_is_still_failing(metrics):
    store = FakeStore(failures=10**9)  # a disk that stays full through shutdown
    writer = make_writer(store, metrics, batch_size=10)
    writer.start()
    exchanges = [make_exchange() for _ in range(3)]
    try:
        assert all(writer.submit(exchange) for exchange in exchanges)
        wait_until(lambda: store.insert_attempts >= 1)  # the writer holds the batch, retrying
        writer.close(timeout_s=5)
        written = list(store.rows)
        lost, dropped_at_shutdown = writer.lost_at_shutdown, dropped(metrics, "write_failed_at_shutdown")
    finally:
        store.recover()  # let a writer thread that outlived close() finish and exit

    assert written == []
    assert lost == len(exchanges)
    assert dropped_at_shutdown == len(exchanges)
