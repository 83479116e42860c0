"""Fault injection, clients that leave: before the primary answers, and in the middle of a stream.
The primary sees its connection close within a second (no work left running for nobody) and the
capture says the client went away. (Issue 7, item 5.)"""

from __future__ import annotations

import time
import uuid

import orjson
import pytest

from tests.support.fault_tools import (
    assert_still_serving,
    assert_store_is_consistent,
    open_socket,
    raw_request,
    recorded_with,
)
from tests.support.store_reading import wait_for_rows

PATH = "/v1/chat/completions"


def marked_body(**fields) -> tuple[str, bytes]:
    marker = f"m{uuid.uuid4().hex[:12]}"
    body = {"model": "sim-small", "messages": [{"role": "user", "content": f"Where do orders ship from? {marker}"}],
            **fields}
    return marker, orjson.dumps(body)


def knob_headers(knobs: dict[str, str]) -> list[bytes]:
    return [f"{name}: {value}".encode() for name, value in knobs.items()]


def leave_and_measure(sock, simulator, marker: str) -> float:
    """Close the client's socket; return how long the primary took to see its own connection go."""
    left_at = time.time()
    sock.close()
    (record,) = recorded_with(simulator, marker, until=lambda r: r["client_gone_at"] is not None)
    assert record["client_gone_at"] is not None, "the primary never saw the proxy's connection close"
    return record["client_gone_at"] - left_at


def captured(proxy, marker: str) -> dict:
    (row,) = wait_for_rows(proxy.store_path, 1, "request_json like ?", (f"%{marker}%",))
    return row


@pytest.mark.timeout(60)
@pytest.mark.parametrize("knobs", [{"x-sim-hang": "1"}, {"x-sim-latency-ms": "20000"}],
                         ids=["primary-never-answers", "primary-answers-in-20s"])
def test_the_primary_sees_the_close_within_a_second_when_the_client_leaves_before_the_response(
        proxy, simulator, knobs):
    marker, body = marked_body()
    sock = open_socket(proxy.port)
    sock.sendall(raw_request(PATH, body, *knob_headers(knobs)))
    assert recorded_with(simulator, marker, until=lambda r: True), "the request never reached the primary"

    assert leave_and_measure(sock, simulator, marker) < 1.0
    row = captured(proxy, marker)
    assert row["client_disconnected"] == 1
    assert_still_serving(proxy)
    assert_store_is_consistent(proxy.store_path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("knobs", [{"x-sim-chunk-delay-ms": "300"}, {"x-sim-hang-after": "2"}],
                         ids=["primary-still-streaming", "primary-silent-mid-stream"])
def test_the_primary_sees_the_close_within_a_second_when_the_client_leaves_mid_stream(proxy, simulator, knobs):
    marker, body = marked_body(stream=True)
    sock = open_socket(proxy.port)
    sock.sendall(raw_request(PATH, body, *knob_headers(knobs)))
    received = b""
    while received.count(b"data: ") < 2:
        data = sock.recv(65536)
        assert data, "the proxy closed the stream before two events"
        received += data

    assert leave_and_measure(sock, simulator, marker) < 1.0
    row = captured(proxy, marker)
    assert row["client_disconnected"] == 1
    assert row["stream_incomplete"] == 1
    assert row["response_text"] is not None and row["finish_reason"] is None
    assert_still_serving(proxy)
    assert_store_is_consistent(proxy.store_path)
