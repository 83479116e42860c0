"""Fault injection, streaming: a real `shadowtap serve` in front of a primary that paces, pauses,
splits characters and breaks off. The client sees what the primary sent, when it sent it, and the
store says what happened. (Issue 7, items 3 and 4.)"""

from __future__ import annotations

import time
import uuid
import zlib

import httpx
import openai
import orjson
import pytest

from tests.support.fault_tools import assert_store_is_consistent, recorded_with
from tests.support.store_reading import wait_for_exchange

CHAT = "/chat/completions"
COFFEE_CONTEXT = "The café on Rue Zoë serves crème brûlée ☕ every morning from eight."


def marked(question: str) -> tuple[str, str]:
    """A question carrying a marker that finds the simulator's record of this one request."""
    marker = f"m{uuid.uuid4().hex[:12]}"
    return marker, f"{question} ({marker})"


def stream_body(question: str, **fields) -> dict:
    return {"model": "sim-small", "stream": True, "messages": [{"role": "user", "content": question}], **fields}


def sse_data(raw: bytes) -> list[bytes]:
    return [line[len(b"data: "):] for line in raw.split(b"\n") if line.startswith(b"data: ")]


def delta_text(raw: bytes) -> str:
    events = [orjson.loads(data) for data in sse_data(raw) if data != b"[DONE]"]
    return "".join(choice["delta"].get("content") or "" for event in events for choice in event["choices"])


@pytest.mark.timeout(60)
def test_each_chunk_reaches_the_client_within_100ms_of_the_primary_sending_it_when_chunks_are_200ms_apart(
        proxy, simulator):
    marker, question = marked("Where do orders ship from?")
    arrivals: list[float] = []
    pending = b""
    with httpx.stream("POST", proxy.base_url + CHAT, json=stream_body(question),
                      headers={"x-sim-chunk-delay-ms": "200"}, timeout=30) as response:
        for data in response.iter_raw():
            now = time.time()  # wall clock: the simulator, another process, stamps its writes with it
            pending += data
            while b"\n\n" in pending:
                _, pending = pending.split(b"\n\n", 1)
                arrivals.append(now)

    (record,) = recorded_with(simulator, marker)
    sent = record["writes_at"]
    assert len(arrivals) == len(sent) >= 10  # one write per event, each arrived as its own event
    lags = [arrived - written for arrived, written in zip(arrivals, sent)]
    assert max(lags) < 0.1, lags
    # Not buffered and released in bursts: the primary's spacing survives the proxy.
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    assert min(gaps) > 0.1, gaps


@pytest.mark.timeout(60)
def test_a_three_second_silence_before_the_first_token_is_not_cut_when_the_primary_thinks(proxy):
    started = time.monotonic()
    with httpx.stream("POST", proxy.base_url + CHAT, json=stream_body("Do gift cards expire?"),
                      headers={"x-sim-ttft-ms": "3000"}, timeout=30) as response:
        raw = response.read()
        exchange_id = response.headers["x-shadowtap-exchange-id"]

    assert time.monotonic() - started >= 3.0
    assert response.status_code == 200 and sse_data(raw)[-1] == b"[DONE]"
    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert row["stream_incomplete"] == 0 and row["upstream_error"] is None
    assert row["ttft_ms"] >= 3000


@pytest.mark.timeout(60)
def test_a_three_second_silence_before_the_status_line_is_not_cut_when_the_primary_is_slow(proxy):
    body = {"model": "sim-small", "messages": [{"role": "user", "content": "Do gift cards expire?"}]}
    started = time.monotonic()
    response = httpx.post(proxy.base_url + CHAT, json=body, headers={"x-sim-latency-ms": "3000"}, timeout=30)

    assert time.monotonic() - started >= 3.0
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]


