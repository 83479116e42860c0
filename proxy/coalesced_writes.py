"""One write per connection per turn of the event loop, however many pieces a response is sent in.

uvicorn writes a response's head and each piece of its body to the socket as the app sends them:
for a buffered answer that is two `send` system calls back to back, and on loopback each costs
the live process about as much as parsing the whole request. A request cycle given this
transport instead collects what it writes during one turn of the event loop and hands it to the
socket at the start of the next (one `writev`), so a head and body sent together leave together,
and a stream's events still leave as they are sent, within one turn.
"""

from __future__ import annotations

import asyncio


class CoalescingTransport:
    """The connection's transport as its request cycles see it (shared by pipelined cycles, so
    their answers stay in order)."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if not isinstance(data, bytes):
            data = bytes(data)  # held until the next turn: the caller may reuse its buffer
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def flush(self) -> None:
        """Hand what was written to the socket now (before a write of the protocol's own, or a close)."""
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.writelines(pending)

    def writelines(self, pieces) -> None:
        for data in pieces:
            self.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)
