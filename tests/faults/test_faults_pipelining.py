"""Fault injection, pipelined requests: answered in order while the client stays, and, when the
client leaves (a close, or a half-close with `shutdown(SHUT_WR)`) while the first is being
answered, the first ends as a client disconnect and the rest never reach the primary. No error
in the log, no row that claims a delivery that did not happen. (Issue 12, item 7.)"""

from __future__ import annotations

import re
import socket
import uuid

import orjson
import pytest

from tests.support.fault_tools import (
    assert_still_serving,
    assert_store_is_consistent,
    open_socket,
    raw_request,
    read_until_closed,
    recorded_with,
)
from tests.support.store_reading import rows, wait_for_rows

PATH = "/v1/chat/completions"


def pipelined_requests(count: int, *extra_headers: bytes) -> tuple[list[str], bytes]:
    """`count` keep-alive chat requests back to back, the last asking to close; their markers."""
    markers = [f"m{uuid.uuid4().hex[:12]}" for _ in range(count)]
    wire = b""
    for index, marker in enumerate(markers):
        body = orjson.dumps({"model": "sim-small",
                             "messages": [{"role": "user", "content": f"Where do orders ship from? {marker}"}]})
        connection = b"Connection: close" if index == count - 1 else b"Connection: keep-alive"
        wire += raw_request(PATH, body, connection, *extra_headers)
    return markers, wire


@pytest.mark.timeout(60)
def test_pipelined_requests_are_answered_in_order_and_each_is_captured(proxy, simulator):
    markers, wire = pipelined_requests(3)
    with open_socket(proxy.port) as sock:
        sock.sendall(wire)
        received = read_until_closed(sock)

    assert received.count(b"HTTP/1.1 200 OK") == 3
    answered_ids = re.findall(rb"x-shadowtap-exchange-id: ([^\r]+)", received, flags=re.IGNORECASE)
    captured = {row["id"]: row for row in wait_for_rows(proxy.store_path, 3)}
    answered_questions = [captured[answer_id.decode()]["request_json"] for answer_id in answered_ids]
    assert [marker in question for marker, question in zip(markers, answered_questions, strict=True)] == [True] * 3
    assert [row["client_disconnected"] for row in captured.values()] == [0, 0, 0]
    assert {row["status"] for row in captured.values()} == {200}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("leave", ["half-close", "close"])
def test_a_client_that_leaves_with_requests_pipelined_is_a_disconnect_not_an_error(proxy, simulator, leave):
    markers, wire = pipelined_requests(3, b"x-sim-latency-ms: 1500")
    sock = open_socket(proxy.port)
    sock.sendall(wire)
    assert recorded_with(simulator, markers[0], until=lambda record: True), "the first request never reached it"
    if leave == "half-close":
        sock.shutdown(socket.SHUT_WR)
        assert read_until_closed(sock) == b""  # nothing is written to a client that has left
        sock.close()
    else:
        sock.close()

    (first,) = wait_for_rows(proxy.store_path, 1, "request_json like ?", (f"%{markers[0]}%",))
    assert first["client_disconnected"] == 1
    assert_still_serving(proxy)  # one more exchange, after the pipelined ones would have been captured
    wait_for_rows(proxy.store_path, 2)
    for marker in markers[1:]:
        assert recorded_with(simulator, marker, timeout_s=0.5) == []
        assert rows(proxy.store_path, "request_json like ?", (f"%{marker}%",)) == []
    log = proxy.log_text()
    assert "Exception in ASGI application" not in log
    assert "TCPTransport closed" not in log
    assert_store_is_consistent(proxy.store_path)
