"""A connection's writes in one turn of the event loop leave in one call, in order, and a close
or half-close never loses what was written before it."""

from __future__ import annotations

import asyncio

from shadowtap.proxy.coalesced_writes import CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.closing = False

    def writelines(self, pieces) -> None:
        self.calls.append(("writelines", b"".join(pieces)))

    def write_eof(self) -> None:
        self.calls.append(("write_eof",))

    def close(self) -> None:
        self.calls.append(("close",))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str):
        return ("127.0.0.1", 1234) if name == "peername" else None


def test_a_head_and_body_written_in_one_turn_leave_in_one_call_on_the_next():
    async def scenario():
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(bytearray(b"body"))
        written_at_once = list(real.calls)
        await asyncio.sleep(0)
        return written_at_once, real.calls

    at_once, after_a_turn = asyncio.run(scenario())
    assert at_once == []
    assert after_a_turn == [("writelines", b"HTTP/1.1 200 OK\r\n\r\nbody")]


def test_writes_in_separate_turns_leave_separately_so_a_stream_keeps_its_pace():
    async def scenario():
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"data: 1\n\n")
        await asyncio.sleep(0)
        transport.write(b"data: 2\n\n")
        await asyncio.sleep(0)
        return real.calls

    assert asyncio.run(scenario()) == [("writelines", b"data: 1\n\n"), ("writelines", b"data: 2\n\n")]


def test_close_and_half_close_send_what_was_written_first():
    async def scenario():
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"error")
        transport.write_eof()
        transport.write(b"late")
        transport.close()
        await asyncio.sleep(0)
        return real.calls

    assert asyncio.run(scenario()) == [("writelines", b"error"), ("write_eof",), ("writelines", b"late"), ("close",)]


def test_nothing_is_written_once_the_connection_is_closing_and_other_calls_reach_the_socket():
    async def scenario():
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"answer")
        real.closing = True  # the client left before the next turn
        await asyncio.sleep(0)
        return real.calls, transport.get_extra_info("peername"), transport.is_closing()

    assert asyncio.run(scenario()) == ([], ("127.0.0.1", 1234), True)
