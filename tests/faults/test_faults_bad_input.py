"""Fault injection, bad input on the live path: a lone surrogate escape and bogus Content-Length
values get the live-path behaviour (the primary's own error passed through, or a clear JSON error
from the proxy), the proxy keeps serving and the store stays whole. Malformed JSON, invalid UTF-8
and oversized bodies are covered in tests/live/test_bad_input.py. (Issue 7, item 10.)"""

from __future__ import annotations

import time
import uuid

import httpx
import orjson
import pytest

from tests.support.fault_tools import (
    assert_still_serving,
    assert_store_is_consistent,
    open_socket,
    parse_response,
    raw_request,
    read_until_closed,
    recorded_with,
    send_raw,
)
from tests.support.store_reading import wait_for_rows

PATH = "/v1/chat/completions"


@pytest.fixture
def proxy(proxy_factory, simulator):
    """A proxy with a short body deadline, so a client that stops sending is answered quickly."""
    return proxy_factory(simulator.base_url, extra_config="[server]\nbody_timeout_s = 1")


def marked_body() -> tuple[str, bytes]:
    marker = f"m{uuid.uuid4().hex[:12]}"
    messages = [{"role": "user", "content": f"Where do orders ship from? {marker}"}]
    return marker, orjson.dumps({"model": "sim-small", "messages": messages})


def assert_captured_statuses(proxy, expected: list[int]) -> None:
    """After one more ordinary request (which must succeed), the store holds exactly these
    exchanges, in order, followed by that request's 200, and passes its integrity check."""
    assert_still_serving(proxy)
    wait_for_rows(proxy.store_path, len(expected) + 1)
    rows = sorted(assert_store_is_consistent(proxy.store_path), key=lambda row: row["id"])
    assert [row["status"] for row in rows] == [*expected, 200]


@pytest.mark.timeout(60)
def test_a_lone_surrogate_escape_is_forwarded_byte_for_byte_and_the_primarys_error_passed_through(proxy, simulator):
    marker = uuid.uuid4().hex[:12]
    body = b'{"model":"sim-small","messages":[{"role":"user","content":"\\ud800 %s"}]}' % marker.encode()
    proxied = httpx.post(proxy.base_url + "/chat/completions", content=body, timeout=30)
    direct = httpx.post(simulator.base_url + "/chat/completions", content=body, timeout=30)

    assert (proxied.status_code, proxied.content) == (direct.status_code, direct.content)
    assert recorded_with(simulator, marker)[0]["raw"].encode("latin-1") == body
    (row,) = wait_for_rows(proxy.store_path, 1)
    assert row["request_unparseable"] == 1 and row["request_raw"] == body
    assert_captured_statuses(proxy, [direct.status_code])


@pytest.mark.timeout(60)
def test_a_lone_surrogate_escape_beside_the_shadowtap_field_is_forwarded_without_the_field_not_a_500(
        proxy, simulator):
    marker = uuid.uuid4().hex[:12]
    body = (b'{"model":"sim-small","messages":[{"role":"user","content":"\\ud800 caf\xc3\xa9 %s"}],'
            b'"shadowtap":{"contexts":[{"text":"Orders ship from Leeds."}]}}' % marker.encode())
    response = httpx.post(proxy.base_url + "/chat/completions", content=body, timeout=30)

    # The same JSON without the field; the surrogate (and so every non-ASCII character) escaped.
    expected = b'{"model":"sim-small","messages":[{"role":"user","content":"\\ud800 caf\\u00e9 %s"}]}' % marker.encode()
    (received,) = recorded_with(simulator, marker)
    assert received["raw"].encode("latin-1") == expected
    direct = httpx.post(simulator.base_url + "/chat/completions", content=expected, timeout=30)
    assert (response.status_code, response.content) == (direct.status_code, direct.content)
    assert_captured_statuses(proxy, [direct.status_code])


@pytest.mark.timeout(60)
def test_a_body_shorter_than_its_content_length_gets_408_when_the_client_stops_sending(proxy, simulator):
    marker, body = marked_body()
    with open_socket(proxy.port) as sock:
        started = time.monotonic()
        sock.sendall(raw_request(PATH, body, content_length=len(body) + 100))
        answer = read_until_closed(sock, timeout_s=10)  # the proxy closes after answering
    elapsed = time.monotonic() - started

    response = parse_response(answer)
    assert response.status == 408 and response.header("connection") == "close"
    assert orjson.loads(response.body)["error"]["code"] == "request_timeout"
    assert 1.0 <= elapsed < 5.0
    assert recorded_with(simulator, marker, timeout_s=0.5) == []
    assert_captured_statuses(proxy, [408])


@pytest.mark.timeout(60)
def test_a_body_shorter_than_its_content_length_is_not_forwarded_when_the_client_hangs_up(proxy, simulator):
    marker, body = marked_body()
    with open_socket(proxy.port) as sock:
        sock.sendall(raw_request(PATH, body, content_length=len(body) + 100))
        time.sleep(0.3)

    assert recorded_with(simulator, marker, timeout_s=0.5) == []
    assert_captured_statuses(proxy, [])


@pytest.mark.timeout(60)
def test_bytes_beyond_a_too_small_content_length_never_reach_the_primary(proxy, simulator):
    marker = uuid.uuid4().hex[:12]
    declared = b'{"probe":"%s"' % marker.encode()
    beyond = b',"model":"sim-small"} garbage-%s' % marker.encode()
    answer = send_raw(proxy.port, raw_request(PATH, declared + beyond, content_length=len(declared)))

    assert parse_response(answer).status == 400  # the primary's verdict on the declared bytes, or the proxy's
    forwarded = recorded_with(simulator, marker, timeout_s=0.5)
    assert all(request["raw"].encode("latin-1") == declared for request in forwarded)
    assert not any("garbage" in request["path"] + request["raw"] for request in simulator.recorded())
    assert_still_serving(proxy)
    assert_store_is_consistent(proxy.store_path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("content_length", [b"abc", b"-5", b"12abc", b"99999999999999999999999999"],
                         ids=["word", "negative", "trailing-letters", "overflow"])
def test_a_malformed_content_length_gets_a_json_400_and_nothing_is_forwarded(proxy, simulator, content_length):
    marker, body = marked_body()
    answer = send_raw(proxy.port, raw_request(PATH, body, b"Content-Length: " + content_length))

    response = parse_response(answer)
    assert response.status == 400
    assert orjson.loads(response.body)["error"]["code"] == "invalid_http_request"
    assert recorded_with(simulator, marker, timeout_s=0.5) == []
    assert_captured_statuses(proxy, [])


@pytest.mark.timeout(60)
def test_a_huge_declared_content_length_gets_413_at_once_without_waiting_for_the_body(proxy, simulator):
    with open_socket(proxy.port) as sock:
        started = time.monotonic()
        sock.sendall(raw_request(PATH, b"", content_length=10**12))
        response = parse_response(read_until_closed(sock, timeout_s=0.9))

    assert response.status == 413 and time.monotonic() - started < 0.9
    assert_captured_statuses(proxy, [413])
