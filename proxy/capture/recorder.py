"""The recorder: the child process that turns raw exchanges into store rows and writes them.

The live process only frames each exchange and writes it to a Unix socket (see
`recorder_link.py`); everything with a cost in proportion to the bytes captured (stream assembly,
redaction, pricing, row building, the SQLite or PostgreSQL writes) happens here, on a GIL of its
own. Inside, it is the same CaptureWriter as ever (bounded queue, batches, retries of a failing
store, failing episodes logged once), fed by this process's main thread reading the socket.

It reports back on the same socket: a status snapshot (counters, queue depth, store state) when
something changed, at most every `STATUS_INTERVAL_S`, and its log records, which the live process
writes to its own log. When the live process goes away (even by SIGKILL) the recorder still reads
what the kernel had buffered, writes it, and exits: the socket, not the live process's memory,
holds what was handed over.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import socket
import threading
import time
from collections.abc import Callable

import orjson

from shadowtap.core.store import CaptureStore
from shadowtap.proxy.capture.builder_process import InProcessBuilder, RowBuilderSettings, row_builder
from shadowtap.proxy.capture.frames import LOG_RECORD, STATUS, ExchangeFrameReader, encode_message
from shadowtap.proxy.capture.record import CaptureRows
from shadowtap.proxy.capture.recorder_start import RecorderOptions
from shadowtap.proxy.capture.writer import CaptureWriter
from shadowtap.proxy.exchange import RawExchange
from shadowtap.proxy.process_names import CAPTURE_RECORDER, lower_priority, name_this_process

log = logging.getLogger("shadowtap.capture")

# Capture is worth less than a live request when cores are contended; only ever lowers priority.
# But not by much: the scheduler gives a nice-1 recorder about 44% of a core the live process keeps
# busy, what it needs to keep up at about 0.1 ms (live) and 0.075 ms (recorder) of CPU per request;
# at nice 5 (25%) a 10 s `wrk -c16` run on one pinned core dropped 15,000 of 72,400 captures
# (queue_full), at nice 1 it dropped none (docs/performance.md). An unprivileged process cannot
# raise its priority back once its backlog grows, so this is fixed at start.
RECORDER_NICENESS = 1
STATUS_INTERVAL_S = 0.05
_READ_BYTES = 1 << 20


class DeferringToLiveProcess:
    """The row builder, handing the core back after each exchange while the recorder keeps up.

    The recorder builds a whole batch at a time (up to [store] batch_size exchanges, about 80 µs
    each), and where it shares a core with the live process, a request arriving meanwhile waited
    for the scheduler to take the core back from it: 0.5-5 ms, the bulk of the live path's p99 at
    one connection. `sched_yield` after each exchange lets a request that is waiting run first
    (measured on one pinned core: the live process's run-queue wait per request 120-146 µs → 44 µs,
    long waits behind the recorder about a third). It also gives up some of the recorder's share of
    a saturated core, where it then falls behind: so it yields only while fewer than
    `keeping_up_below` exchanges wait, and above that takes its full share (RECORDER_NICENESS)."""

    def __init__(self, build: Callable[[RawExchange], CaptureRows], *, keeping_up_below: int) -> None:
        self._build = build
        self._keeping_up_below = keeping_up_below
        self.backlog: Callable[[], int] = lambda: 0  # the writer's queue depth, once it exists

    def __call__(self, raw: RawExchange) -> CaptureRows:
        try:
            return self._build(raw)
        finally:
            if self.backlog() < self._keeping_up_below:
                os.sched_yield()


class _Channel:
    """The recorder's end of the socket, for answers; written from several threads."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, kind: bytes, payload: bytes) -> None:
        try:
            with self._lock:
                self._sock.sendall(encode_message(kind, payload))
        except OSError:
            pass  # the live process is gone; its log and metrics went with it


