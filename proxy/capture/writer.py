"""CaptureWriter: a bounded queue and one thread that writes captures to the store in batches.

The request path only calls `submit`, which never blocks: when the queue is full, by count or by
the bytes its raw exchanges hold, the exchange is dropped and counted. A failed batch (disk full,
locked database) is kept and retried, so nothing already accepted is lost while the store
recovers; new captures wait in the bounded queue meanwhile and are dropped, counted as
`store_failing`, once it is full. Each failing episode is logged when it starts and when it ends.
`close` drains everything before returning.

In `shadowtap serve` the writer does not stay in the live process: once the store opens, a writer
started on a running event loop, whose row builder is a `RowBuilderProcess`, hands capture over to
a recorder process (`recorder.py`, which runs this same class with an in-process builder) and from
then on only frames exchanges onto its socket (`recorder_link.py`). Until then (a store that
cannot be opened yet) captures wait here, in the bounded queue, as before.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from shadowtap.core.store import CaptureStore
from shadowtap.core.store.errors import content_errors
from shadowtap.proxy.capture.builder_process import BuildFailure
from shadowtap.proxy.capture.record import CaptureRows
from shadowtap.proxy.capture.recorder_link import RecorderLink
from shadowtap.proxy.capture.recorder_start import RecorderOptions, RowBuilderSettings
from shadowtap.proxy.dialects import dialect_for_path
from shadowtap.proxy.exchange import RawExchange

log = logging.getLogger("shadowtap.capture")

_STOP = object()
_REJECTED = object()
_RETRY_BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0)
# Waits between attempts to open a store that could not be opened at start-up.
_OPEN_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0)
# Errors about a batch's content: retrying the same rows cannot help. Anything else (disk full,
# I/O error, locked) is about the store, and the batch is retried until the store recovers.
_CONTENT_ERRORS = content_errors()


class ByteBoundedQueue(queue.Queue):
    """A queue.Queue that also bounds the bytes of what it holds. `offer` checks both bounds and
    appends under the queue's own lock, so the byte count costs no second lock on the request
    path. Bytes stay counted after an item is taken, until the writer `release`s them once its
    batch is written or given up: the batch in hand is memory held too."""

    def __init__(self, maxsize: int, max_bytes: int | None) -> None:
        super().__init__(maxsize)
        self.max_bytes = max_bytes
        self.bytes_held = 0

    def offer(self, item: object, size: int) -> str | None:
        """Append without blocking; None when queued, else which bound refused it."""
        with self.mutex:
            if self.maxsize > 0 and self._qsize() >= self.maxsize:
                return "queue_full"
            if self.max_bytes is not None and self.bytes_held + size > self.max_bytes:
                return "queue_bytes"
            self.queue.append((item, size))
            self.bytes_held += size
            self.unfinished_tasks += 1
            self.not_empty.notify()
        return None

    def release(self, size: int) -> None:
        if size:
            with self.mutex:
                self.bytes_held -= size

    # queue.Queue's hooks (called under its lock): items are stored with their size.
    def _put(self, item: object) -> None:
        self.queue.append((item, 0))

    def _get(self) -> tuple[object, int]:
        return self.queue.popleft()


def held_bytes(exchange: RawExchange | CaptureRows) -> int:
    """The bytes a raw exchange keeps alive (request body and response chunks). Sizes only, no
    copy. Built CaptureRows (from the shadow worker) are small and bounded by count alone."""
    if isinstance(exchange, RawExchange):
        return len(exchange.request_body) + sum(map(len, exchange.response_chunks))
    return 0


class CaptureCounter(Protocol):
    def inc(self, amount: int = 1) -> None: ...


class LabelledCaptureCounter(Protocol):
    def labels(self, label: str) -> CaptureCounter: ...


class CaptureMetrics(Protocol):
    """What the writer counts: ProxyMetrics in a live process, plain numbers in the recorder."""

    @property
    def capture_enqueued(self) -> CaptureCounter: ...
    @property
    def capture_dropped(self) -> LabelledCaptureCounter: ...
    @property
    def capture_written(self) -> CaptureCounter: ...
    @property
    def capture_write_errors(self) -> CaptureCounter: ...
    def track_queue_depth(self, depth: Callable[[], int]) -> None: ...


class RowBuilding(Protocol):
    """Makes store rows from a batch of items, one result per item, in order."""

    def build_batch(self, items: Sequence[RawExchange | CaptureRows]) -> list[CaptureRows | BuildFailure]: ...

    def close(self) -> None: ...


class CaptureWriter:
    """Items are raw exchanges (from the live path) or ready CaptureRows (from the shadow worker);
    `make_build` turns the opened store into what makes rows from them (closed with the writer)."""

    def __init__(self, open_store: Callable[[], CaptureStore],
                 make_build: Callable[[CaptureStore], RowBuilding], metrics: CaptureMetrics, *,
                 queue_size: int, batch_size: int, flush_interval_s: float,
                 capture_all_endpoints: bool = False, queue_max_bytes: int | None = None) -> None:
        self._open_store = open_store
        self._make_build = make_build
        self._metrics = metrics
        self._queue = ByteBoundedQueue(queue_size, queue_max_bytes)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._capture_all = capture_all_endpoints
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._start_error: BaseException | None = None
        self.lost_at_shutdown = 0
        self.written = 0  # exchanges written by this writer (the shutdown log reports it)
        self._episode = FailureEpisode()
        self._in_hand = 0  # rows of the batch being written (for the loss count if it never lands)
        self._in_hand_bytes = 0  # raw bytes of that batch, released from the queue's count once done
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: RecorderLink | None = None  # set once capture is handed to a recorder process
        metrics.track_queue_depth(self.queue_depth)

    def start(self) -> None:
        """Open the store in the writer thread and wait for its first attempt. A store that cannot
        be opened (corrupt, locked, an unwritable directory) does not stop the proxy: the writer
        reports "failing", retries, and writes what waited in the queue once it opens."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None  # no event loop to hand exchanges over from: rows are written here
        self._thread = threading.Thread(target=self._run, name="shadowtap-capture-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def queue_depth(self) -> int:
        if self._link is not None:
            return self._link.queue_depth()
        return self._queue.qsize()

    def wait_for_queued_writes(self, timeout_s: float) -> None:
        """Block until captures queued before this call have had their turn to be written: the
        queue drained, the batch being collected past its flush timer (plus a little for building
        it), and the write in hand finished; at most `timeout_s`. For readers that must see an
        exchange answered a moment ago (the feedback API, before it answers 404), from a worker
        thread: the request path never calls it, and it takes no lock the writer uses."""
        deadline = time.monotonic() + timeout_s
        link = self._link
        if link is not None:
            sent = link.sent
            while not link.settled(sent) and time.monotonic() < deadline:
                time.sleep(0.005)
            return
        while self._queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(max(0.0, min(self._flush_interval_s + 0.05, deadline - time.monotonic())))
        while self._in_hand and time.monotonic() < deadline:
            time.sleep(0.005)

    def queued_bytes(self) -> int:
        """Bytes of raw exchanges queued or in the batch being written."""
        if self._link is not None:
            return self._link.pending_bytes()
        return self._queue.bytes_held

    def store_state(self) -> str:
        """"ok", or "failing" while writes to the store fail (captures wait in the queue)."""
        if self._link is not None:
            return self._link.store_state()
        return "failing" if self._episode.failing else "ok"

    def captures(self, path: str) -> bool:
        """Whether an exchange on this path is captured (queued for the store) at all: its
        dialect's endpoints are, other paths only with [store] capture_all_endpoints."""
        return self._capture_all or dialect_for_path(path).captured

    def submit(self, exchange: RawExchange | CaptureRows) -> bool:
        """Queue a capture without blocking; False (and counted) when dropped."""
        if isinstance(exchange, RawExchange) and not self.captures(exchange.path):
            return False
        if self._link is not None and isinstance(exchange, RawExchange):
            # (Ready CaptureRows come only from the shadow worker, whose writer has no recorder.)
            return self._link.submit(exchange)
        refused = self._queue.offer(exchange, held_bytes(exchange))
        if refused is not None:
            # While writes fail the queue fills because the store is failing, not because of load.
            if self._episode.failing:
                self._episode.dropped += 1
                self._metrics.capture_dropped.labels("store_failing").inc()
            else:
                self._metrics.capture_dropped.labels(refused).inc()
            return False
        self._metrics.capture_enqueued.inc()
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write everything queued, then stop the thread. A store that still fails gets a few
        more attempts; what cannot be written is counted as lost, never silently dropped."""
        if self._link is not None:
            self._close_link(timeout_s)
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
            opened = self._open()
        except BaseException as exc:  # not a store failure (a bug): reported to start() in the caller's thread
            self._start_error = exc
            self._ready.set()
            return
        if opened is None:  # closed before the store ever opened: what waited is lost, and counted
            stranded = 0
            while True:
                try:
                    item, _ = self._queue.get_nowait()
                except queue.Empty:
                    break
                stranded += item is not _STOP
            if stranded:
                self.lost_at_shutdown += stranded
                self._metrics.capture_dropped.labels("write_failed_at_shutdown").inc(stranded)
                log.error("capture store never opened; %d captures lost at shutdown", stranded)
            return
        store, builder = opened
        settings = getattr(builder, "settings", None)
        if self._loop is not None and isinstance(settings, RowBuilderSettings):
            self._hand_over(store, builder, settings)
            return
        try:
            stopping = False
            while not stopping:
                batch, stopping = self._next_batch()
                parts = self._build(builder, batch) if batch else []
                del batch  # the raw exchanges are not needed once built
                if parts:
                    self._write(store, parts, stopping)
                self._queue.release(self._in_hand_bytes)
                self._in_hand_bytes = 0
        finally:
            builder.close()
            store.close()

    def _open(self) -> tuple[CaptureStore, RowBuilding] | None:
        """The store and the row builder, retried with backoff while the store cannot be opened;
        None when the writer is closed first. Each failure is a failing episode, logged once."""
        attempt = 0
        while True:
            store = None
            try:
                store = self._open_store()
                builder = self._make_build(store)
            except Exception as exc:
                if store is not None:
                    store.close()
                attempt += 1
                self._episode.failed(exc, store, self._queue.qsize(), opening=True)
                self._ready.set()
                if self._closing.wait(_OPEN_RETRY_S[min(attempt, len(_OPEN_RETRY_S)) - 1]):
                    return None
                continue
            self._episode.succeeded()
            self._ready.set()
            return store, builder

    def _hand_over(self, store: CaptureStore, builder: RowBuilding, settings: RowBuilderSettings) -> None:
        """From the writer thread, once the store opened: have the event loop start a recorder
        process on the same store and send it what waited here. This thread then ends."""
        target = str(getattr(store, "url", None) or store.path)  # a PostgreSQL URL with its password
        builder.close()
        store.close()
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._adopt_recorder, target, settings)
        except RuntimeError:  # the loop closed meanwhile: nothing more will be captured here
            log.error("the event loop closed before capture could be handed to its recorder")

    def _adopt_recorder(self, target: str, settings: RowBuilderSettings) -> None:
        """On the event loop: start the recorder and hand it the exchanges that waited here."""
        if self._closing.is_set():
            return
        assert self._loop is not None
        link = RecorderLink(target, settings, RecorderOptions(
            queue_size=self._queue.maxsize, batch_size=self._batch_size, flush_interval_s=self._flush_interval_s,
            capture_all_endpoints=self._capture_all, queue_max_bytes=self._queue.max_bytes),
            self._metrics, self._loop, counted_enqueued=self._queue.qsize())
        link.start_or_retry()
        self._link = link
        while True:
            try:
                item, size = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP and isinstance(item, RawExchange):
                link.submit(item)
            self._queue.release(size)

    def _close_link(self, timeout_s: float) -> None:
        link = self._link
        assert link is not None
        link.close(timeout_s)
        self.written = link.written
        self.lost_at_shutdown += link.lost_at_shutdown

    def _next_batch(self) -> tuple[list[RawExchange | CaptureRows], bool]:
        """Up to batch_size items, collected on the flush timer. The writer polls rather than
        blocking on the queue, so the request path's put never has a sleeping thread to wake."""
        batch: list[RawExchange | CaptureRows] = []
        self._in_hand_bytes = 0
        deadline = time.monotonic() + self._flush_interval_s
        while len(batch) < self._batch_size:
            try:
                item, size = self._queue.get_nowait()
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
            self._in_hand_bytes += size
            batch.append(item)
        return batch, False

    def _build(self, builder: RowBuilding, batch: list[RawExchange | CaptureRows]) -> list[CaptureRows]:
        self._in_hand = len(batch)
        try:
            built = builder.build_batch(batch)
        except Exception:
            built = [BuildFailure(getattr(item, "id", None), "the row builder failed") for item in batch]
            log.exception("could not build capture rows for a batch")
        parts = []
        for rows in built:
            if isinstance(rows, BuildFailure):
                # A malformed exchange must not take the writer down; it is counted and logged.
                self._metrics.capture_dropped.labels("build_error").inc()
                log.error("could not build capture row: %s", rows.error, extra={"exchange_id": rows.exchange_id})
            elif rows:
                parts.append(rows)
        self._in_hand = sum(len(rows) for rows in parts)
        return parts

    def _write(self, store: CaptureStore, parts: list[CaptureRows], stopping: bool) -> None:
        """Write the batch in one transaction. When the store rejects it for its content (a
        constraint, a value SQLite cannot take), write its exchanges one by one, so one bad row
        costs itself, not the batch, and never jams the writer in a retry loop."""
        if self._write_with_retry(store, CaptureRows.merge(parts), stopping) is not _REJECTED:
            return
        if len(parts) > 1:
            for part in parts:
                self._write(store, [part], stopping)
            return
        self._metrics.capture_dropped.labels("rejected_by_store").inc(max(len(parts[0].exchanges), 1))
        log.error("the capture store rejected a capture; it is dropped",
                  extra={"exchange_ids": [row.get("id") for row in parts[0].exchanges][:5]})

    def _write_with_retry(self, store: CaptureStore, rows: CaptureRows, stopping: bool) -> object:
        """Retry a failing store (disk full, I/O error, locked) with backoff until it recovers, or
        until close() gives up. Logged once when an episode starts and once when it ends."""
        attempt = 0
        self._in_hand = len(rows)
        while True:
            try:
                store.insert_capture(rows.exchanges, rows.shadows)
            except _CONTENT_ERRORS:
                self._metrics.capture_write_errors.inc()
                self._in_hand = 0
                log.exception("capture batch rejected by the store; writing its exchanges one by one")
                return _REJECTED
            except Exception as exc:
                self._metrics.capture_write_errors.inc()
                attempt += 1
                self._episode.failed(exc, store, self._queue.qsize() + len(rows))
                if (stopping or self._closing.is_set()) and attempt >= len(_RETRY_BACKOFF_S):
                    self.lost_at_shutdown += len(rows)
                    self._metrics.capture_dropped.labels("write_failed_at_shutdown").inc(len(rows))
                    log.error("capture store still failing at shutdown; %d captures lost", len(rows))
                    self._in_hand = 0
                    return None
                self._closing.wait(_RETRY_BACKOFF_S[min(attempt, len(_RETRY_BACKOFF_S)) - 1])
                continue
            self._metrics.capture_written.inc(len(rows.exchanges))
            self.written += len(rows.exchanges)
            self._in_hand = 0
            self._episode.succeeded()
            return None


class FailureEpisode:
    """Tracks one stretch of failing writes, so a full disk logs two lines, not one per batch."""

    def __init__(self) -> None:
        self.failing = False
        self.dropped = 0  # captures refused by submit() during this episode
        self._attempts = 0
        self._since = 0.0

    def failed(self, exc: Exception, store: object, held: int, *, opening: bool = False) -> None:
        self._attempts += 1
        if self.failing:
            log.debug("capture write failed again (attempt %d): %s", self._attempts, exc)
            return
        self.failing = True
        self._since = time.monotonic()
        if opening:
            log.error("%s; serving without capture until it can be opened: captures wait in the queue and are "
                      "dropped (reason store_failing) once it is full, /healthz says capture_store: failing, and "
                      "it is retried every few seconds; live traffic is not affected", exc,
                      extra={"error": str(exc)})
            return
        log.error("capture store writes are failing (%s: %s); %d captures are held and retried, new ones "
                  "wait in the queue and are dropped (reason store_failing) once it is full; live traffic is "
                  "not affected. Further failures are counted in shadowtap_capture_write_errors_total "
                  "until a write succeeds", type(exc).__name__, exc, held,
                  extra={"store": getattr(store, "path", None), "error": str(exc)})

    def succeeded(self) -> None:
        if not self.failing:
            return
        log.warning("capture store writes resumed after %d failed attempts over %.1fs; %d captures were "
                    "dropped meanwhile", self._attempts, time.monotonic() - self._since, self.dropped,
                    extra={"failed_attempts": self._attempts, "dropped": self.dropped})
        self.failing = False
        self.dropped = 0
        self._attempts = 0
