"""What the upstream receives: the client's headers in order, plus only Host and Content-Length."""

from __future__ import annotations

import asyncio

import pytest

from shadowtap.proxy.upstream_http import Origin, RequestTarget
from shadowtap.proxy.upstream_http.request_head import InvalidHeader, request_head
from tests.upstream_http.raw_origin import RawOrigin, answer_each_request, body_of, pool

pytestmark = pytest.mark.timeout(30)

ORIGIN = Origin.parse("http://primary.test:8080/v1")


def test_the_head_is_the_request_line_host_the_given_headers_in_order_and_the_content_length():
    target = RequestTarget.of(ORIGIN, "/chat/completions", b"alt=sse&key=%20")
    head = request_head("POST", target, [("content-type", "application/json"), ("X-Trace", "é")], 12)
    assert head == ("POST /v1/chat/completions?alt=sse&key=%20 HTTP/1.1\r\nHost: primary.test:8080\r\n"
                    "content-type: application/json\r\nX-Trace: é\r\nContent-Length: 12\r\n\r\n").encode()


def test_a_post_without_a_body_says_its_length_is_zero_and_a_get_says_nothing():
    target = RequestTarget.of(ORIGIN, "/models", b"")
    assert request_head("POST", target, [], 0).endswith(b"Host: primary.test:8080\r\nContent-Length: 0\r\n\r\n")
    assert request_head("GET", target, [], 0) == b"GET /v1/models HTTP/1.1\r\nHost: primary.test:8080\r\n\r\n"


def test_the_host_header_leaves_out_the_schemes_default_port():
    target = RequestTarget.of(Origin.parse("https://api.example.test/"), "/v1/messages", b"")
    assert b"\r\nHost: api.example.test\r\n" in request_head("POST", target, [], 2)
    assert str(target) == "https://api.example.test/v1/messages"


@pytest.mark.parametrize("header", [("x-evil", "a\r\nInjected: yes"), ("x-evil", "a\nb"), ("x-ev\ril", "a")])
def test_a_header_holding_a_line_break_is_refused(header):
    with pytest.raises(InvalidHeader):
        request_head("POST", RequestTarget.of(ORIGIN, "/models", b""), [("a", "b"), header], 0)


def test_the_upstream_receives_no_header_the_caller_did_not_give_but_host_and_content_length():
    async def scenario():
        async with RawOrigin(answer_each_request) as origin:
            client = pool()
            try:
                response = await client.request("POST", origin.target(), [("authorization", "Bearer k")], b'{"a":1}')
                await body_of(response)
            finally:
                await client.close()
            return origin.connections[0].heads[0], origin.connections[0].bodies[0], origin.port

    head, body, port = asyncio.run(scenario())
    assert head == (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "authorization: Bearer k\r\nContent-Length: 7\r\n\r\n").encode()
    assert body == b'{"a":1}'