class _ForwardLogRecords(logging.Handler):
    """Sends each record, formatted and made picklable, for the live process to log as its own."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = dict(record.__dict__)
            fields["msg"] = record.getMessage()
            fields["args"] = None
            if record.exc_info:
                fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
            fields["exc_info"] = None
            self._channel.send(LOG_RECORD, pickle.dumps(fields))
        except Exception:
            self.handleError(record)


class _Count:
    """A counter with the surface the writer uses (`inc`, `labels`), cheap to read back."""

    def __init__(self) -> None:
        self.value = 0
        self.by_label: dict[str, _Count] = {}

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def labels(self, label: str) -> _Count:
        return self.by_label.setdefault(label, _Count())


class RecorderCounts:
    """The capture metrics the writer keeps, here plain numbers: the live process adds what grew
    to its own Prometheus metrics, which /metrics serves."""

    def __init__(self) -> None:
        self.capture_enqueued = _Count()
        self.capture_dropped = _Count()
        self.capture_written = _Count()
        self.capture_write_errors = _Count()

    def track_queue_depth(self, depth) -> None:
        """The live process reports the depth from the status snapshots."""


class _Status:
    """What the live process shows as its own: the writer's counters and state."""

    def __init__(self, writer: CaptureWriter, counts: RecorderCounts) -> None:
        self._writer = writer
        self._counts = counts
        self.received = 0
        self.final = False

    def snapshot(self) -> dict:
        counts = self._counts
        return {
            "received": self.received,
            "enqueued": counts.capture_enqueued.value,
            "written": self._writer.written,
            "write_errors": counts.capture_write_errors.value,
            # list() copies the items at once, while the writer thread may add a reason
            "dropped": {reason: count.value for reason, count in list(counts.capture_dropped.by_label.items())},
            "depth": self._writer.queue_depth(),
            "store": self._writer.store_state(),
            "lost_at_shutdown": self._writer.lost_at_shutdown,
            "final": self.final,
        }


def run_recorder(sock: socket.socket, store_target: str, settings: RowBuilderSettings, options: RecorderOptions,
                 received: ctypes.c_longlong) -> None:
    """The child's main: record what arrives until the stop frame or the live process is gone."""
    # The live process stops the recorder itself once capture has drained; a Ctrl-C to the
    # process group must not kill it first and lose what is still queued.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    name_this_process(CAPTURE_RECORDER)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    channel = _Channel(sock)
    _forward_logs(channel)
    lower_priority(RECORDER_NICENESS, "capture recorder")
    counts = RecorderCounts()
    build = DeferringToLiveProcess(row_builder(settings).build_rows, keeping_up_below=2 * options.batch_size)
    writer = CaptureWriter(lambda: CaptureStore.open(store_target), lambda store: InProcessBuilder(build), counts,
                           queue_size=options.queue_size, batch_size=options.batch_size,
                           flush_interval_s=options.flush_interval_s,
                           capture_all_endpoints=options.capture_all_endpoints,
                           queue_max_bytes=options.queue_max_bytes)
    build.backlog = writer.queue_depth
    status = _Status(writer, counts)
    writer.start()
    reporting = threading.Event()
    reporter = threading.Thread(target=_report, args=(status, channel, reporting), daemon=True,
                                name="shadowtap-recorder-status")
    reporter.start()
    try:
        _receive(sock, writer, status, received, options.flush_interval_s)
    finally:
        writer.close(options.close_timeout_s)
        reporting.set()
        reporter.join()
        status.final = True
        channel.send(STATUS, orjson.dumps(status.snapshot()))
        sock.close()


def _forward_logs(channel: _Channel) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ForwardLogRecords(channel))
    root.setLevel(logging.INFO)


def _receive(sock: socket.socket, writer: CaptureWriter, status: _Status, received: ctypes.c_longlong,
             flush_interval_s: float) -> None:
    """Read frames into the writer's queue until the stop frame or end of stream. A short read
    is followed by a short nap, so the recorder wakes a few times per flush interval, not once
    per exchange; what arrives meanwhile waits in the kernel's socket buffer."""
    reader = ExchangeFrameReader()
    nap_s = min(0.01, flush_interval_s / 4)
    while True:
        try:
            data = sock.recv(_READ_BYTES)
        except OSError:
            return
        if not data:
            return  # the live process closed its end or died: what it had sent has been read
        for item in reader.feed(data):
            if item is None:
                return
            writer.submit(item)
            status.received += 1
            received.value = status.received
        if len(data) < _READ_BYTES // 4:
            time.sleep(nap_s)


def _report(status: _Status, channel: _Channel, stopping: threading.Event) -> None:
    last = None
    while not stopping.wait(STATUS_INTERVAL_S):
        try:
            snapshot = status.snapshot()
            if snapshot != last:
                channel.send(STATUS, orjson.dumps(snapshot))
                last = snapshot
        except Exception:  # a status that cannot be sent must not end the reports
            log.exception("could not report the capture recorder's status")
