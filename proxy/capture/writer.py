"""CaptureWriter: a bounded queue and one thread that writes captures to the store in batches.

The request path only calls `submit`, which never blocks: when the queue is full the exchange is
dropped and counted. A failed batch (disk full, locked database) is kept and retried, so nothing
already accepted is lost while the store recovers; `close` drains everything before returning.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from proxy.capture.assemble import endpoint_for_path
from proxy.capture.record import CAPTURED_ENDPOINTS, CaptureRows
from proxy.exchange import RawExchange
from proxy.metrics import ProxyMetrics
from proxy.store import CaptureStore

log = logging.getLogger("shadowtap.capture")

_STOP = object()
_RETRY_BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0)


class CaptureWriter:
    """Items are raw exchanges (from the live path) or ready CaptureRows (from the shadow worker);
    `make_build` turns the opened store into the function that makes rows from an item."""

    def __init__(self, open_store: Callable[[], CaptureStore],
                 make_build: Callable[[CaptureStore], Callable[[object], CaptureRows]], metrics: ProxyMetrics, *,
                 queue_size: int, batch_size: int, flush_interval_s: float,
                 capture_all_endpoints: bool = False) -> None:
        self._open_store = open_store
        self._make_build = make_build
        self._metrics = metrics
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._capture_all = capture_all_endpoints
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._start_error: BaseException | None = None
        self.lost_at_shutdown = 0
        self._in_hand = 0  # rows of the batch being written (for the loss count if it never lands)
        metrics.track_queue_depth(self._queue.qsize)

    def start(self) -> None:
        """Open the store in the writer thread and wait until it is ready (or failed)."""
        self._thread = threading.Thread(target=self._run, name="shadowtap-capture-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def queue_depth(self) -> int:
        return self._queue.qsize()

    def submit(self, exchange: RawExchange | CaptureRows) -> bool:
        """Queue a capture without blocking; False (and counted) when dropped."""
        if (isinstance(exchange, RawExchange) and not self._capture_all
                and endpoint_for_path(exchange.path) not in CAPTURED_ENDPOINTS):
            return False
        try:
            self._queue.put_nowait(exchange)
        except queue.Full:
            self._metrics.capture_dropped.labels("queue_full").inc()
            return False
        self._metrics.capture_enqueued.inc()
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write everything queued, then stop the thread. A store that still fails gets a few
        more attempts; what cannot be written is counted as lost, never silently dropped."""
        if self._thread is None:
            return
        self._closing.set()
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            log.error("capture queue stayed full while closing; the writer is stuck")
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            stranded = self._queue.qsize() + self._in_hand
            self.lost_at_shutdown += stranded
            self._metrics.capture_dropped.labels("write_failed_at_shutdown").inc(stranded)
            log.error("capture writer did not drain within %.0fs; %d captures lost", timeout_s, stranded)
        self._thread = None

    def _run(self) -> None:
        try:
            store = self._open_store()
            build = self._make_build(store)
        except BaseException as exc:  # reported to start() in the caller's thread
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                batch, stopping = self._next_batch()
                built = [self._build(build, item) for item in batch]
                rows = CaptureRows.merge(rows for rows in built if rows is not None)
                if rows:
                    self._write(store, rows, stopping)
        finally:
            store.close()

    def _next_batch(self) -> tuple[list, bool]:
        """Up to batch_size items, collected on the flush timer. The writer polls rather than
        blocking on the queue, so the request path's put never has a sleeping thread to wake."""
        batch: list = []
        deadline = time.monotonic() + self._flush_interval_s
        while len(batch) < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._closing.wait(remaining)
                    continue
                if batch:
                    break
                deadline = time.monotonic() + self._flush_interval_s
                continue
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _build(self, build: Callable[[object], CaptureRows], item: object) -> CaptureRows | None:
        try:
            return build(item)
        except Exception:
            # A malformed exchange must not take the writer down; it is counted and logged.
            self._metrics.capture_dropped.labels("build_error").inc()
            log.exception("could not build capture row", extra={"exchange_id": getattr(item, "id", None)})
            return None

    def _write(self, store: CaptureStore, rows: CaptureRows, stopping: bool) -> None:
        attempt = 0
        self._in_hand = len(rows)
        while True:
            try:
                store.insert_capture(rows.exchanges, rows.shadows)
                self._metrics.capture_written.inc(len(rows.exchanges))
                self._in_hand = 0
                return
            except Exception as exc:
                self._metrics.capture_write_errors.inc()
                attempt += 1
                log.error("capture write failed (attempt %d, %d rows kept for retry): %s",
                          attempt, len(rows), exc)
                if (stopping or self._closing.is_set()) and attempt >= len(_RETRY_BACKOFF_S):
                    self.lost_at_shutdown += len(rows)
                    self._metrics.capture_dropped.labels("write_failed_at_shutdown").inc(len(rows))
                    self._in_hand = 0
                    return
                self._closing.wait(_RETRY_BACKOFF_S[min(attempt, len(_RETRY_BACKOFF_S)) - 1])
