"""The frames a raw exchange crosses to the recorder in: every field and byte arrives as sent,
however the stream is cut, and the recorder's answers are cut into whole messages."""

from __future__ import annotations

from shadowtap.proxy.capture.frames import (
    LOG_RECORD,
    STATUS,
    STOP_FRAME,
    ExchangeFrameReader,
    MessageReader,
    encode_exchange,
    encode_message,
    exchange_size,
)
from shadowtap.proxy.exchange import RawExchange


def an_exchange(index: int, *, chunks: list[bytes] | None = None) -> RawExchange:
    return RawExchange(
        id=f"01EXCHANGE{index:04d}", started_at=1_700_000_000.5 + index, t_start=10.0 + index, method="POST",
        path="/v1/chat/completions", query="a=1", request_headers=[(b"content-type", b"application/json")],
        request_body=bytearray(b'{"model":"m","messages":[]}' * (index + 1)), status=200,
        response_headers=[(b"content-type", b"text/event-stream")],
        response_chunks=chunks if chunks is not None else [b"data: one\n\n", b"data: [DONE]\n\n"],
        chunk_times=[11.0, 12.0], t_upstream_start=10.1, t_upstream_headers=10.2, t_response_started=10.3,
        t_end=12.5, client_disconnected=index % 2 == 1, upstream_error=None, stream_broken=False,
        shadow_skips=[("cand", "saturated")])


def wire(*exchanges: RawExchange) -> bytes:
    return b"".join(bytes(part) for exchange in exchanges for part in encode_exchange(exchange))


def test_exchanges_arrive_whole_and_in_order_when_the_stream_is_cut_at_every_byte():
    sent = [an_exchange(0), an_exchange(1)]
    data = wire(*sent) + STOP_FRAME
    reader = ExchangeFrameReader()
    received = []
    for offset in range(len(data)):
        received += reader.feed(data[offset:offset + 1])
    assert received == [*sent, None]


def test_the_frame_carries_the_exchanges_own_body_buffers_without_copying_them():
    exchange = an_exchange(3)
    parts = encode_exchange(exchange)
    assert parts[1] is exchange.request_body
    assert parts[2:] == exchange.response_chunks
    assert parts[2] is exchange.response_chunks[0]


def test_a_stream_of_many_chunks_is_joined_into_one_buffer_and_split_again_on_arrival():
    chunks = [f"data: {index}\n\n".encode() for index in range(1000)]
    exchange = an_exchange(2, chunks=chunks)
    parts = encode_exchange(exchange)
    assert len(parts) == 3
    (received,) = ExchangeFrameReader().feed(wire(exchange))
    assert received.response_chunks == chunks
    assert received == exchange


def test_exchange_size_counts_the_request_and_response_bodies():
    exchange = an_exchange(0, chunks=[b"abc", b"de"])
    assert exchange_size(exchange) == len(exchange.request_body) + 5


def test_recorder_messages_are_cut_into_whole_kind_and_payload_pairs():
    data = encode_message(STATUS, b'{"written":3}') + encode_message(LOG_RECORD, b"x" * 70_000)
    reader = MessageReader()
    assert reader.feed(data[:9]) == []
    assert reader.feed(data[9:]) == [(STATUS, b'{"written":3}'), (LOG_RECORD, b"x" * 70_000)]


def test_an_exchange_without_body_or_answer_is_framed_as_its_header_alone_and_arrives_whole():
    exchange = an_exchange(4, chunks=[])
    exchange.request_body = b""
    parts = encode_exchange(exchange)
    assert len(parts) == 1
    assert ExchangeFrameReader().feed(wire(exchange) + STOP_FRAME) == [exchange, None]
