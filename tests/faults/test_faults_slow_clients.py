"""Fault injection, slow clients (slowloris): many sockets that send their headers or body a byte
at a time, or nothing at all, are cut off by `[server] header_timeout_s` and `body_timeout_s`
while other clients are served normally at the same time. (Issue 7, item 11.)"""

from __future__ import annotations

import select
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from shadowtap.core.config import config_from_dict
from shadowtap.core.errors import ConfigError
from tests.support.fault_tools import (
    QUESTION,
    assert_store_is_consistent,
    open_socket,
    parse_response,
    raw_request,
    read_until_closed,
    recorded_with,
)
from tests.support.store_reading import wait_for_rows

HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 2.0
SLOW_CLIENTS = 40
DRIP_INTERVAL_S = 0.2
MARGIN_S = 1.5  # scheduling noise on a shared two-core machine; the deadline itself is exact


@pytest.fixture
def proxy(proxy_factory, simulator):
    return proxy_factory(simulator.base_url, extra_config=(
        f"[server]\nheader_timeout_s = {HEADER_TIMEOUT_S}\nbody_timeout_s = {BODY_TIMEOUT_S}"))


@dataclass
class SlowClient:
    sock: object
    opened_at: float
    answer: bytes = b""
    closed_at: float | None = None

    @property
    def held_s(self) -> float:
        return self.closed_at - self.opened_at


@dataclass(eq=False)  # a Thread must stay hashable
class Trickler(threading.Thread):
    """Opens sockets, sends `opening` on each, then one byte of `drip` every DRIP_INTERVAL_S until
    the server answers; records what came back and when each connection was closed."""

    port: int
    opening: bytes
    drip: bytes
    count: int = SLOW_CLIENTS
    limit_s: float = 20.0
    clients: list[SlowClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        for _ in range(self.count):
            sock = open_socket(self.port)
            sock.sendall(self.opening)
            self.clients.append(SlowClient(sock, time.monotonic()))
        deadline = time.monotonic() + self.limit_s
        sent = 0
        while time.monotonic() < deadline and self._open():
            next_drip = time.monotonic() + DRIP_INTERVAL_S
            while (wait := next_drip - time.monotonic()) > 0 and self._open():
                readable, _, _ = select.select([c.sock for c in self._open()], [], [], wait)
                for sock in readable:
                    self._read(next(c for c in self.clients if c.sock is sock))
            byte = self.drip[sent % len(self.drip):sent % len(self.drip) + 1] if self.drip else b""
            sent += 1
            for client in self._open():
                if byte and not client.answer:  # once answered, only listen
                    try:
                        client.sock.send(byte)
                    except OSError:
                        pass
        for client in self._open():
            client.sock.close()

    def _open(self) -> list[SlowClient]:
        return [client for client in self.clients if client.closed_at is None]

    @staticmethod
    def _read(client: SlowClient) -> None:
        try:
            data = client.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        client.answer += data
        if not data:
            client.closed_at = time.monotonic()
            client.sock.close()


def serve_others_meanwhile(proxy, trickler: Trickler, for_s: float) -> None:
    """Ordinary requests while the slow clients hold their sockets: each is answered promptly."""
    trickler.start()
    while len(trickler.clients) < trickler.count:
        time.sleep(0.01)
    latencies = []
    with httpx.Client(timeout=10) as client:
        stop = time.monotonic() + for_s
        while time.monotonic() < stop:
            started = time.monotonic()
            response = client.post(f"{proxy.base_url}/chat/completions", json=QUESTION)
            assert response.status_code == 200 and response.json()["choices"]
            latencies.append(time.monotonic() - started)
    assert all(client.closed_at is None for client in trickler.clients), "slow clients were cut before their deadline"
    assert len(latencies) >= 5 and max(latencies) < 1.0, latencies
    trickler.join()


def assert_every_slow_client_cut_at(trickler: Trickler, deadline_s: float, *, answered: bool) -> None:
    for client in trickler.clients:
        assert client.closed_at is not None, "a slow client still holds its connection"
        assert deadline_s - 0.1 <= client.held_s < deadline_s + MARGIN_S
        if not answered:
            assert client.answer == b""  # nothing was asked, so nothing is answered
            continue
        response = parse_response(client.answer)
        assert response.status == 408 and response.header("connection") == "close"
        assert orjson.loads(response.body)["error"]["code"] == "request_timeout"


@pytest.mark.timeout(60)
def test_clients_trickling_headers_get_408_at_the_deadline_while_others_are_served(proxy):
    trickler = Trickler(proxy.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", b"a")
    serve_others_meanwhile(proxy, trickler, for_s=HEADER_TIMEOUT_S - 0.5)

    assert_every_slow_client_cut_at(trickler, HEADER_TIMEOUT_S, answered=True)


@pytest.mark.timeout(60)
def test_connections_that_send_nothing_are_closed_at_the_header_deadline_while_others_are_served(proxy):
    trickler = Trickler(proxy.port, b"", b"")
    serve_others_meanwhile(proxy, trickler, for_s=HEADER_TIMEOUT_S - 0.5)

    assert_every_slow_client_cut_at(trickler, HEADER_TIMEOUT_S, answered=False)


@pytest.mark.timeout(60)
def test_clients_trickling_the_body_get_408_at_the_deadline_and_nothing_is_forwarded(proxy, simulator):
    marker = uuid.uuid4().hex[:12]
    body = orjson.dumps({**QUESTION, "note": marker})
    opening = raw_request("/v1/chat/completions", b"", content_length=len(body))
    trickler = Trickler(proxy.port, opening, body)
    serve_others_meanwhile(proxy, trickler, for_s=BODY_TIMEOUT_S - 0.5)

    assert_every_slow_client_cut_at(trickler, BODY_TIMEOUT_S, answered=True)
    assert recorded_with(simulator, marker, timeout_s=0.5) == []
    rows = wait_for_rows(proxy.store_path, SLOW_CLIENTS, "status = 408")
    assert len(rows) == SLOW_CLIENTS
    assert_store_is_consistent(proxy.store_path)


@pytest.mark.timeout(60)
def test_a_keep_alive_connection_that_trickles_its_next_request_gets_408_at_the_deadline(proxy):
    body = orjson.dumps(QUESTION)
    with open_socket(proxy.port) as sock:
        sock.sendall(raw_request("/v1/chat/completions", body, b"Connection: keep-alive"))
        first = b""
        while b"\r\n\r\n" not in first or len(first.partition(b"\r\n\r\n")[2]) < int(
                parse_response(first).header("content-length")):
            first += sock.recv(65536)
        assert parse_response(first).status == 200

        started = time.monotonic()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHo")
        answer = b""
        while not answer and time.monotonic() - started < HEADER_TIMEOUT_S + MARGIN_S:
            time.sleep(DRIP_INTERVAL_S)
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                answer = read_until_closed(sock, timeout_s=5)
            else:
                sock.send(b"s")

    assert parse_response(answer).status == 408
    assert HEADER_TIMEOUT_S - 0.1 <= time.monotonic() - started < HEADER_TIMEOUT_S + MARGIN_S


@pytest.mark.parametrize("key", ["header_timeout_s", "body_timeout_s"])
@pytest.mark.parametrize("value", [0, -1])
def test_a_deadline_that_is_not_positive_is_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"\[server\] {key} = {value}"):
        config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"}, "server": {key: value}})


def test_deadlines_default_to_ten_seconds_for_headers_and_thirty_for_the_body():
    server = config_from_dict({"primary": {"base_url": "http://127.0.0.1:9000/v1"}}).server
    assert (server.header_timeout_s, server.body_timeout_s) == (10.0, 30.0)
