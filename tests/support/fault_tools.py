"""Tools for the fault-injection suite (tests/faults/): raw sockets for what an HTTP
client library would refuse to send, the simulator's record of a request, and store checks."""

from __future__ import annotations

import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

QUESTION = {"model": "sim-small", "messages": [{"role": "user", "content": "Where do orders ship from?"}]}


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes  # as framed on the wire (chunk sizes included when chunked)

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


def open_socket(port: int, timeout_s: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or the deadline passes)."""
    sock.settimeout(timeout_s)
    received = bytearray()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not data:
            break
        received += data
    return bytes(received)


def send_raw(port: int, data: bytes, timeout_s: float = 10.0) -> bytes:
    """Send bytes as they are and read the whole answer (the request should ask to close)."""
    with open_socket(port, timeout_s) as sock:
        sock.sendall(data)
        return read_until_closed(sock, timeout_s)


def parse_response(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [(name.strip().lower(), value.strip())
               for name, _, value in (line.partition(":") for line in lines[1:])]
    return RawResponse(status, headers, body)


def raw_request(path: str, body: bytes, *extra_headers: bytes, content_length: int | None = None) -> bytes:
    """An HTTP/1.1 request with the headers given verbatim and, unless they say otherwise, a
    correct Content-Length (or the one given) and `Connection: close` (so the answer ends with
    the connection)."""
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", *extra_headers]
    given = [header.split(b":")[0].strip().lower() for header in extra_headers]
    if b"connection" not in given:
        lines.append(b"Connection: close")
    if content_length is not None:
        lines.append(b"Content-Length: %d" % content_length)
    elif not {b"content-length", b"transfer-encoding"} & set(given):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def recorded_with(simulator, marker: str, timeout_s: float = 5.0, *, until=None) -> list[dict]:
    """The simulator's records of requests whose raw body or path contains `marker`; with
    `until`, wait until one of them satisfies it."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r for r in simulator.recorded() if marker in r["raw"] or marker in r["path"]]
        if until is None or any(until(r) for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def assert_store_is_consistent(store_path: Path) -> list[dict]:
    """PRAGMA integrity_check passes and every row is whole; returns the rows."""
    connection = sqlite3.connect(store_path, timeout=5)
    connection.row_factory = sqlite3.Row
    try:
        assert connection.execute("pragma integrity_check").fetchone()[0] == "ok"
        rows = [dict(row) for row in connection.execute("select * from exchanges")]
    finally:
        connection.close()
    for row in rows:
        assert row["id"] and row["started_at"] and row["method"] and row["path"], row
    return rows


def assert_still_serving(proxy) -> None:
    response = httpx.post(f"{proxy.base_url}/chat/completions", json=QUESTION, timeout=10)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]
