"""Fault injection, compression: a gzip answer from the primary is relayed compressed, once, with
length headers that match the bytes on the wire, so clients decode it exactly once. (Issue 7,
item 6.)"""

from __future__ import annotations

import gzip

import httpx
import openai
import orjson
import pytest

from tests.support.fault_tools import parse_response, raw_request, send_raw

QUESTION = [{"role": "user", "content": "Where is the warehouse?"}]
GZIP = {"x-sim-gzip": "1"}


def sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-test-faults", max_retries=0, timeout=30)


def dechunk(framed: bytes) -> bytes:
    """The payload of a chunked transfer; fails unless it ends with the terminating chunk."""
    payload, rest = bytearray(), framed
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return bytes(payload)
        payload += rest[:size]
        assert rest[size:size + 2] == b"\r\n"
        rest = rest[size + 2:]


@pytest.mark.timeout(60)
def test_the_openai_sdk_decodes_a_gzip_answer_once_when_the_primary_compresses(proxy, simulator):
    plain = sdk(simulator.base_url).chat.completions.create(model="sim-small", messages=QUESTION)
    compressed = sdk(proxy.base_url).chat.completions.create(model="sim-small", messages=QUESTION,
                                                            extra_headers=GZIP)

    assert compressed.model_dump() == plain.model_dump()


@pytest.mark.timeout(60)
def test_the_openai_sdk_decodes_a_gzip_stream_once_when_the_primary_compresses(proxy, simulator):
    def chunks(client: openai.OpenAI, **extra) -> list[dict]:
        stream = client.chat.completions.create(model="sim-small", messages=QUESTION, stream=True, **extra)
        return [chunk.model_dump() for chunk in stream]

    plain = chunks(sdk(simulator.base_url))
    assert chunks(sdk(proxy.base_url), extra_headers=GZIP) == plain and len(plain) > 3


@pytest.mark.timeout(60)
def test_a_gzip_answer_has_one_content_length_equal_to_the_bytes_sent_and_no_chunking(proxy):
    body = orjson.dumps({"model": "sim-small", "messages": QUESTION})
    response = parse_response(send_raw(proxy.port, raw_request(
        "/v1/chat/completions", body, b"X-Sim-Gzip: 1", b"Accept-Encoding: gzip")))

    assert response.status == 200
    assert response.header_values("content-encoding") == ["gzip"]
    assert response.header_values("transfer-encoding") == []
    assert response.header_values("content-length") == [str(len(response.body))]
    assert orjson.loads(gzip.decompress(response.body))["choices"][0]["message"]["content"]


@pytest.mark.timeout(60)
def test_a_gzip_stream_is_chunked_without_a_content_length_and_decodes_to_the_plain_stream(proxy, simulator):
    body = orjson.dumps({"model": "sim-small", "messages": QUESTION, "stream": True})
    response = parse_response(send_raw(proxy.port, raw_request(
        "/v1/chat/completions", body, b"X-Sim-Gzip: 1", b"Accept-Encoding: gzip")))
    plain = httpx.post(simulator.base_url + "/chat/completions", content=body, timeout=30).content

    assert response.header_values("content-encoding") == ["gzip"]
    assert response.header_values("transfer-encoding") == ["chunked"]
    assert response.header_values("content-length") == []
    assert gzip.decompress(dechunk(response.body)) == plain