@pytest.mark.timeout(60)
def test_a_character_split_across_two_primary_writes_reaches_the_client_whole_and_is_captured_without_replacement(
        proxy, simulator):
    marker, question = marked("When does the café serve crème brûlée?")
    body = stream_body(question)
    body["messages"].insert(0, {"role": "system", "content": f"<context>{COFFEE_CONTEXT}</context>"})
    reads: list[bytes] = []
    with httpx.stream("POST", proxy.base_url + CHAT, json=body, timeout=30,
                      headers={"x-sim-split-utf8-ms": "150"}) as response:
        reads.extend(response.iter_raw())
        exchange_id = response.headers["x-shadowtap-exchange-id"]
    direct = httpx.post(simulator.base_url + CHAT, json=body, timeout=30)

    record = recorded_with(simulator, marker)[0]  # the proxied request came first, then the direct one
    received = b"".join(reads)
    assert len(record["writes_at"]) == len(sse_data(received)) + 1  # the primary really split one
    assert any(_ends_inside_a_character(read) for read in reads)  # and so did the client's reads
    assert received == direct.content
    text = delta_text(received)  # a strict decode: a broken character would raise here
    assert "é" in text and "\ufffd" not in text

    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert row["response_text"] == text
    assert row["stream_incomplete"] == 0
    assert_store_is_consistent(proxy.store_path)


def _ends_inside_a_character(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"
    return False


@pytest.mark.timeout(60)
def test_the_openai_sdk_reads_a_split_character_whole_when_the_primary_splits_it(proxy):
    client = openai.OpenAI(base_url=proxy.base_url, api_key="sk-test-faults", max_retries=0, timeout=30)
    stream = client.chat.completions.create(
        model="sim-small", stream=True, extra_headers={"x-sim-split-utf8-ms": "100"},
        messages=[{"role": "system", "content": f"<context>{COFFEE_CONTEXT}</context>"},
                  {"role": "user", "content": "When does the café serve crème brûlée?"}])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert "é" in text and "\ufffd" not in text


@pytest.mark.timeout(60)
def test_the_openai_sdk_raises_rather_than_ending_cleanly_when_the_primary_drops_the_stream(proxy):
    client = openai.OpenAI(base_url=proxy.base_url, api_key="sk-test-faults", max_retries=0, timeout=30)
    stream = client.chat.completions.create(
        model="sim-small", stream=True, extra_headers={"x-sim-drop-after": "4"},
        messages=[{"role": "user", "content": "Where do orders ship from?"}])
    received = []
    with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)):
        for chunk in stream:
            received.append(chunk)

    assert len(received) == 4


@pytest.mark.timeout(60)
def test_a_compressed_stream_cut_by_the_primary_is_truncated_for_the_client_and_captured_with_its_decoded_part(
        proxy):
    received = bytearray()
    with httpx.stream("POST", proxy.base_url + CHAT, json=stream_body("Where do orders ship from?"),
                      headers={"x-sim-gzip": "1", "x-sim-drop-after": "5", "accept-encoding": "gzip"},
                      timeout=30) as response:
        exchange_id = response.headers["x-shadowtap-exchange-id"]
        with pytest.raises(httpx.RemoteProtocolError):
            for data in response.iter_raw():
                received += data
    plain = zlib.decompressobj(31).decompress(bytes(received))
    assert b"[DONE]" not in plain and len(sse_data(plain)) == 5

    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert row["stream_incomplete"] == 1 and row["upstream_error"]
    assert row["response_text"] == delta_text(plain) and row["response_text"]
    assert row["finish_reason"] is None


@pytest.mark.timeout(60)
def test_a_json_body_cut_by_the_primary_is_short_of_its_length_for_the_client_and_captured_as_incomplete(proxy):
    body = {"model": "sim-small", "messages": [{"role": "user", "content": "Where do orders ship from?"}]}
    received = bytearray()
    with httpx.stream("POST", proxy.base_url + CHAT, json=body, timeout=30,
                      headers={"x-sim-trickle-ms": "1", "x-sim-drop-after": "60"}) as response:
        declared = int(response.headers["content-length"])
        exchange_id = response.headers["x-shadowtap-exchange-id"]
        with pytest.raises(httpx.RemoteProtocolError):
            for data in response.iter_raw():
                received += data

    assert len(received) == 60 < declared  # what the primary sent, and no more
    row = wait_for_exchange(proxy.store_path, exchange_id)
    assert row["stream_incomplete"] == 1 and row["upstream_error"]
    assert row["response_json"] is None and row["response_unparseable"] == 1
    assert_store_is_consistent(proxy.store_path)
