"""A bare upstream on loopback that records each request line and answers 200 with a fixed JSON
body: the primary, or a decoy that must never see a request, in tests about what is forwarded."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ANSWER = b'{"answered_by":"recorder"}'


class RecordingUpstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.request_lines: list[str] = []
        self.connections = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"


class _RecordingHandler(socketserver.StreamRequestHandler):
    server: RecordingUpstream

    def handle(self) -> None:
        raw_line = self.rfile.readline(65536)
        if not raw_line:
            # Connected and closed without sending a byte: `shadowtap serve`'s start-up check that
            # the primary can be reached. Not a request, so neither counted nor recorded.
            return
        self.server.connections += 1
        line = raw_line.decode("latin-1").rstrip("\r\n")
        self.server.request_lines.append(line)
        length = 0
        while (header := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        self.rfile.read(length)
        self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                         b"connection: close\r\n\r\n%s" % (len(ANSWER), ANSWER))


@contextmanager
def recording_upstream() -> Iterator[RecordingUpstream]:
    server = RecordingUpstream()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
