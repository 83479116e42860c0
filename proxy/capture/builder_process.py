"""Capture rows built in a child process, so no body, however large or hostile, holds the GIL
of the process that serves live requests.

Parsing, stream assembly, redaction and pricing cost CPU in proportion to the bytes captured; in
the live process a 17 MB body held the GIL for seconds (every client waited). The capture writer
thread sends each batch of raw exchanges over a pipe and waits, its GIL released, for the rows.
A child that dies is restarted, and the batch is built again one exchange at a time, so an
exchange that kills it costs itself only, counted as a build error.

Under `shadowtap serve` this child is no longer started: a writer running on the event loop hands
capture to the recorder process instead (recorder.py), which builds with `row_builder` in its own
thread, and `RowBuilderProcess` only carries the settings there. The pipe round trip is what a
writer without an event loop still uses.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TypeVar

from shadowtap.core.redaction import Redactor
from shadowtap.proxy.capture.pricing import PriceTable
from shadowtap.proxy.capture.record import CaptureRowBuilder, CaptureRows
from shadowtap.proxy.capture.recorder_start import RowBuilderSettings as RowBuilderSettings  # where app.py finds it
from shadowtap.proxy.exchange import RawExchange
from shadowtap.proxy.process_names import CAPTURE_BUILDER, lower_priority, name_this_process

log = logging.getLogger("shadowtap.capture")

# Capture is worth less than a live request when cores are contended; only ever lowers priority.
BUILDER_NICENESS = 5


@dataclass(frozen=True)
class BuildFailure:
    """An item that could not be made into rows; the writer counts and logs it."""

    exchange_id: str | None
    error: str


Item = TypeVar("Item")


def build_each(build: Callable[[Item], CaptureRows], items: Sequence[Item]) -> list[CaptureRows | BuildFailure]:
    """Rows for each item, or a BuildFailure for one that raised: one bad exchange costs itself."""
    results: list[CaptureRows | BuildFailure] = []
    for item in items:
        try:
            results.append(build(item))
        except Exception as exc:
            results.append(BuildFailure(getattr(item, "id", None), f"{type(exc).__name__}: {exc}"))
    return results


class InProcessBuilder:
    """Builds in the calling thread: for the shadow worker (its items are rows already) and tests."""

    def __init__(self, build: Callable[[RawExchange], CaptureRows] | None = None) -> None:
        self._build = build

    def build_batch(self, items: Sequence[RawExchange | CaptureRows]) -> list[CaptureRows | BuildFailure]:
        return build_each(self._build_one, items)

    def _build_one(self, item: RawExchange | CaptureRows) -> CaptureRows:
        if isinstance(item, CaptureRows):
            return item
        if self._build is None:
            raise TypeError("this builder was given no build function, so it takes only ready CaptureRows")
        return self._build(item)

    def close(self) -> None:
        """Nothing to release: it holds no process or pipe."""


class RowBuilderProcess:
    """Builds rows for raw exchanges in a spawned child; ready CaptureRows pass through untouched."""

    def __init__(self, settings: RowBuilderSettings) -> None:
        self.settings = settings  # what a capture recorder needs to build the same rows
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")  # fork is unsafe beside an event loop
        # Both set, or both None: _start sets them together once the child is running.
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self.restarts = 0

    def build_batch(self, items: Sequence[RawExchange | CaptureRows]) -> list[CaptureRows | BuildFailure]:
        raw = [item for item in items if not isinstance(item, CaptureRows)]
        built = iter(self._build_raw(raw) if raw else [])  # one result per raw exchange, in order
        return [item if isinstance(item, CaptureRows) else next(built) for item in items]

    def close(self) -> None:
        process, connection = self._process, self._connection
        if process is None or connection is None:
            return
        try:
            connection.send_bytes(_STOP)
        except OSError:
            pass
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        connection.close()
        self._process = None
        self._connection = None

    def _build_raw(self, exchanges: list[RawExchange]) -> list[CaptureRows | BuildFailure]:
        try:
            return self._round_trip(exchanges)
        except (EOFError, OSError) as exc:
            log.error("the capture row builder process died (%s); restarting it and building the batch "
                      "one exchange at a time", exc, extra={"exchanges": len(exchanges)})
            self._discard_child()
        results: list[CaptureRows | BuildFailure] = []
        for exchange in exchanges:
            try:
                results.extend(self._round_trip([exchange]))
            except (EOFError, OSError) as exc:
                self._discard_child()
                results.append(BuildFailure(getattr(exchange, "id", None),
                                            f"the row builder process died building it ({exc})"))
        return results

    def _round_trip(self, exchanges: list[RawExchange]) -> list[CaptureRows | BuildFailure]:
        connection = self._connection
        if connection is None:
            connection = self._start()
        send_exchanges(connection, exchanges)
        return connection.recv()

    def _start(self) -> Connection:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(target=serve_builds, args=(child_end, self._settings),
                                        name="shadowtap-capture-builder", daemon=True)
        try:
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        # Only a started child is kept: one that failed to start leaves nothing half set up, and
        # the next batch tries again.
        self._process, self._connection = process, parent_end
        return parent_end

    def _discard_child(self) -> None:
        self.restarts += 1
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._connection is not None:
            self._connection.close()
        self._process = None
        self._connection = None


def serve_builds(connection: Connection, settings: RowBuilderSettings) -> None:
    """The child: build each batch it receives until told to stop or the parent goes away."""
    # The proxy stops the builder itself once capture has drained; a Ctrl-C to the process group
    # must not kill it first and lose what is still queued.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    name_this_process(CAPTURE_BUILDER)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    lower_priority(BUILDER_NICENESS, "capture builder")
    build = row_builder(settings).build_rows
    while True:
        try:
            exchanges = receive_exchanges(connection)
        except (EOFError, OSError):
            return  # the proxy process is gone
        if exchanges is None:
            return
        connection.send(build_each(build, exchanges))


# Bodies above this size cross the pipe as raw buffers, written straight from the exchange
# (the GIL released while the kernel copies) instead of being copied into a pickle first.
_OUT_OF_BAND_BYTES = 64 * 1024


def send_exchanges(connection: Connection, exchanges: list[RawExchange]) -> None:
    """Pickle the exchanges with their large bodies out of band, then send each body as is."""
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps([_with_large_bodies_out_of_band(exchange) for exchange in exchanges],
                          protocol=5, buffer_callback=buffers.append)
    connection.send_bytes(len(buffers).to_bytes(4, "big") + header)
    for buffer in buffers:
        connection.send_bytes(buffer.raw())


def receive_exchanges(connection: Connection) -> list[RawExchange] | None:
    message = connection.recv_bytes()
    if message == _STOP:
        return None
    count = int.from_bytes(message[:4], "big")
    buffers = [connection.recv_bytes() for _ in range(count)]
    return pickle.loads(message[4:], buffers=buffers)


_STOP = b"stop"


def _with_large_bodies_out_of_band(exchange: object) -> object:
    if not isinstance(exchange, RawExchange):
        return exchange
    chunks = exchange.response_chunks
    large_chunks = any(len(chunk) > _OUT_OF_BAND_BYTES for chunk in chunks)
    if len(exchange.request_body) <= _OUT_OF_BAND_BYTES and not large_chunks:
        return exchange
    shallow = copy.copy(exchange)
    shallow.request_body = _out_of_band(exchange.request_body)
    if large_chunks:
        shallow.response_chunks = [_out_of_band(chunk) for chunk in chunks]
    return shallow


def _out_of_band(data: bytes | bytearray):
    # A PickleBuffer goes out of band under protocol 5; the child gets the bytes back.
    return pickle.PickleBuffer(data) if len(data) > _OUT_OF_BAND_BYTES else data


def row_builder(settings: RowBuilderSettings) -> CaptureRowBuilder:
    return CaptureRowBuilder(redactor=Redactor.from_rules(settings), prices=PriceTable.from_litellm_package(),
                             client_key_salt=settings.client_key_salt, max_body_bytes=settings.max_body_bytes)
