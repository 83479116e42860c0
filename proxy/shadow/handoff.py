"""How a shadow job crosses from the live process to the shadow worker: framed bytes on a socket.

The live side writes jobs from its event loop with non-blocking writes (asyncio transport;
anything the kernel cannot take at once is buffered and flushed by the loop). There is no feeder
thread, so handing a job over never makes a live request wait for the GIL, which a
`multiprocessing.Queue` did. The queue bound is a count: jobs sent minus jobs the worker has
taken (a shared counter), at most `capacity`; beyond it the job is refused and the request is
recorded as "saturated" (or "worker_unavailable" once the worker has died).

A frame is: 4-byte header length, 4-byte body length (big-endian), the header (JSON: exchange
id, start time, endpoint, candidates, twin), then the request body exactly as forwarded.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import struct
from collections.abc import AsyncIterator

import orjson

from shadowtap.proxy.shadow.planning import ShadowJob

log = logging.getLogger("shadowtap.shadow")

_LENGTHS = struct.Struct(">II")
_STOP_HEADER = b'"stop"'


def job_channel(context) -> tuple[socket.socket, socket.socket, ctypes.c_longlong]:
    """(live end, worker end) of a Unix stream socket pair, and the shared count of jobs taken,
    made with the multiprocessing `context` that will start the worker."""
    live_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return live_end, worker_end, context.RawValue(ctypes.c_longlong, 0)


def _frame(header: bytes, body: bytes | bytearray) -> bytes:
    return _LENGTHS.pack(len(header), len(body)) + header + body


def encode_job(job: ShadowJob) -> bytes:
    header = orjson.dumps([job.exchange_id, job.started_at, job.endpoint, job.candidates, job.twin])
    return _frame(header, job.body)


class JobSender:
    """The live process's end. Used only from the event loop's thread (or before it runs)."""

    # Jobs go out in one write a millisecond after the first of them was offered: by then the
    # live request they belong to has gone out to the primary. A worker woken at once started its
    # CPU-heavy calls while that request was still being sent, and on a busy machine that delayed
    # the primary (bench/shadow_overhead.py, 50 ms primary: +0.9 ms p50 at once, +0.2 ms this way).
    # Candidate latency is timed from the call's own start, so the millisecond is not charged to them.
    DELAY_S = 0.001

    def __init__(self, sock: socket.socket, capacity: int, taken: ctypes.c_longlong) -> None:
        self._sock = sock
        self._capacity = capacity
        self._taken = taken          # shared memory; only the worker writes it, as it reads each job
        self._sent = 0
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self._transport: asyncio.Transport | None = None

    def depth(self) -> int:
        """Jobs handed over that the worker has not taken yet."""
        return self._sent - self._taken.value

    def send(self, job: ShadowJob) -> str | None:
        """Hand a job over without waiting. None when it went; otherwise why not: "saturated"
        (`capacity` jobs are already waiting) or "worker_unavailable" (the worker's end is gone)."""
        if self._transport is not None and self._transport.is_closing():
            return "worker_unavailable"
        if self.depth() >= self._capacity:
            return "saturated"
        self._write(encode_job(job))
        self._sent += 1
        return None

    async def connect(self) -> None:
        """Attach to the running loop; jobs sent before this go out now."""
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_unix_connection(asyncio.Protocol, sock=self._sock)
        self._flush()

    def send_stop(self) -> None:
        """Ask the worker to finish; it arrives after every job already sent."""
        self._pending.append(_frame(_STOP_HEADER, b""))
        self._flush()

    async def flushed(self, timeout_s: float) -> None:
        """Wait (up to timeout_s) until the kernel has taken everything written."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (self._transport is not None and self._transport.get_write_buffer_size()
               and asyncio.get_running_loop().time() < deadline):
            await asyncio.sleep(0.01)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        else:
            self._sock.close()

    def _write(self, frame: bytes) -> None:
        self._pending.append(frame)
        if self._transport is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(self.DELAY_S, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._transport is None or not self._pending:
            return
        frames = b"".join(self._pending)
        self._pending.clear()
        if self._transport.is_closing():
            return  # the worker is gone; from now on send() refuses jobs as worker_unavailable
        try:
            self._transport.write(frames)
        except (OSError, RuntimeError):
            log.warning("the shadow worker's channel is closed; shadows are skipped as saturated")


async def receive_jobs(sock: socket.socket, taken: ctypes.c_longlong
                       ) -> AsyncIterator[ShadowJob]:
    """The worker's end: jobs in the order sent, until the stop frame or the live process is gone."""
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        while True:
            try:
                header_length, body_length = _LENGTHS.unpack(await reader.readexactly(_LENGTHS.size))
                header = await reader.readexactly(header_length)
                body = await reader.readexactly(body_length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the live process closed its end (or died): nothing more will come
            if header == _STOP_HEADER:
                return
            exchange_id, started_at, endpoint, candidates, twin = orjson.loads(header)
            taken.value += 1
            yield ShadowJob(exchange_id, started_at, endpoint, body, candidates, twin)
    finally:
        writer.close()
