"""A loopback OTLP/HTTP receiver for the export tests: collects the spans and log-record events it
is sent, decoded from protobuf."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Receiver:
    """Collects decoded OTLP/HTTP protobuf requests."""

    def __init__(self) -> None:
        self.spans: list = []
        self.events: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    receiver.spans += [span for rs in request.resource_spans for ss in rs.scope_spans
                                       for span in ss.spans]
                elif self.path == "/v1/logs":
                    request = ExportLogsServiceRequest.FromString(body)
                    receiver.events += [record for rl in request.resource_logs for sl in rl.scope_logs
                                        for record in sl.log_records]
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll, so shutdown() at the end of a test returns at once rather than after 0.5 s.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def attributes(item) -> dict:
    values = {}
    for attribute in item.attributes:
        value = attribute.value
        kind = value.WhichOneof("value")
        values[attribute.key] = list(v.string_value for v in value.array_value.values) if kind == "array_value" \
            else getattr(value, kind)
    return values


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.server.shutdown()
