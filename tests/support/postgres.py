"""The machine's PostgreSQL (127.0.0.1:5432, trust auth, database `test`) for the store tests: a
schema of its own per test, dropped afterwards, so parallel runs and reruns never meet; and a
loopback TCP relay in front of it that a test stops and starts to make it unreachable."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

HOST, PORT, DATABASE = "127.0.0.1", 5432, "test"


def schema_url(schema: str, *, port: int = PORT) -> str:
    return f"postgresql://postgres@{HOST}:{port}/{DATABASE}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh, empty schema in the test database; dropped with everything in it afterwards."""
    schema = f"st_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"postgresql://postgres@{HOST}:{PORT}/{DATABASE}", autocommit=True) as admin:
        admin.execute(f"create schema {schema}")
    yield schema
    with psycopg.connect(f"postgresql://postgres@{HOST}:{PORT}/{DATABASE}", autocommit=True) as admin:
        admin.execute(f"drop schema {schema} cascade")


@pytest.fixture
def pg_url(pg_schema) -> str:
    """A postgresql:// URL whose connections see only this test's schema."""
    return schema_url(pg_schema)


def pg_rows(url: str, sql: str) -> list[tuple]:
    """Run one statement on its own connection; its rows, if it returns any."""
    with psycopg.connect(url) as conn:
        cursor = conn.execute(sql)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


class TcpRelay:
    """Forwards a loopback port to PostgreSQL. `stop()` refuses new connections and cuts every open
    one, as a network partition or a server restart would; `start()` opens the same port again."""

    def __init__(self, target: tuple[str, int] = (HOST, PORT)) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind((HOST, 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:  # wakes the thread blocked in accept(); close() alone leaves the port listening
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def pg_relay() -> Iterator[TcpRelay]:
    relay = TcpRelay()
    relay.start()
    yield relay
    relay.stop()
