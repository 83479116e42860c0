"""Fault injection, headers: hop-by-hop headers stop at the proxy in both directions, conflicting
framing is refused before anything reaches the primary (no request smuggling), header values
cannot carry a second header, and the primary's rate-limit and request-id headers reach the
client unchanged. (Issue 7, item 7.)"""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from tests.support.fault_tools import (
    QUESTION,
    assert_still_serving,
    parse_response,
    raw_request,
    recorded_with,
    send_raw,
)

PATH = "/v1/chat/completions"


def marked_body() -> tuple[str, bytes]:
    marker = f"m{uuid.uuid4().hex[:12]}"
    messages = [{"role": "user", "content": f"Where do orders ship from? {marker}"}]
    return marker, orjson.dumps({"model": "sim-small", "messages": messages})


@pytest.mark.timeout(60)
def test_hop_by_hop_request_headers_and_those_connection_names_are_not_forwarded(proxy, simulator):
    marker, body = marked_body()
    response = parse_response(send_raw(proxy.port, raw_request(
        PATH, body, b"Connection: close, x-per-hop", b"X-Per-Hop: only-for-the-proxy", b"TE: trailers",
        b"Keep-Alive: timeout=5", b"Proxy-Connection: keep-alive", b"Upgrade: h2c", b"X-End-To-End: kept")))

    assert response.status == 200
    (received,) = recorded_with(simulator, marker)
    forwarded = set(received["headers"])
    assert forwarded.isdisjoint({"connection", "x-per-hop", "te", "keep-alive", "proxy-connection", "upgrade"})
    assert received["headers"]["x-end-to-end"] == "kept"


SMUGGLING = {
    "content-length-and-chunked": [b"Content-Length: 4", b"Transfer-Encoding: chunked"],
    "chunked-and-content-length": [b"Transfer-Encoding: chunked", b"Content-Length: 4"],
    "two-different-content-lengths": [b"Content-Length: 5", b"Content-Length: 0"],
    "two-equal-content-lengths": [b"Content-Length: 5", b"Content-Length: 5"],
    "chunked-not-last": [b"Transfer-Encoding: chunked, identity"],
    "obfuscated-chunked": [b"Transfer-Encoding: xchunked"],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("framing", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_conflicting_framing_gets_a_400_and_the_hidden_request_never_reaches_the_primary(
        proxy, simulator, framing):
    marker = f"smuggled-{uuid.uuid4().hex[:12]}"
    # Whichever length a server believed, the bytes after it would be this second request.
    hidden = f"GET /v1/{marker} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    answer = send_raw(proxy.port, raw_request(PATH, b"0\r\n\r\n" + hidden, b"Connection: keep-alive", *framing))

    response = parse_response(answer)
    assert response.status == 400
    assert orjson.loads(response.body)["error"]["code"] == "invalid_http_request"
    assert answer.count(b"HTTP/1.1 ") == 1  # one answer: the hidden request was not served either
    assert recorded_with(simulator, marker, timeout_s=0.5) == []
    assert_still_serving(proxy)


INJECTIONS = {
    "bare-cr": b"X-Note: a\rX-Injected: yes",
    "bare-lf": b"X-Note: a\nX-Injected: yes",
    "folded-line": b"X-Note: a\r\n X-Injected: yes",
    "nul": b"X-Note: a\x00X-Injected: yes",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("header", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_a_line_break_in_a_header_value_cannot_add_a_header_upstream(proxy, simulator, header):
    marker, body = marked_body()
    response = parse_response(send_raw(proxy.port, raw_request(PATH, body, header)))

    assert response.status == 400
    assert recorded_with(simulator, marker, timeout_s=0.5) == []  # refused whole, nothing forwarded
    assert_still_serving(proxy)


@pytest.mark.timeout(60)
def test_a_utf8_header_value_reaches_the_primary_byte_for_byte(proxy, simulator):
    marker, body = marked_body()
    value = "Zoë Müller ☕".encode()
    assert parse_response(send_raw(proxy.port, raw_request(PATH, body, b"X-Customer: " + value))).status == 200

    (received,) = recorded_with(simulator, marker)
    assert received["headers"]["x-customer"].encode("latin-1") == value  # the simulator keeps bytes as Latin-1


OPENAI_HEADERS = {"retry-after": "7", "retry-after-ms": "7000", "openai-processing-ms": "412",
                  "openai-version": "2020-10-01", "x-ratelimit-limit-requests": "10000",
                  "x-ratelimit-remaining-requests": "9999", "x-ratelimit-reset-tokens": "6ms",
                  "x-request-id": "req-upstream-abc123"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_rate_limit_and_request_id_headers_reach_the_client_unchanged(proxy, simulator, stream):
    body = {**QUESTION, "stream": stream}
    headers = {"x-sim-response-headers": orjson.dumps(OPENAI_HEADERS).decode()}
    direct = httpx.post(f"{simulator.base_url}/chat/completions", json=body, headers=headers, timeout=30)
    proxied = httpx.post(f"{proxy.base_url}/chat/completions", json=body, headers=headers, timeout=30)

    assert proxied.status_code == direct.status_code == 200
    for name, value in OPENAI_HEADERS.items():
        assert proxied.headers.get_list(name) == direct.headers.get_list(name), name
        assert value in proxied.headers.get_list(name), name
    assert proxied.content == direct.content


@pytest.mark.timeout(60)
def test_hop_by_hop_response_headers_from_the_primary_are_not_relayed(proxy):
    hop_by_hop = {"connection": "x-upstream-hop", "x-upstream-hop": "1", "keep-alive": "timeout=5",
                  "proxy-connection": "keep-alive", "upgrade": "h2c", "trailer": "x-checksum",
                  "proxy-authenticate": "Basic", "x-end-to-end": "kept"}
    response = httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION, timeout=30,
                          headers={"x-sim-response-headers": orjson.dumps(hop_by_hop).decode()})

    assert response.status_code == 200
    relayed = set(response.headers)
    assert relayed.isdisjoint({"x-upstream-hop", "keep-alive", "proxy-connection", "upgrade", "trailer",
                               "proxy-authenticate"})
    assert response.headers.get("connection") != "x-upstream-hop"
    assert response.headers["x-end-to-end"] == "kept"


@pytest.mark.timeout(60)
def test_conflicting_lengths_from_the_primary_become_a_clear_502_rather_than_an_ambiguous_relay(proxy):
    response = httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION, timeout=30,
                          headers={"x-sim-response-headers": '{"transfer-encoding": "chunked"}'})

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_unreachable" and "Transfer-Encoding" in error["message"]
    assert_still_serving(proxy)
