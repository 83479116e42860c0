"""The live process's end of the recorder: frames each exchange onto a Unix socket, never waiting.

`submit` runs on the event loop. It appends the exchange's frame (its header and its own body
buffers, no copy) to a list that one `sendmsg` per loop iteration writes to a non-blocking socket;
what the kernel cannot take at once waits in that list and goes out when the socket is writable.
Two bounds keep the live process's memory and the recorder's backlog finite: exchanges sent that
the recorder has not read yet (a shared counter the recorder updates), at most `[store]
queue_size`, and bytes not yet taken by the kernel, at most `[store] queue_max_bytes`. Past
either the exchange is dropped and counted, as it was when the writer's in-process queue was full.

The recorder reports back on the same socket (counters, queue depth, store state, log records);
the link turns them into this process's metrics and log lines, so /metrics, /healthz and the log
read as they did when the writer was a thread here. A recorder that dies is started again, with
a pause that grows while it keeps dying; what it held is counted as dropped (`recorder_died`).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import pickle
import socket
import time
from collections import deque
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

import orjson

from shadowtap.proxy.capture.frames import LOG_RECORD, STATUS, STOP_FRAME, MessageReader, encode_exchange, exchange_size
from shadowtap.proxy.capture.recorder_start import RecorderOptions, RowBuilderSettings, recorder_main
from shadowtap.proxy.exchange import RawExchange

if TYPE_CHECKING:
    from shadowtap.proxy.capture.writer import CaptureCounter, CaptureMetrics

log = logging.getLogger("shadowtap.capture")

# sendmsg takes at most IOV_MAX (1,024) buffers per call.
_MAX_BUFFERS_PER_SEND = 512
_RESTART_PAUSES_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class RecorderLink:
    """Used only from the event loop's thread, except `close`, which runs once the loop's work is done."""

    def __init__(self, store_target: str, settings: RowBuilderSettings, options: RecorderOptions,
                 metrics: CaptureMetrics, loop: asyncio.AbstractEventLoop, *, counted_enqueued: int = 0) -> None:
        """`counted_enqueued`: exchanges already counted as enqueued here, that the first
        recorder will count again as it takes them."""
        self._store_target = store_target
        self._settings = settings
        self._options = options
        self._metrics = metrics
        self._loop = loop
        self._context = multiprocessing.get_context("spawn")  # fork is unsafe beside an event loop
        self._process: BaseProcess | None = None
        self._sock: socket.socket | None = None
        self._received = self._context.RawValue(ctypes.c_longlong, 0)
        self._pending: deque[bytes | bytearray | memoryview] = deque()
        self._pending_bytes = 0
        self._flush_scheduled = False
        self._waiting_for_writable = False
        self._sent = 0
        self._messages = MessageReader()
        self._status: dict = {}
        self._counted = _Counts(enqueued=counted_enqueued)
        self._deaths = 0
        self._closing = False
        self.written = 0
        self.lost_at_shutdown = 0

    # -- the request path -------------------------------------------------------------------

    def submit(self, exchange: RawExchange) -> bool:
        """Hand an exchange to the recorder without waiting; False (and counted) when dropped."""
        if self._sock is None:
            self._metrics.capture_dropped.labels("recorder_restarting").inc()
            return False
        size = exchange_size(exchange)
        refused = None
        if self._sent - self._received.value >= self._options.queue_size:
            refused = "queue_full"
        elif self._options.queue_max_bytes is not None and self._pending_bytes + size > self._options.queue_max_bytes:
            refused = "queue_bytes"
        if refused is not None:
            self._metrics.capture_dropped.labels("store_failing" if self.store_state() == "failing" else refused).inc()
            return False
        parts = encode_exchange(exchange)
        self._pending.extend(parts)
        self._pending_bytes += len(parts[0]) + size
        self._sent += 1
        if not self._flush_scheduled and not self._waiting_for_writable:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return True

    # -- what /healthz and the feedback API ask ---------------------------------------------

    def queue_depth(self) -> int:
        """Exchanges handed over and not yet written: on their way, or in the recorder's queue."""
        return max(0, self._sent - self._received.value) + int(self._status.get("depth", 0))

    def store_state(self) -> str:
        if self._sock is None:
            return "failing"
        return str(self._status.get("store", "ok"))

    def pending_bytes(self) -> int:
        return self._pending_bytes

    def settled(self, sent_before: int) -> bool:
        """Whether the first `sent_before` exchanges handed over have been written or dropped."""
        return self._sock is None or self._settled_count() >= sent_before

    def _settled_count(self) -> int:
        """Exchanges the recorder has written or dropped, by its last status."""
        return int(self._status.get("written", 0)) + sum(self._status.get("dropped", {}).values())

    @property
    def sent(self) -> int:
        return self._sent

    # -- the process ------------------------------------------------------------------------

    def start(self) -> None:
        live_end, recorder_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._received = self._context.RawValue(ctypes.c_longlong, 0)
        process = self._context.Process(target=recorder_main, name="shadowtap-capture-recorder", daemon=True,
                                        args=(recorder_end, self._store_target, self._settings, self._options,
                                              self._received))
        try:
            process.start()
        except BaseException:
            live_end.close()
            raise
        finally:
            recorder_end.close()
        live_end.setblocking(False)
        self._process, self._sock = process, live_end
        if self._sent or self._status:  # a recorder started again: its counts start from zero
            self._counted = _Counts()
        self._sent = 0
        self._status = {}
        self._messages = MessageReader()
        self._loop.add_reader(live_end.fileno(), self._on_readable)

    def start_or_retry(self) -> None:
        """Start the recorder; if that fails, log it and try again after a pause."""
        try:
            self.start()
        except Exception:
            log.exception("could not start the capture recorder; retrying in %.1fs", _RESTART_PAUSES_S[-1])
            self._loop.call_later(_RESTART_PAUSES_S[-1], self._restart)

    def close(self, timeout_s: float) -> None:
        """Send what is pending and the stop frame, wait for the recorder to write everything and
        exit (at most `timeout_s`), and take its last counts."""
        self._closing = True
        sock, process = self._sock, self._process
        if sock is None or process is None:
            return
        self._detach(sock)
        deadline = time.monotonic() + timeout_s
        try:
            sock.settimeout(max(0.1, timeout_s))
            while self._pending:
                self._send_some(sock)
            sock.sendall(STOP_FRAME)
            while not self._status.get("final"):
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(1 << 16)
                if not data:
                    break
                self._take_messages(data)
        except OSError as exc:
            log.error("the capture recorder did not finish cleanly (%s)", exc)
        process.join(max(0.1, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
        sock.close()
        self._sock = self._process = None
        final = self._status
        if not final.get("final"):
            stranded = self._sent - self._settled_count()
            self.lost_at_shutdown += max(0, stranded)
            self._metrics.capture_dropped.labels("write_failed_at_shutdown").inc(max(0, stranded))
            log.error("the capture recorder did not drain within %.0fs; %d captures lost", timeout_s, stranded)
        self.lost_at_shutdown += int(final.get("lost_at_shutdown", 0))

    # -- the event loop's callbacks ---------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        sock = self._sock
        if sock is None:
            return
        try:
            while self._pending:
                if not self._send_some(sock):
                    break
        except BlockingIOError:
            pass  # the socket is full: what is pending waits for it to be writable, below
        except OSError:
            self._recorder_died("its socket broke")
            return
        if self._pending and not self._waiting_for_writable:
            self._waiting_for_writable = True
            self._loop.add_writer(sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        if self._sock is not None:
            self._loop.remove_writer(self._sock.fileno())
        self._waiting_for_writable = False
        self._flush()

    def _send_some(self, sock: socket.socket) -> bool:
        """One sendmsg of the pending buffers; True when all that was offered went out."""
        batch = [self._pending[index] for index in range(min(len(self._pending), _MAX_BUFFERS_PER_SEND))]
        offered = sum(map(len, batch))
        sent = sock.sendmsg(batch)
        self._pending_bytes -= sent
        remaining = sent
        while self._pending and len(self._pending[0]) <= remaining:  # empty buffers go too
            remaining -= len(self._pending.popleft())
        if remaining:
            self._pending[0] = memoryview(self._pending[0])[remaining:]
        return sent == offered

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._recorder_died("it exited")
            return
        self._take_messages(data)

    def _take_messages(self, data: bytes) -> None:
        for kind, payload in self._messages.feed(data):
            if kind == STATUS:
                self._take_status(orjson.loads(payload))
            elif kind == LOG_RECORD:
                _log_as_own(pickle.loads(payload))

    def _take_status(self, status: dict) -> None:
        self._status = status
        self.written += self._counted.add(status, self._metrics)

    def _detach(self, sock: socket.socket) -> None:
        self._loop.remove_reader(sock.fileno())
        if self._waiting_for_writable:
            self._loop.remove_writer(sock.fileno())
            self._waiting_for_writable = False

    def _recorder_died(self, how: str) -> None:
        sock, process = self._sock, self._process
        if sock is None or self._closing:
            return
        self._detach(sock)
        sock.close()
        self._sock = None
        if process is not None:
            process.join(1)
            if process.is_alive():
                process.kill()
                process.join()
        self._process = None
        lost = max(0, self._sent - self._settled_count())
        self._pending.clear()
        self._pending_bytes = 0
        self._metrics.capture_dropped.labels("recorder_died").inc(lost)
        pause = _RESTART_PAUSES_S[min(self._deaths, len(_RESTART_PAUSES_S) - 1)]
        self._deaths += 1
        log.error("the capture recorder process died (%s); up to %d captures it held are lost; starting it again "
                  "in %.1fs", how, lost, pause, extra={"lost": lost})
        self._loop.call_later(pause, self._restart)

    def _restart(self) -> None:
        if self._closing or self._sock is not None:
            return
        self.start_or_retry()


class _Counts:
    """The recorder's counters last added to this process's metrics (they restart with it)."""

    def __init__(self, *, enqueued: int = 0) -> None:
        self.enqueued = enqueued
        self.written = self.write_errors = 0
        self.dropped: dict[str, int] = {}

    def add(self, status: dict, metrics: CaptureMetrics) -> int:
        """Add what grew since the last status to the metrics; returns the newly written count."""
        written = int(status.get("written", 0)) - self.written
        _grow(metrics.capture_enqueued, int(status.get("enqueued", 0)) - self.enqueued)
        _grow(metrics.capture_written, written)
        _grow(metrics.capture_write_errors, int(status.get("write_errors", 0)) - self.write_errors)
        for reason, count in status.get("dropped", {}).items():
            _grow(metrics.capture_dropped.labels(reason), count - self.dropped.get(reason, 0))
            self.dropped[reason] = count
        self.enqueued = int(status.get("enqueued", 0))
        self.written = int(status.get("written", 0))
        self.write_errors = int(status.get("write_errors", 0))
        return max(0, written)


def _grow(counter: CaptureCounter, amount: int) -> None:
    if amount > 0:
        counter.inc(amount)


def _log_as_own(fields: dict) -> None:
    record = logging.makeLogRecord(fields)
    logging.getLogger(record.name).handle(record)
