"""How the upstream client reads an answer: every HTTP/1.1 framing of a body, answers without one,
and bodies that end early or stall."""

from __future__ import annotations

import asyncio

import pytest

from shadowtap.proxy.upstream_http import BodyBrokeOff, BodyTimedOut, InvalidResponse, ReadTimeout
from tests.upstream_http.raw_origin import RawOrigin, answer_each_request, body_of, ok, pool

pytestmark = pytest.mark.timeout(30)


def fetch(handler, method="POST", **settings):
    """(status, raw headers, body, connections the origin saw) for two requests in a row."""
    async def scenario():
        async with RawOrigin(handler) as origin:
            client = pool(**settings)
            try:
                answers = []
                for _ in range(2):
                    response = await client.request(method, origin.target(), [], b"{}")
                    answers.append((response.status, response.raw_headers, await body_of(response)))
            finally:
                await client.close()
            return answers, len(origin.connections)

    return asyncio.run(scenario())


def test_a_content_length_body_is_read_to_its_length_and_the_connection_kept():
    answers, connections = fetch(lambda exchange: answer_each_request(exchange, ok(b"0123456789")))
    assert [body for _, _, body in answers] == [b"0123456789"] * 2 and connections == 1


def test_a_chunked_body_arrives_without_its_framing_and_the_connection_is_kept():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    answers, connections = fetch(lambda exchange: answer_each_request(exchange, chunked))
    assert [body for _, _, body in answers] == [b"hello world"] * 2 and connections == 1
    assert answers[0][1] == [(b"Transfer-Encoding", b"chunked")]


def test_a_body_without_length_or_chunking_ends_when_the_upstream_closes_the_connection():
    async def close_delimited(exchange):
        await exchange.read_request()
        await exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        exchange.close()

    answers, connections = fetch(close_delimited)
    assert [body for _, _, body in answers] == [b"until the end"] * 2 and connections == 2


@pytest.mark.parametrize("status", [204, 304])
def test_a_204_or_304_answer_has_no_body_and_keeps_the_connection(status):
    answer = b"HTTP/1.1 %d Nothing\r\nETag: x\r\n\r\n" % status
    answers, connections = fetch(lambda exchange: answer_each_request(exchange, answer))
    assert [(code, body) for code, _, body in answers] == [(status, b"")] * 2 and connections == 1


def test_a_head_answer_has_no_body_whatever_its_content_length_says():
    answers, _ = fetch(lambda exchange: answer_each_request(exchange, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
                       method="HEAD")
    assert [(code, headers, body) for code, headers, body in answers] == [(200, [(b"Content-Length", b"99")], b"")] * 2


def test_an_informational_answer_is_skipped_for_the_final_one():
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final")
    answers, _ = fetch(lambda exchange: answer_each_request(exchange, answer))
    assert [(code, body) for code, _, body in answers] == [(200, b"final")] * 2


def test_raw_headers_keep_the_upstreams_case_order_and_repeats():
    answer = ok(b"x", b"X-Request-Id: r1", b"set-cookie: a=1", b"Set-Cookie: b=2")
    answers, _ = fetch(lambda exchange: answer_each_request(exchange, answer))
    assert answers[0][1] == [(b"Content-Length", b"1"), (b"X-Request-Id", b"r1"), (b"set-cookie", b"a=1"),
                             (b"Set-Cookie", b"b=2")]


def test_compressed_bytes_are_relayed_as_sent():
    gzipped = bytes.fromhex("1f8b08000000000000ff4bcc4f0300c1e4d0eb03000000")
    answer = ok(gzipped, b"Content-Encoding: gzip")
    answers, _ = fetch(lambda exchange: answer_each_request(exchange, answer))
    assert answers[0][2] == gzipped


def body_failure(handler, **settings):
    async def scenario():
        async with RawOrigin(handler) as origin:
            client = pool(**settings)
            try:
                response = await client.request("POST", origin.target(), [], b"{}")
                received = []
                try:
                    async for chunk in response.chunks():
                        received.append(chunk)
                except BodyBrokeOff as exc:
                    return b"".join(received), exc
                return b"".join(received), None
            finally:
                await client.close()

    return asyncio.run(scenario())


def test_a_body_cut_short_of_its_content_length_raises_body_broke_off_after_what_arrived():
    async def cut_short(exchange):
        await exchange.read_request()
        await exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        exchange.close()

    received, error = body_failure(cut_short)
    assert received == b"only this" and type(error) is BodyBrokeOff


def test_a_chunked_body_cut_before_its_last_chunk_raises_body_broke_off():
    async def cut_short(exchange):
        await exchange.read_request()
        await exchange.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        exchange.close()

    received, error = body_failure(cut_short)
    assert received == b"hello" and type(error) is BodyBrokeOff


def test_a_body_that_stalls_longer_than_the_read_timeout_raises_body_timed_out():
    async def stall(exchange):
        await exchange.read_request()
        await exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
        await asyncio.sleep(5)

    received, error = body_failure(stall, read_timeout_s=0.3)
    assert received == b"first" and isinstance(error, BodyTimedOut) and isinstance(error, TimeoutError)


def test_a_body_that_keeps_trickling_within_the_read_timeout_is_read_whole():
    async def trickle(exchange):
        await exchange.read_request()
        await exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        for byte in b"slow!":
            await asyncio.sleep(0.1)
            await exchange.answer(bytes([byte]))

    received, error = body_failure(trickle, read_timeout_s=0.3)
    assert received == b"slow!" and error is None


def failure_before_headers(handler, **settings):
    async def scenario():
        async with RawOrigin(handler) as origin:
            client = pool(**settings)
            try:
                await client.request("POST", origin.target(), [], b"{}")
            finally:
                await client.close()

    asyncio.run(scenario())


def test_no_answer_within_the_read_timeout_raises_read_timeout():
    async def silent(exchange):
        await exchange.read_request()
        await asyncio.sleep(5)

    with pytest.raises(ReadTimeout):
        failure_before_headers(silent, read_timeout_s=0.3)


def test_bytes_that_are_not_http_raise_invalid_response():
    async def garbage(exchange):
        await exchange.read_request()
        await exchange.answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    with pytest.raises(InvalidResponse):
        failure_before_headers(garbage)
