"""A request path can never choose the upstream: tricky paths against a real `shadowtap serve`
whose primary and a decoy are both recording servers on loopback. The decoy must see nothing."""

from __future__ import annotations

import pytest

from shadowtap.proxy.upstream_path import UnsafePath, upstream_suffix
from tests.support.fault_tools import parse_response, send_raw
from tests.support.recording_upstream import recording_upstream


@pytest.fixture
def recorders():
    with recording_upstream() as primary, recording_upstream() as decoy:
        yield primary, decoy


def _tricky_paths(decoy: str) -> list[str]:
    host, port = decoy.split(":")
    return [
        f"/v1%2F@{decoy}/v1/models", f"/v1%2f@{decoy}/v1/models", f"/v1%2F%2F{decoy}/v1/models",
        f"/v1/%2F%2F{decoy}/v1/models", f"/v1/..%2F..%2F@{decoy}/models", f"/v1%5C@{decoy}/v1/models",
        f"/v1/%5C%5C{decoy}/models", f"/v1\\@{decoy}/v1/models", f"/v1/\\\\{decoy}/models",
        f"/v1//{decoy}/v1/models", f"/v1///{decoy}/models", f"/v1@{decoy}/v1/models",
        f"/v1%40{decoy}/v1/models", f"/v1:{port}@{host}/v1/models", f"/v1.{decoy}/models",
        f"http://{decoy}/v1/models", f"//{decoy}/v1/models", f"/v1/../../{decoy}/models",
        "/v1/../../etc/passwd", "/v1/%2e%2e/%2e%2e/etc/passwd", "/v1/..%2f..%2fetc/passwd",
        "/v1/%2E%2E%2F%2E%2E/etc/passwd", "/v1/./models", "/v1/%2e/models", "/v1/.%2e/models",
        "/v1/models/..", "/v1/models/%2e%2e", f"/v1%2F[::1]:{port}/models", f"/v1/@[::ffff:{host}]:{port}/x",
        "/v1/%EF%BC%8F%EF%BC%8Fdecoy/models",  # fullwidth solidus, folded to "/" by NFKC
        "/v1/%E2%80%A4%E2%80%A4/models",  # one-dot leaders: ".." after NFKC
        f"/v1/%00@{decoy}/models", "/v1/%zz/models", "/v1/%2/models", f"/v1#@{decoy}/models",
        f"/v1/\u2215\u2215{decoy}/models".encode().decode("latin-1"),  # raw UTF-8 "∕" bytes
    ]


@pytest.mark.parametrize("base_path", ["", "/v1"], ids=["base-without-path", "base-with-path"])
def test_tricky_paths_never_reach_another_host(proxy_factory, recorders, base_path):
    primary, decoy = recorders
    proxy = proxy_factory(f"http://{primary.address}{base_path}")
    paths = _tricky_paths(decoy.address)
    assert len(paths) >= 30
    for path in paths:
        request = b"GET " + path.encode("latin-1") + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        answer = parse_response(send_raw(proxy.port, request))
        assert answer.status in (200, 400, 404), (path, answer)
        if answer.status == 200:
            assert answer.body == b'{"answered_by":"recorder"}', path
    assert decoy.connections == 0 and decoy.request_lines == []
    # Everything that did reach the primary stayed below its base path.
    for line in primary.request_lines:
        method, target, _ = line.split(" ")
        assert target == (base_path or "/") or target.startswith(f"{base_path}/"), line


def test_refused_path_gets_a_json_400_that_names_the_problem(proxy_factory, recorders):
    primary, decoy = recorders
    proxy = proxy_factory(f"http://{primary.address}")
    request = (f"GET /v1%2F@{decoy.address}/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Authorization: Bearer sk-client\r\nConnection: close\r\n\r\n").encode()
    answer = parse_response(send_raw(proxy.port, request))
    assert answer.status == 400
    assert answer.header("content-type") == "application/json"
    assert b'"code":"invalid_path"' in answer.body and b"encoded '/'" in answer.body
    assert primary.connections == 0 and decoy.connections == 0


def test_ordinary_paths_are_forwarded_below_the_base_path(proxy_factory, recorders):
    primary, _ = recorders
    proxy = proxy_factory(f"http://{primary.address}/openai/v1")
    for path in ("/v1/models", "/v1/models/ft:gpt-4o-mini:acme:support:abc123", "/v1/files/file-abc/content",
                 "/v1/models/accounts%3Aacme", "/v1/models/", "/v1/responses/resp_1?include=usage"):
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        assert parse_response(send_raw(proxy.port, request)).status == 200, path
    assert [line.split(" ")[1] for line in primary.request_lines] == [
        "/openai/v1/models", "/openai/v1/models/ft:gpt-4o-mini:acme:support:abc123",
        "/openai/v1/files/file-abc/content", "/openai/v1/models/accounts%3Aacme", "/openai/v1/models/",
        "/openai/v1/responses/resp_1?include=usage"]


@pytest.mark.parametrize("raw_path, suffix", [
    (b"/v1", ""), (b"/v1/chat/completions", "/chat/completions"), (b"/v1/models/", "/models/"),
    (b"/v1/models/a%20b", "/models/a%20b"), (b"/v1/models/caf%C3%A9", "/models/caf%C3%A9"),
])
def test_upstream_suffix_keeps_what_an_sdk_sends(raw_path, suffix):
    assert upstream_suffix(raw_path) == suffix


@pytest.mark.parametrize("raw_path", [
    b"/v1%2F@evil/x", b"/v1x", b"/v2/models", b"/v1//x", b"/v1/a/../b", b"/v1/%2e%2E/b", b"/v1/a%5Cb",
    b"/v1/a\\b", b"/v1/\xc3\xa9", b"/v1/a%ZZ", b"/v1/%C3", b"/v1/%EF%BC%8F", b"/v1/a%0Ab", b"/v1/.",
])
def test_upstream_suffix_refuses_paths_that_could_leave_the_base_path(raw_path):
    with pytest.raises(UnsafePath):
        upstream_suffix(raw_path)
