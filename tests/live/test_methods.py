"""Only the methods an OpenAI- or Anthropic-compatible API uses are forwarded: GET, POST and
DELETE, narrowed per dialect. Everything else gets a JSON 405 with `Allow` and never reaches the
primary, which here is a recording server on loopback."""

from __future__ import annotations

import httpx
import orjson
import pytest

from shadowtap.proxy.dialects import DIALECTS, OTHER, dialect_for_path
from tests.support.fault_tools import RawResponse, parse_response, send_raw
from tests.support.recording_upstream import recording_upstream
from tests.support.store_reading import wait_for_exchange

# What neither API uses; HEAD and OPTIONS (a browser's CORS preflight) included on purpose.
NEVER_FORWARDED = ("TRACE", "OPTIONS", "PUT", "PATCH", "HEAD", "PROPFIND")
PATHS_AND_ALLOW = (
    ("/v1/chat/completions", "GET, POST"), ("/v1/completions", "POST"), ("/v1/embeddings", "POST"),
    ("/v1/responses/resp_1", "GET, POST, DELETE"), ("/v1/files/file-abc", "GET, POST, DELETE"),
    ("/v1/models", "GET, POST, DELETE"), ("/v1/messages", "POST"), ("/v1", "GET, POST, DELETE"),
)


@pytest.fixture
def recorder():
    with recording_upstream() as server:
        yield server


def _send(port: int, method: str, path: str, *headers: str, body: bytes = b"") -> RawResponse:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return parse_response(send_raw(port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body))


def _assert_refused(answer: RawResponse, method: str, allow: str, path: str) -> None:
    assert answer.status == 405, (method, answer)
    assert answer.header("allow") == allow
    assert answer.header("content-type") == "application/json"
    # The id goes only where it names a captured exchange (tests/live/test_exchange_id.py).
    assert bool(answer.header("x-shadowtap-exchange-id")) == dialect_for_path(path).captured, path
    if method == "HEAD":
        assert answer.body == b""  # a HEAD answer has headers only
        return
    error = orjson.loads(answer.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "method_not_allowed" and error["type"] == "invalid_request_error"
    assert method in error["message"] and allow in error["message"]


def test_methods_no_api_uses_get_a_json_405_with_allow_and_never_reach_the_primary(proxy_factory, recorder):
    proxy = proxy_factory(f"{recorder.base_url}/v1")
    for path, allow in PATHS_AND_ALLOW:
        for method in NEVER_FORWARDED:
            body = b"" if method in ("HEAD", "TRACE") else b'{"model":"m"}'
            _assert_refused(_send(proxy.port, method, path, body=body), method, allow, path)
    assert recorder.request_lines == []


def test_a_method_another_endpoint_uses_is_refused_where_its_api_does_not_use_it(proxy_factory, recorder):
    proxy = proxy_factory(f"{recorder.base_url}/v1")
    for method, path, allow in [("DELETE", "/v1/chat/completions", "GET, POST"), ("GET", "/v1/embeddings", "POST"),
                                ("DELETE", "/v1/embeddings", "POST"), ("GET", "/v1/completions", "POST")]:
        _assert_refused(_send(proxy.port, method, path), method, allow, path)
    assert recorder.request_lines == []


def test_methods_the_apis_use_still_reach_the_primary(proxy_factory, recorder):
    proxy = proxy_factory(f"{recorder.base_url}/v1")
    allowed = [("POST", "/v1/chat/completions"), ("GET", "/v1/chat/completions?limit=5"),
               ("POST", "/v1/completions"), ("POST", "/v1/embeddings"), ("POST", "/v1/responses"),
               ("GET", "/v1/responses/resp_1"), ("DELETE", "/v1/responses/resp_1"),
               ("POST", "/v1/responses/resp_1/cancel"), ("GET", "/v1/models"), ("DELETE", "/v1/models/ft:abc"),
               ("POST", "/v1/files"), ("GET", "/v1/files/file-abc/content"), ("DELETE", "/v1/files/file-abc"),
               ("POST", "/v1/messages"), ("POST", "/v1/messages/batches"), ("DELETE", "/v1/messages/batches/b_1")]
    for method, path in allowed:
        answer = _send(proxy.port, method, path, body=b'{"model":"m"}' if method == "POST" else b"")
        assert (answer.status, answer.body) == (200, b'{"answered_by":"recorder"}'), (method, path, answer)
    assert recorder.request_lines == [f"{method} {path} HTTP/1.1" for method, path in allowed]


def test_a_cors_preflight_is_refused_without_cors_headers(proxy_factory, recorder):
    proxy = proxy_factory(f"{recorder.base_url}/v1")
    answer = _send(proxy.port, "OPTIONS", "/v1/chat/completions", "Origin: https://app.example",
                   "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization")
    _assert_refused(answer, "OPTIONS", "GET, POST", "/v1/chat/completions")
    assert not [name for name, _ in answer.headers if name.startswith("access-control-")]
    assert recorder.request_lines == []


def test_a_refused_method_is_counted_logged_and_captured(proxy_factory, recorder):
    proxy = proxy_factory(f"{recorder.base_url}/v1")
    answer = _send(proxy.port, "PUT", "/v1/chat/completions", body=b'{"model":"m","messages":[]}')
    _send(proxy.port, "PATCH", "/v1/models")
    assert answer.status == 405
    metrics = httpx.get(f"{proxy.url}/metrics").text
    assert "shadowtap_request_method_refused_total 2.0" in metrics
    assert 'shadowtap_requests_total{endpoint="chat.completions",status="405"} 1.0' in metrics
    row = wait_for_exchange(proxy.store_path, answer.header("x-shadowtap-exchange-id"))
    assert (row["method"], row["status"]) == ("PUT", 405)
    warnings = [orjson.loads(line) for line in proxy.log_text().splitlines()
                if '"request method refused"' in line]
    assert [(entry["level"], entry["method"], entry["endpoint"]) for entry in warnings] == [
        ("warning", "PUT", "chat.completions"), ("warning", "PATCH", "other")]
    assert recorder.request_lines == []


@pytest.mark.parametrize("path, methods", [
    ("/v1/chat/completions", ("GET", "POST")), ("/v1/completions", ("POST",)), ("/v1/embeddings", ("POST",)),
    ("/v1/responses", ("GET", "POST", "DELETE")), ("/v1/responses/resp_1/input_items", ("GET", "POST", "DELETE")),
    ("/v1/chat/completions/chatcmpl-1", ("GET", "POST", "DELETE")), ("/v1/files", ("GET", "POST", "DELETE")),
    ("/v1/messages", ("POST",)), ("/v1/messages/count_tokens", ("POST",)),
    ("/v1/messages/batches", ("GET", "POST", "DELETE")),
])
def test_each_dialect_declares_the_methods_its_api_uses(path, methods):
    assert dialect_for_path(path).methods == methods


def test_no_dialect_forwards_a_method_outside_get_post_and_delete():
    for dialect in (*DIALECTS, OTHER):
        assert dialect.methods, dialect.name
        assert set(dialect.methods) <= {"GET", "POST", "DELETE"}, dialect.name
        assert len(set(dialect.methods)) == len(dialect.methods), dialect.name
