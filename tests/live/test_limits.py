"""Limits a client meets before its request reaches the primary, against a real `shadowtap serve`:
header size and count (431) and the connection cap (idle connections make room; 503 when all are
busy), each with a JSON error, a closed connection and nothing forwarded, while normal requests
pass."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from tests.support.fault_tools import QUESTION, open_socket, parse_response, raw_request, read_until_closed

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024


def send_while_reading(port: int, data: bytes, timeout_s: float = 20.0) -> bytes:
    """Send a large request from a thread while reading the answer, as an HTTP client would:
    the proxy may answer long before the client has finished sending."""
    with open_socket(port, timeout_s) as sock:
        def send() -> None:
            try:
                sock.sendall(data)
            except OSError:
                pass  # the proxy closed after answering; the answer is what matters

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = read_until_closed(sock, timeout_s)
        sender.join(timeout_s)
        return answer


def chat_request(*headers: bytes) -> bytes:
    return raw_request("/v1/chat/completions", json.dumps(QUESTION).encode(), b"Content-Type: application/json",
                       *headers)


def error_code(raw: bytes) -> str:
    return json.loads(parse_response(raw).body)["error"]["code"]


@pytest.fixture
def quiet_simulator(simulator):
    simulator.clear()
    return simulator


def test_a_16_mib_header_gets_431_and_the_primary_sees_nothing(proxy, quiet_simulator):
    started = time.monotonic()
    answer = send_while_reading(proxy.port, chat_request(b"X-Big: " + b"a" * (16 * MIB)))

    response = parse_response(answer)
    assert response.status == 431
    assert response.header("content-type") == "application/json" and response.header("connection") == "close"
    assert error_code(answer) == "request_headers_too_large"
    assert time.monotonic() - started < 10
    assert quiet_simulator.recorded() == []
    assert httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION).status_code == 200


def test_a_thousand_headers_get_431_and_the_primary_sees_nothing(proxy, quiet_simulator):
    headers = [b"X-H%d: v" % index for index in range(1000)]
    answer = send_while_reading(proxy.port, chat_request(*headers))

    assert parse_response(answer).status == 431 and error_code(answer) == "request_headers_too_large"
    assert quiet_simulator.recorded() == []


def test_one_header_over_the_count_gets_431_and_a_request_at_the_limits_passes(proxy, quiet_simulator):
    # Host, Content-Type, Connection and Content-Length are four of the hundred.
    at_count = [b"X-H%d: v" % index for index in range(96)]
    assert parse_response(send_while_reading(proxy.port, chat_request(*at_count))).status == 200
    over_count = [*at_count, b"X-One-More: v"]
    assert parse_response(send_while_reading(proxy.port, chat_request(*over_count))).status == 431

    near_size = [b"X-Big-%d: " % index + b"b" * 15_000 for index in range(4)]  # 60 KB of headers
    assert parse_response(send_while_reading(proxy.port, chat_request(*near_size))).status == 200
    over_size = [*near_size, b"X-Big-4: " + b"b" * 6_000]
    assert parse_response(send_while_reading(proxy.port, chat_request(*over_size))).status == 431
    assert len(quiet_simulator.recorded()) == 2


def test_header_limits_are_configurable(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config="[server]\nmax_header_bytes = 2048\nmax_header_count = 10")
    assert parse_response(send_while_reading(proxy.port, chat_request(b"X-Big: " + b"c" * 3000))).status == 431
    many = [b"X-H%d: v" % index for index in range(7)]  # eleven with the request's own four
    assert parse_response(send_while_reading(proxy.port, chat_request(*many))).status == 431
    assert parse_response(send_while_reading(proxy.port, chat_request(*many[:6]))).status == 200


def busy_connections(port: int, count: int, latency_ms: int) -> list:
    """`count` connections, each with a request the primary takes `latency_ms` to answer."""
    busy = [open_socket(port, timeout_s=30) for _ in range(count)]
    for sock in busy:
        sock.sendall(chat_request(f"x-sim-latency-ms: {latency_ms}".encode()))
    return busy


def closed_without_an_answer(sock) -> bool:
    """The server closed the connection (EOF) having sent nothing; False while it is open."""
    sock.settimeout(2.0)
    try:
        return sock.recv(65536) == b""
    except TimeoutError:
        return False


def test_at_the_cap_idle_connections_make_room_for_new_ones(proxy_factory, quiet_simulator):
    proxy = proxy_factory(quiet_simulator.base_url, extra_config="[server]\nmax_connections = 5")
    idle = [open_socket(proxy.port) for _ in range(5)]
    try:
        time.sleep(0.2)  # let the proxy accept them all
        for _ in range(3):
            assert parse_response(send_while_reading(proxy.port, chat_request())).status == 200
        assert [closed_without_an_answer(sock) for sock in idle] == [True] * 5
    finally:
        for sock in idle:
            sock.close()
    assert len(quiet_simulator.recorded()) == 3


def test_at_the_cap_with_every_connection_busy_a_new_one_gets_503(proxy_factory, quiet_simulator):
    proxy = proxy_factory(quiet_simulator.base_url, extra_config="[server]\nmax_connections = 5")
    busy = busy_connections(proxy.port, 5, latency_ms=3000)
    try:
        time.sleep(0.5)  # the five requests are at the primary
        for _ in range(3):
            response = parse_response(send_while_reading(proxy.port, chat_request()))
            assert response.status == 503 and response.header("connection") == "close"
            assert json.loads(response.body)["error"]["code"] == "proxy_overloaded"
        assert len(quiet_simulator.recorded()) == 5  # the refused requests were never forwarded
        answers = [parse_response(read_until_closed(sock, 10)) for sock in busy]
        assert [answer.status for answer in answers] == [200] * 5  # the busy ones were never cut
        assert eventually_ok(proxy.port)
    finally:
        for sock in busy:
            sock.close()


def test_a_refused_connection_is_closed_without_waiting_for_a_request(proxy_factory, simulator):
    proxy = proxy_factory(simulator.base_url, extra_config="[server]\nmax_connections = 2")
    busy = busy_connections(proxy.port, 2, latency_ms=5000)
    try:
        time.sleep(0.5)
        with open_socket(proxy.port) as refused:
            started = time.monotonic()
            answer = read_until_closed(refused, 10)
            assert parse_response(answer).status == 503
            assert time.monotonic() - started < 3  # the lingering close, not the 10 s header deadline
    finally:
        for sock in busy:
            sock.close()


def eventually_ok(port: int, timeout_s: float = 5.0) -> bool:
    """The proxy notices a closed idle connection a moment after the client closes it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if parse_response(send_while_reading(port, chat_request())).status == 200:
                return True
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.05)
    return False
