"""How a response's bytes leave the simulator: pacing, compression and deliberate faults, with a
record of when each write went out and when the client went away (what fault tests measure)."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .knobs import Knobs

logger = logging.getLogger("shadowtap.simulator")


class SimulatedDisconnect(Exception):
    """Raised mid-response on purpose (x-sim-drop-after) so the server aborts the connection."""


@dataclass(frozen=True, slots=True)
class Write:
    """One body write and the pause before it."""

    delay_s: float
    data: bytes


class ClientWatch:
    """Notices the client leaving while a response is pending, and notes the moments that fault
    tests compare with what the client saw: each write, and the departure."""

    def __init__(self, receive: Callable | None, record: dict | None) -> None:
        self._record = record
        self._finishing = False
        self.gone = asyncio.Event()
        if record is not None:
            record.update(received_at=time.time(), writes_at=[], client_gone_at=None)
        self._task = asyncio.ensure_future(self._watch(receive)) if receive is not None else None

    async def _watch(self, receive: Callable) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        # Once the last write is out, receive() reports a disconnect as well: not a departure.
        if not self._finishing:
            if self._record is not None:
                self._record["client_gone_at"] = time.time()
            self.gone.set()

    async def pause(self, seconds: float) -> bool:
        """Sleep; True when the client left meanwhile (so the response can be abandoned)."""
        if self._task is None:
            await asyncio.sleep(seconds)
            return False
        try:
            await asyncio.wait_for(self.gone.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def until_gone(self) -> None:
        """Hang: wait for as long as the client stays."""
        if self._task is None:
            raise RuntimeError("hanging needs a watched client, or it would never end")
        await self.gone.wait()

    def wrote(self) -> None:
        if self._record is not None:
            self._record["writes_at"].append(time.time())

    def finishing(self) -> None:
        self._finishing = True

    def close(self) -> None:
        self._finishing = True
        if self._task is not None:
            self._task.cancel()


def body_writes(body: bytes, knobs: Knobs) -> list[Write]:
    """A whole (already compressed, if asked) body as writes, faults applied."""
    return _with_faults([Write(0.0, body)], knobs)


def stream_writes(events: list[bytes], knobs: Knobs) -> list[Write]:
    """SSE events as writes: time to first token before the first, chunk delay before the rest;
    gzip flushed per event so each still arrives on its own; faults applied."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if knobs.gzip else None  # 31: gzip
    writes = []
    for index, event in enumerate(events):
        if compressor:
            event = compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH)
        writes.append(Write((knobs.ttft_ms if index == 0 else knobs.chunk_delay_ms) / 1000, event))
    if compressor:
        writes.append(Write(0.0, compressor.flush()))
    return _with_faults(writes, knobs)


def _with_faults(writes: list[Write], knobs: Knobs) -> list[Write]:
    if knobs.split_utf8_ms is not None:
        writes = _split_first_character(writes, knobs.split_utf8_ms / 1000)
    if knobs.trickle_ms is not None:
        gap = knobs.trickle_ms / 1000
        writes = [Write(write.delay_s if i == 0 else gap, write.data[i:i + 1])
                  for write in writes for i in range(len(write.data))]
    return writes


def _split_first_character(writes: list[Write], gap_s: float) -> list[Write]:
    """Cut the first multi-byte UTF-8 character after its lead byte: two writes, `gap_s` apart,
    so a reader that decodes each network read on its own sees half a character."""
    for index, write in enumerate(writes):
        lead = next((i for i, byte in enumerate(write.data) if byte >= 0xC0), None)
        if lead is not None:
            head, tail = write.data[:lead + 1], write.data[lead + 1:]
            return [*writes[:index], Write(write.delay_s, head), Write(gap_s, tail), *writes[index + 1:]]
    return writes


async def deliver(send: Callable, status: int, headers: list[tuple[bytes, bytes]],
                  writes: list[Write], knobs: Knobs, watch: ClientWatch) -> None:
    """Send the status, headers and writes, with every pause and fault the knobs ask for."""
    if knobs.hang:
        logger.info("simulated hang before the status line")
        return await watch.until_gone()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    end = len(writes)
    for index, write in enumerate(writes):
        if await _fault_at(index, knobs, watch):
            return
        if write.delay_s and await watch.pause(write.delay_s):
            return
        last = index == end - 1 and end not in (knobs.drop_after, knobs.hang_after)
        if last:
            watch.finishing()
        await send({"type": "http.response.body", "body": write.data, "more_body": not last})
        watch.wrote()
        if last:
            return
    if await _fault_at(end, knobs, watch):
        return
    watch.finishing()
    await send({"type": "http.response.body", "body": b""})


async def _fault_at(index: int, knobs: Knobs, watch: ClientWatch) -> bool:
    """Apply a fault scheduled before write `index`; True when the response ends here."""
    if index == knobs.drop_after:
        logger.info("simulated disconnect after %d writes", index)
        raise SimulatedDisconnect(f"dropped after {index} writes")
    if index == knobs.hang_after:
        logger.info("simulated hang after %d writes", index)
        await watch.until_gone()
        return True
    return False
